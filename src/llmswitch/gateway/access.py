"""What `create_app` gets from the keys-and-limits side of the gateway, built from the config:

- before the `Switch` (`switch_options`): circuit breakers and deployment RPM/TPM on Redis
  (`gateway.state`), and the commit-before-answer ledger (`gateway.durable_ledger`);
- after it (`attach`): the `KeyAuthenticator` (virtual keys in the ledger's database; the
  admin key alone, `OpenAccess`, when the ledger is off), the `GatewayLimiter` (in-process,
  or on Redis with `gateway.state`), the `/admin` API, and the `commit` hook.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from llmswitch import Config, ConfigError, LLMSwitchError, Switch
from llmswitch.gateway.admin import AdminApi
from llmswitch.gateway.keys import KeyAuthenticator, KeyStore
from llmswitch.gateway.limits import GatewayLimiter, LimitsStore, MemoryLimits
from llmswitch.gateway.policy import Authenticator, OpenAccess
from llmswitch.gateway.settings import GatewaySettings, parse_gateway


def model_names(switch: Switch) -> Callable[[str], frozenset[str]]:
    """`names(n)`: every name that means the same model as `n`. A catalog model answers to
    its `provider/model` id and its catalog aliases (`gpt-4o-mini`), so a key allowed one of
    them may use the others and a rate limit on one counts them all. A route or a config
    alias keeps its own name (the config gave it a meaning of its own)."""
    config, catalog = switch.config, switch.catalog
    own = set(config.routes) | set(config.models)

    def names(name: str) -> frozenset[str]:
        card = None if name in own else catalog.lookup(name)
        if card is None:
            return frozenset({name})
        same = {n for n in (card.id, *card.aliases) if n not in own}
        return frozenset({name} | {n for n in same if (
            (found := catalog.lookup(n)) is not None and found.id == card.id)})

    return names


class GatewayState:
    """The gateway's keys, limits, budgets and shared state for one app."""

    def __init__(self, config: Config, env: Mapping[str, str] | None = None) -> None:
        self.config = config
        self.env = env
        self.settings: GatewaySettings = parse_gateway(config.gateway, config.source)
        self.redis: Any = None
        self.store: KeyStore | None = None
        self.commit: Callable[[str], Awaitable[bool]] | None = None
        self.admin: AdminApi | None = None
        self.limiter: GatewayLimiter | None = None
        if self.settings.state:
            from llmswitch.gateway.redis_state import connect

            self.redis = connect(self.settings.state)

    @classmethod
    def for_config(cls, config: Config | Mapping[str, Any] | None,
                   env: Mapping[str, str] | None = None) -> GatewayState:
        """For a `Config`, a dict of the YAML's shape, or `None` (the file Switch would
        find, else the defaults)."""
        from llmswitch.config import config_from_dict, load_config

        if config is None:
            config = load_config(None, env=env)
        elif not isinstance(config, Config):
            config = config_from_dict(config, env=env)
        return cls(config, env)

    def ledger_url(self) -> str | None:
        """The ledger's location (the keys live in its database), `None` when it is off."""
        from llmswitch.observe import parse_observe

        return parse_observe(self.config.observe, self.env, self.config.source).ledger

    def switch_options(self) -> dict[str, Any]:
        """Keyword arguments for the gateway's own `Switch`."""
        out: dict[str, Any] = {}
        if self.redis is not None:
            from llmswitch.gateway.redis_state import (
                RedisBreakerStore,
                RedisLimitStore,
                RedisRateStore,
            )
            from llmswitch.resilience import SERVICE_KEY, Resilience

            shared = Resilience(
                breakers=RedisBreakerStore(self.redis, owns_client=False),
                limits=RedisLimitStore(RedisRateStore(self.redis, owns_client=False)))
            out["services"] = {SERVICE_KEY: shared}
        if self.settings.durable_ledger:
            out["observers"] = self._durable_observers()
        return out

    def _durable_observers(self) -> list[Any]:
        from llmswitch.observe import CommitLedger, Ledger, observers_for

        observers: list[Any] = list(observers_for(self.config, self.env))
        for i, observer in enumerate(observers):
            if isinstance(observer, Ledger):
                ledger = CommitLedger(observer.url, observer.config)
                observers[i] = ledger
                self.commit = ledger.committed
        if self.commit is None:
            raise ConfigError(f"{self.config.source}: gateway.durable_ledger needs the ledger",
                              hint="set observe.ledger (it is off)")
        return observers

    def attach(self, switch: Switch, admin_key: str | None
               ) -> tuple[Authenticator, GatewayLimiter]:
        """The authenticator and limiter for `switch` (and the admin API)."""
        url = self.ledger_url()
        auth: Authenticator
        if url is None:
            auth = OpenAccess(admin_key)
        else:
            self.store = KeyStore(url)
            auth = KeyAuthenticator(self.store, admin_key, ttl=self.settings.key_cache_seconds,
                                    names=model_names(switch))
        self.admin = AdminApi(self.store, auth, admin_key is not None,
                              on_change=getattr(auth, "forget", None))
        self._check_limits(switch)
        store: LimitsStore
        if self.redis is not None:
            from llmswitch.gateway.redis_state import RedisLimits

            store = RedisLimits(self.redis, owns_client=False)
        else:
            store = MemoryLimits()
        self.limiter = GatewayLimiter(
            switch.config, store, spent=self._spent if self.store else None,
            model_limits=self.settings.limits, budget_attempts=self.settings.budget_attempts,
            names=model_names(switch))
        return auth, self.limiter

    async def _spent(self, key_id: str, since: float) -> float:
        import asyncio

        assert self.store is not None
        return await asyncio.to_thread(self.store.spent_since, key_id, since)

    def _check_limits(self, switch: Switch) -> None:
        """`gateway.limits` names must be models, aliases or routes the switch knows."""
        for name in self.settings.limits:
            try:
                switch.model(name)
            except LLMSwitchError as exc:
                raise ConfigError(f"{switch.config.source}: gateway.limits.{name}: {exc}",
                                  hint="name a model, alias or route") from None

    async def aclose(self) -> None:
        """Close the key store and the Redis client."""
        if self.store is not None:
            self.store.close()
        if self.redis is not None:
            await self.redis.aclose()
