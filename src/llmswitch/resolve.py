"""Turn a name into a `Model`: a route, a configured alias, `provider/model`, or a catalog alias.

Resolution order: routes, then `models` entries, then `provider/model`, then catalog aliases.
A bare name that matches none of these fails before any call, with suggestions.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from llmswitch.adapters.base import Target
from llmswitch.adapters.registry import adapter_for
from llmswitch.catalog.card import ModelCard
from llmswitch.catalog.catalog import Catalog
from llmswitch.config.schema import Config, ModelEntry
from llmswitch.errors import ConfigError, ModelNotFoundError
from llmswitch.models import Model
from llmswitch.providers.http_model import HttpModel
from llmswitch.providers.provider import Provider, TransportFactory
from llmswitch.providers.specs import SPECS
from llmswitch.strategies.guard import SchemaGuard
from llmswitch.strategies.preset import Preset
from llmswitch.strategies.registry import RouteContext, build_route

DEFAULT_LOCAL_MODEL = "smollm2-135m"
_PROFILE_PREFIX = re.compile(r"^(us|eu|apac|global|us-gov|jp|au)\.")


def extend_catalog(catalog: Catalog, config: Config) -> Catalog:
    """The catalog plus the config's model definitions and overrides."""
    entries: dict[str, dict[str, Any]] = {}
    for key, entry in config.models.items():
        fields = entry.card_fields()
        if entry.provider is not None:
            entries[f"{entry.provider}/{entry.name or key}"] = fields
        elif entry.model is None and fields:
            if "/" not in key:
                raise ConfigError(
                    f"{config.source}: models.{key}: to override a catalog entry use its "
                    "id (provider/name); to define a model give 'provider'"
                )
            entries[key] = fields
    return catalog.extended(entries, source=config.source) if entries else catalog


