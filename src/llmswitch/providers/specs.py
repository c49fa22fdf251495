"""Static facts about each known provider: protocol, default base URL, key variables, and the
environment variables its official SDK reads."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit


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
    base_url_env: tuple[str, ...] = ()
    """The base URL variables the provider's own SDK reads (below `LLMSWITCH_<NAME>_BASE_URL`
    and the config's `base_url`)."""
    warn_both_keys: bool = False
    """Warn when more than one of `key_env` is set (google-genai does for Gemini)."""


SPECS: dict[str, ProviderSpec] = {
    s.name: s
    for s in (
        ProviderSpec("openai", "openai", "https://api.openai.com/v1", ("OPENAI_API_KEY",),
                     base_url_env=("OPENAI_BASE_URL",)),
        ProviderSpec(
            "azure", "openai", "", ("AZURE_OPENAI_API_KEY",), auth_header="api-key",
            base_url_env=("AZURE_OPENAI_ENDPOINT",),
        ),
        ProviderSpec("deepseek", "openai", "https://api.deepseek.com", ("DEEPSEEK_API_KEY",)),
        ProviderSpec(
            "openrouter", "openai", "https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY",)
        ),
        ProviderSpec(
            "ollama", "ollama", "http://localhost:11434", ("OLLAMA_API_KEY",), needs_key=False,
            base_url_env=("OLLAMA_HOST",),
        ),
        ProviderSpec(
            "anthropic", "anthropic", "https://api.anthropic.com", ("ANTHROPIC_API_KEY",),
            auth_header="x-api-key", base_url_env=("ANTHROPIC_BASE_URL",),
        ),
        ProviderSpec(
            # google-genai's order: GOOGLE_API_KEY wins when both are set (with a warning).
            "gemini", "gemini", "https://generativelanguage.googleapis.com",
            ("GOOGLE_API_KEY", "GEMINI_API_KEY"), auth_header="x-goog-api-key",
            warn_both_keys=True,
        ),
        ProviderSpec(
            "bedrock", "bedrock", "", ("AWS_BEARER_TOKEN_BEDROCK",), needs_key=False,
            auth_header="none",
        ),
        ProviderSpec("local", "local", "http://local/v1", (), needs_key=False, auth_header="none"),
    )
}

AZURE_ENDPOINT_ENV = "AZURE_OPENAI_ENDPOINT"
OLLAMA_HOST_ENV = "OLLAMA_HOST"
OLLAMA_DEFAULT_PORT = 11434
AZURE_API_VERSION_ENV = ("AZURE_OPENAI_API_VERSION", "OPENAI_API_VERSION")
AZURE_DEFAULT_API_VERSION = "2024-12-01-preview"


def api_env(provider: str) -> str:
    """The environment variable that picks `chat` or `responses` for an OpenAI-style provider."""
    return f"LLMSWITCH_{provider.upper().replace('-', '_')}_API"


def base_url_env(provider: str) -> str:
    """The environment variable that overrides a provider's base URL."""
    return f"LLMSWITCH_{provider.upper().replace('-', '_')}_BASE_URL"


def sdk_base_url(spec: ProviderSpec, env: Mapping[str, str]) -> str | None:
    """The base URL from the variables the provider's SDK reads, or `None` when none is set.

    `OLLAMA_HOST` is read as the ollama client reads it (`host[:port]`, scheme optional).
    """
    for var in spec.base_url_env:
        value = (env.get(var) or "").strip()
        if value:
            return ollama_host_url(value) if var == OLLAMA_HOST_ENV else value
    return None


def ollama_host_url(host: str) -> str:
    """`OLLAMA_HOST` as a URL, as the ollama client reads it: `http` unless a scheme is given;
    port 11434 without a scheme, else the scheme's (80/443) unless given; host 127.0.0.1 when
    only a port is given (`:8080`); a path is kept (`example.com/ollama`)."""
    scheme, sep, rest = host.partition("://")
    if not sep:
        scheme, rest, port = "http", host, OLLAMA_DEFAULT_PORT
    else:
        scheme = scheme.lower()
        port = 443 if scheme == "https" else 80
    try:
        parts = urlsplit(f"{scheme}://{rest}")
        name, port = parts.hostname or "127.0.0.1", parts.port or port
    except ValueError:  # an invalid port: left for httpx to report with the whole URL
        return f"{scheme}://{rest}".rstrip("/")
    try:
        if ipaddress.ip_address(name).version == 6:
            name = f"[{name}]"
    except ValueError:
        pass
    path = parts.path.strip("/")
    return f"{scheme}://{name}:{port}" + (f"/{path}" if path else "")
