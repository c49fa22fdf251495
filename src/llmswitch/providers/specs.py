"""Static facts about each known provider: protocol, default base URL, key variables."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """What llmswitch knows about a provider before any configuration."""

    name: str
    protocol: str
    """Which adapter speaks to it: `openai`, `anthropic`, `gemini`, `bedrock`, `ollama`, `local`."""
    base_url: str
    key_env: tuple[str, ...] = ()
    """Environment variables tried in order for the API key."""
    needs_key: bool = True
    auth_header: str = "authorization"
    """`authorization` (Bearer), `api-key` (Azure), `x-api-key`, `x-goog-api-key`, or `none`."""


SPECS: dict[str, ProviderSpec] = {
    s.name: s
    for s in (
        ProviderSpec("openai", "openai", "https://api.openai.com/v1", ("OPENAI_API_KEY",)),
        ProviderSpec(
            "azure", "openai", "", ("AZURE_OPENAI_API_KEY",), auth_header="api-key"
        ),
        ProviderSpec("deepseek", "openai", "https://api.deepseek.com", ("DEEPSEEK_API_KEY",)),
        ProviderSpec(
            "openrouter", "openai", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",)
        ),
        ProviderSpec(
            "ollama", "ollama", "http://localhost:11434", ("OLLAMA_API_KEY",), needs_key=False
        ),
        ProviderSpec(
            "anthropic", "anthropic", "https://api.anthropic.com", ("ANTHROPIC_API_KEY",),
            auth_header="x-api-key",
        ),
        ProviderSpec(
            "gemini", "gemini", "https://generativelanguage.googleapis.com",
            ("GEMINI_API_KEY", "GOOGLE_API_KEY"), auth_header="x-goog-api-key",
        ),
        ProviderSpec(
            "bedrock", "bedrock", "", ("AWS_BEARER_TOKEN_BEDROCK",), needs_key=False,
            auth_header="none",
        ),
        ProviderSpec("local", "local", "http://local/v1", (), needs_key=False, auth_header="none"),
    )
}

AZURE_ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"
AZURE_API_VERSION_ENV = ("AZURE_OPENAI_API_VERSION", "OPENAI_API_VERSION")
AZURE_DEFAULT_API_VERSION = "2024-12-01-preview"


def api_env(provider: str) -> str:
    """The environment variable that picks `chat` or `responses` for an OpenAI-style provider."""
    return f"LLMSWITCH_{provider.upper().replace('-', '_')}_API"


def base_url_env(provider: str) -> str:
    """The environment variable that overrides a provider's base URL."""
    return f"LLMSWITCH_{provider.upper().replace('-', '_')}_BASE_URL"