class Resolver:
    """Builds and caches one `Model` per name for a `Switch`."""

    def __init__(
        self,
        config: Config,
        catalog: Catalog,
        env: Mapping[str, str] | None = None,
        transports: Mapping[str, TransportFactory] | None = None,
    ) -> None:
        self.config = config
        self.catalog = catalog
        self.env = os.environ if env is None else env
        self.transports = dict(transports or {})
        self.providers: dict[str, Provider] = {}
        self.models: dict[str, Model] = {}
        self.services: dict[str, Any] = {}
        self._building: list[str] = []
        self._guarded: dict[str, SchemaGuard] = {}

    def model(self, name: str) -> Model:
        """The model to call for `name` at the top level: `resolve(name)` behind a
        `SchemaGuard`, which validates answers to requests that carry a schema."""
        guarded = self._guarded.get(name)
        if guarded is None or guarded.unguarded is not self.models.get(name):
            guarded = self._guarded[name] = SchemaGuard(self.resolve(name))
        return guarded

    def resolve(self, name: str) -> Model:
        """The model for `name` (built once, then cached); routes' targets resolve here."""
        cached = self.models.get(name)
        if cached is not None:
            return cached
        if name in self._building:
            cycle = " -> ".join([*self._building[self._building.index(name):], name])
            raise ConfigError(f"{self.config.source}: routes form a cycle: {cycle}")
        self._building.append(name)
        try:
            model = self._build(name)
        finally:
            self._building.pop()
        self.models[name] = model
        return model

    def _build(self, name: str) -> Model:
        if name in self.config.routes:
            return build_route(RouteContext(
                name, self.config.routes[name], self.config, self.catalog, self.resolve,
                self.services,
            ))
        entry = self.config.models.get(name)
        if entry is not None:
            return self._entry(name, entry)
        if "/" in name:
            provider, wire = name.split("/", 1)
            if provider in SPECS or provider in self.config.providers:
                return self.provider_model(name, provider, wire)
        card = self.catalog.lookup(name)
        if card is not None:
            return self.provider_model(name, card.provider, card.wire_name)
        suggestions = self.suggest(name)
        if suggestions:
            raise ModelNotFoundError(f'unknown model "{name}"', suggestions=suggestions)
        raise ModelNotFoundError(
            f'unknown model "{name}"', hint="run `llmswitch models` to list known models"
        )

    def _entry(self, name: str, entry: ModelEntry) -> Model:
        if entry.model is not None:
            inner = self.resolve(entry.model)
        elif entry.provider is not None:
            inner = self.provider_model(name, entry.provider, entry.name or name)
        elif "/" in name:
            provider, wire = name.split("/", 1)
            inner = self.provider_model(name, provider, wire)
        else:
            raise ConfigError(f"{self.config.source}: models.{name}: give 'model' or 'provider'")
        if entry.settings or entry.system:
            try:
                return Preset(name, inner, entry.settings, entry.system)
            except ValueError as exc:
                raise ConfigError(f"{self.config.source}: models.{name}.settings: {exc}") from None
        return inner

    def provider_model(self, name: str, provider_name: str, wire: str) -> HttpModel:
        """A provider's model by wire name (priced from the catalog when listed)."""
        provider = self.provider(provider_name)
        card = self.card_for(provider_name, wire)
        if provider_name == "local" and card is None and wire != DEFAULT_LOCAL_MODEL:
            raise ModelNotFoundError(
                f'unknown local model "{wire}"',
                provider="local",
                model=wire,
                suggestions=[c.id for c in self.catalog.by_provider("local")],
                hint=f"define it: models.{wire}: {{provider: local, path: FILE.gguf}}",
            )
        protocol = provider.protocol
        if protocol == "openai" and card is not None and card.api == "responses":
            protocol = "responses"
        if provider.api == "responses":
            protocol = "responses"
        elif provider.api == "chat" and protocol == "responses":
            protocol = provider.protocol
        options = {"api_version": provider.config.api_version or _azure_version(self.env),
                   "region": provider.config.region, "profile": provider.config.profile}
        try:
            base_url = provider.base_url
        except ConfigError:
            base_url = ""  # e.g. Azure without an endpoint: the call itself will say so
        target = Target(provider_name, wire, card, base_url, options)
        return HttpModel(name, provider, adapter_for(protocol), target, self.suggest)

    def card_for(self, provider: str, wire: str) -> ModelCard | None:
        """The catalog card for a provider's model name: exact id, else the same provider's
        entry under an alias (dated snapshot names), else a Bedrock inference profile's base
        model (`us.`/`eu.`/`apac.`/`global.` prefixes)."""
        card = self.catalog.get(f"{provider}/{wire}")
        if card is not None:
            return card
        alias = self.catalog.lookup(wire)
        if alias is not None and alias.provider == provider:
            return alias
        if provider == "bedrock":
            base = _PROFILE_PREFIX.sub("", wire)
            for candidate in (base, *(f"{p}.{base}" for p in ("global", "us", "eu"))):
                card = self.catalog.get(f"bedrock/{candidate}")
                if card is not None:
                    return card
        return None

    def provider(self, name: str) -> Provider:
        """The provider object (one per name per Switch)."""
        provider = self.providers.get(name)
        if provider is None:
            transport = self.transports.get(name)
            if transport is None and name == "local":
                transport = self._local_transport
            provider = _make_provider(name, self.config, self.env, transport)
            self.providers[name] = provider
        return provider

    def _local_transport(self) -> Any:
        from llmswitch.local.transport import LocalTransport

        return LocalTransport(self.local_path)

    def local_path(self, model: str) -> Path:
        """The GGUF file of a local model: its card's `path`, or the default model's file."""
        card = self.catalog.get(f"local/{model}")
        if card is not None and card.path:
            return Path(card.path).expanduser()
        from llmswitch.local.paths import default_smollm2_path

        return default_smollm2_path()

    def suggest(self, name: str) -> list[str]:
        """Close names among routes, aliases and catalog entries."""
        import difflib

        own = [*self.config.routes, *self.config.models]
        close = difflib.get_close_matches(name, own, n=2, cutoff=0.6)
        return [*close, *[s for s in self.catalog.suggest(name) if s not in close]][:3]


# Providers that need more than a key and a base URL (e.g. SigV4 signing) have a subclass.
PROVIDER_CLASSES: dict[str, str] = {"bedrock": "llmswitch.providers.bedrock:BedrockProvider"}


def _make_provider(
    name: str, config: Config, env: Mapping[str, str], transport: TransportFactory | None
) -> Provider:
    cls: type[Provider] = Provider
    ref = PROVIDER_CLASSES.get(name)
    if ref is not None:
        module_name, _, attr = ref.partition(":")
        try:
            cls = getattr(importlib.import_module(module_name), attr)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
    return cls(name, config.providers.get(name), env, transport)


def _azure_version(env: Mapping[str, str]) -> str | None:
    from llmswitch.providers.specs import AZURE_API_VERSION_ENV

    for var in AZURE_API_VERSION_ENV:
        if env.get(var):
            return env[var]
    return None
