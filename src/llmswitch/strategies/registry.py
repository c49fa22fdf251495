"""Strategy names → builders. A builder turns a `routes.<name>` entry into a `Model`.

Builders live in their own modules and load on first use; a module exposes
`build(route: RouteContext) -> Model`. Targets are resolved through `route.resolve`, so a
route's targets may themselves be routes (cycles are rejected with the path named).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmswitch.catalog.catalog import Catalog
from llmswitch.config.schema import Config, RouteConfig
from llmswitch.errors import ConfigError
from llmswitch.models import Model

STRATEGIES: dict[str, str] = {
    "fallback": "llmswitch.strategies.fallback",
    "loadbalance": "llmswitch.strategies.loadbalance",
    "cascade": "llmswitch.strategies.cascade",
    "ensemble": "llmswitch.strategies.ensemble",
    "route": "llmswitch.strategies.route",
    "chain": "llmswitch.strategies.chain",
    "learned": "llmswitch.strategies.learned",
    "structured": "llmswitch.strategies.structured",
    "privacy": "llmswitch.strategies.privacy",
}


@dataclass(frozen=True)
class RouteContext:
    """What a builder gets: the route's name and entry, and ways to reach everything else."""

    name: str
    route: RouteConfig
    config: Config
    catalog: Catalog
    resolve: Callable[[str], Model]
    """Resolve a model, alias or route name (with cycle detection)."""
    services: dict[str, Any]
    """Shared per-Switch state (e.g. circuit-breaker store), keyed by strategy module."""

    def option(self, key: str, default: Any = None) -> Any:
        """A strategy option (a key beside `strategy` and `targets`)."""
        return self.route.options().get(key, default)

    def fail(self, message: str, hint: str | None = None) -> ConfigError:
        """A config error naming this route, to raise."""
        return ConfigError(f"{self.config.source}: routes.{self.name}: {message}", hint=hint)

    def targets(self) -> list[Model]:
        """The route's targets resolved to models (strings only; dict targets are the
        strategy's own business)."""
        out = []
        for i, target in enumerate(self.route.targets):
            if not isinstance(target, str):
                raise self.fail(f"targets[{i}] must be a model or route name")
            out.append(self.resolve(target))
        return out


def build_route(context: RouteContext) -> Model:
    """Build the model for a route with the builder of its strategy."""
    module_name = STRATEGIES.get(context.route.strategy)
    if module_name is None:
        raise context.fail(
            f"unknown strategy {context.route.strategy!r}",
            hint="known: " + ", ".join(sorted(STRATEGIES)),
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("llmswitch"):
            raise context.fail(
                f"strategy {context.route.strategy!r} is not available in this version"
            ) from None
        raise
    known = getattr(module, "OPTIONS", None)
    if known is not None:
        unknown = sorted(set(context.route.options()) - set(known))
        if unknown:
            close = {u: difflib.get_close_matches(u, sorted(known), n=1) for u in unknown}
            hints = [f"{u!r} (did you mean {c[0]!r}?)" if c else repr(u) for u, c in close.items()]
            raise context.fail(
                f"unknown option(s) for strategy {context.route.strategy}: {', '.join(hints)}",
                hint="known: " + ", ".join(sorted(known)),
            )
    model: Model = module.build(context)
    return model
