"""`ModelCard`: what the catalog knows about one model (window, prices, capabilities)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Capability = Literal["tools", "json_mode", "json_schema", "vision", "streaming", "reasoning"]
CAPABILITIES: tuple[Capability, ...] = (
    "tools", "json_mode", "json_schema", "vision", "streaming", "reasoning",
)


class Latency(BaseModel):
    """Typical speed: time to first token and output tokens per second."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ttft_ms: float = Field(ge=0)
    tokens_per_s: float = Field(gt=0)


class ModelCard(BaseModel):
    """One catalog entry. Prices are USD per 1M tokens; `None` means unknown or not offered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9_-]+/.+$")
    family: str = ""
    aliases: tuple[str, ...] = ()
    context_window: int = Field(gt=0)
    max_output_tokens: int = Field(gt=0)
    input_per_mtok: float | None = Field(default=None, ge=0)
    output_per_mtok: float | None = Field(default=None, ge=0)
    cached_input_per_mtok: float | None = Field(default=None, ge=0)
    cache_write_per_mtok: float | None = Field(default=None, ge=0)
    reasoning_per_mtok: float | None = Field(default=None, ge=0)
    capabilities: tuple[Capability, ...] = ()
    api: Literal["chat", "responses"] = "chat"
    latency: Latency | None = None
    quality: float | None = Field(default=None, ge=0, le=1)
    prices_as_of: str | None = None
    notes: str = ""
    path: str | None = None
    """A local GGUF file (provider `local` only)."""

    @property
    def provider(self) -> str:
        """The provider part of the id."""
        return self.id.split("/", 1)[0]

    @property
    def wire_name(self) -> str:
        """The model name sent to the provider."""
        return self.id.split("/", 1)[1]

    @property
    def priced(self) -> bool:
        """Whether input and output prices are known."""
        return self.input_per_mtok is not None and self.output_per_mtok is not None

    def has(self, capability: Capability) -> bool:
        """Whether the model has a capability."""
        return capability in self.capabilities
