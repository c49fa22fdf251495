"""The `gateway:` section of `llmswitch.yaml`, validated (errors name the file and the key)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from llmswitch import ConfigError


class RateLimit(BaseModel):
    """`gateway.limits.<model or route>`: requests and tokens per sliding minute, for every
    caller together (a key's own `rpm`/`tpm` apply on top)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)


class GatewaySettings(BaseModel):
    """Options of `llmswitch serve` / `create_app` (all optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: str | None = None
    """`redis://host:port/db`: limits, budgets and breaker state shared by every replica.
    Without it they live in the process (exact for one replica)."""
    max_body_bytes: int = Field(default=10 * 1024 * 1024, gt=0)
    """Larger request bodies are refused with 413."""
    header_timeout: float = Field(default=10.0, gt=0)
    """Seconds a client may take to send its request head (slow clients are dropped)."""
    idle_timeout: float = Field(default=60.0, gt=0)
    """Seconds an idle keep-alive connection stays open."""
    drain_seconds: float = Field(default=30.0, ge=0)
    """On SIGTERM: seconds in-flight requests and streams get to finish."""
    access_log: bool | str = True
    """JSON-lines access log: true (stderr), false, or a file path."""
    log_content: bool = False
    """Put prompts and answers in the access log (never keys)."""
    default_max_tokens: int = Field(default=4096, gt=0)
    """Output tokens a budget reserves when a request sets no max_tokens and the model's card
    gives no limit."""
    admin_key_env: str = "LLMSWITCH_ADMIN_KEY"
    """The environment variable holding the admin key."""
    limits: dict[str, RateLimit] = Field(default_factory=dict)
    """RPM/TPM per model, alias or route name, shared by every caller (docs/gateway.md)."""
    key_cache_seconds: float = Field(default=2.0, ge=0, le=5)
    """How long a key lookup is cached: a revoked key is refused within this time."""
    budget_attempts: int | None = Field(default=None, ge=1)
    """Cap on the attempts a budget reserves for (default: every attempt a route can bill)."""
    durable_ledger: bool = False
    """Answer only once the request's ledger rows are committed (survives SIGKILL)."""


def parse_gateway(data: Mapping[str, Any] | None, source: str = "<config>") -> GatewaySettings:
    """Validate `config.gateway`; a bad key is a ConfigError naming it."""
    try:
        return GatewaySettings.model_validate(dict(data or {}))
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        known = ", ".join(GatewaySettings.model_fields)
        raise ConfigError(f"{source}: gateway.{where}: {first['msg']}",
                          hint=f"gateway options: {known}") from None
