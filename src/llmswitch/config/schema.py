"""The shape of `llmswitch.yaml`: providers, models (aliases and overrides) and routes."""

from __future__ import annotations

import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_serializer, field_validator

from llmswitch.catalog.card import ModelCard

DEFAULT_MODEL = "local/smollm2-135m"
CARD_FIELDS = frozenset(ModelCard.model_fields) - {"id"}
API_VALUES = ("chat", "responses", "openai")
"""What `providers.<name>.api` may say."""


class ProviderConfig(BaseModel):
    """How to reach one provider. Keys are read from the environment unless given here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    api_key: SecretStr | None = Field(default=None, repr=False)
    api_key_env: str | None = None
    base_url: str | None = None
    timeout: float = Field(default=120.0, gt=0)
    """Seconds one attempt may take, from sending the request to the last byte read."""
    connect_timeout: float = Field(default=10.0, gt=0)
    stall_timeout: float = Field(default=60.0, gt=0)
    """Longest silence allowed while a stream is read (before its first piece and between two)."""
    headers: dict[str, str] = Field(default_factory=dict, repr=False, exclude=True)
    """Extra headers sent on every request (may hold credentials: never printed or dumped)."""
    api_version: str | None = None
    """Azure OpenAI's `api-version` query parameter."""
    api: str | None = None
    """`chat` or `responses` for OpenAI-style providers (default: per model, from the catalog);
    `openai` for Ollama's OpenAI-compatible `/v1`."""
    region: str | None = None
    profile: str | None = None
    max_connections: int = Field(default=100, gt=0)

    @field_validator("api_version", mode="before")
    @classmethod
    def _date_is_text(cls, value: Any) -> Any:
        # YAML reads an unquoted 2024-10-21 as a date.
        return value.isoformat() if isinstance(value, datetime.date) else value

    @field_validator("api")
    @classmethod
    def _known_api(cls, value: str | None) -> str | None:
        if value is not None and value not in API_VALUES:
            raise ValueError(f"must be one of {', '.join(API_VALUES)}, not {value!r}")
        return value

    @field_serializer("base_url")
    def _base_url_without_secrets(self, value: str | None) -> str | None:
        from llmswitch.scrub import redact_url

        return None if value is None else redact_url(value)  # a password, a `?key=`

    def __repr_args__(self) -> Any:
        for name, value in super().__repr_args__():
            yield name, self._base_url_without_secrets(value) if name == "base_url" else value


class ModelEntry(BaseModel):
    """A `models.<name>` entry.

    Either an alias of another model (`model: openai/gpt-4o-mini`), or a model definition
    (`provider` + optional `name`/`path`), or card fields overriding a catalog entry. Any entry
    may carry default `settings` (temperature, max_tokens, …) and card fields.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    model: str | None = None
    provider: str | None = None
    name: str | None = None
    settings: dict[str, Any] = Field(default_factory=dict)
    system: str | None = None
    """A system prompt prepended to every request made through this alias."""

    def card_fields(self) -> dict[str, Any]:
        """The catalog fields this entry sets."""
        extra = self.model_extra or {}
        return {k: v for k, v in extra.items() if k in CARD_FIELDS}

    def unknown_fields(self) -> list[str]:
        """Keys that are neither entry keys nor card fields."""
        return sorted(k for k in (self.model_extra or {}) if k not in CARD_FIELDS)


class RouteConfig(BaseModel):
    """A `routes.<name>` entry: a strategy, its targets, and the strategy's own options."""

    model_config = ConfigDict(extra="allow", frozen=True)

    strategy: str
    targets: list[Any] = Field(default_factory=list)
    description: str = ""

    @field_validator("targets", mode="before")
    @classmethod
    def _mapping_targets(cls, value: Any) -> Any:
        """`targets: {key: target}` (e.g. a learned route's table model → target) is read as
        `[{model: target, key: key}, ...]`, so target checks and cycle detection see it."""
        if isinstance(value, dict):
            return [{"model": target, "key": str(key)} for key, target in value.items()]
        return value

    def options(self) -> dict[str, Any]:
        """The strategy's options (every key beside `strategy`, `targets`, `description`)."""
        return dict(self.model_extra or {})


class Config(BaseModel):
    """The whole configuration. Build with `load_config` (file) or `Config.model_validate`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default_model: str = DEFAULT_MODEL
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    models: dict[str, ModelEntry] = Field(default_factory=dict)
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    observe: dict[str, Any] = Field(default_factory=dict)
    """Tracing, ledger and metrics options (see docs/observability.md)."""
    gateway: dict[str, Any] = Field(default_factory=dict)
    """`llmswitch serve` options (see docs/gateway.md); checked by the gateway."""
    source: str = "<config>"
    """Where the configuration came from (a file path), for error messages."""

    @field_validator("providers", "models", "routes", "observe", "gateway", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_serializer("observe")
    def _observe_without_secrets(self, value: dict[str, Any]) -> dict[str, Any]:
        from llmswitch.observe.config import public_observe

        return public_observe(value)  # OTel exporter headers, a ledger DSN's password

    @field_serializer("gateway")
    def _gateway_without_secrets(self, value: dict[str, Any]) -> dict[str, Any]:
        from llmswitch.scrub import redact_url

        # `state: redis://:password@host`: URLs lose their passwords and credential queries.
        return {k: redact_url(v) if isinstance(v, str) else v for k, v in value.items()}

    def __repr_args__(self) -> Any:
        public = {"observe": self._observe_without_secrets,
                  "gateway": self._gateway_without_secrets}
        for name, value in super().__repr_args__():
            yield name, public[name](value) if name in public else value
