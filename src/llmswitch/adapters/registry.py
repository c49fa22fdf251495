"""Which adapter speaks which protocol. Adapters load on first use, so optional ones cost
nothing until a provider needs them."""

from __future__ import annotations

import importlib

from llmswitch.adapters.base import Adapter
from llmswitch.errors import ConfigError

ADAPTERS: dict[str, str] = {
    "openai": "llmswitch.adapters.openai_chat:ChatCompletionsAdapter",
    "local": "llmswitch.adapters.openai_chat:ChatCompletionsAdapter",
    "responses": "llmswitch.adapters.openai_responses:ResponsesAdapter",
    "anthropic": "llmswitch.adapters.anthropic:AnthropicAdapter",
    "gemini": "llmswitch.adapters.gemini:GeminiAdapter",
    "bedrock": "llmswitch.adapters.bedrock:BedrockAdapter",
    "ollama": "llmswitch.adapters.ollama:OllamaAdapter",
}


def adapter_for(protocol: str) -> Adapter:
    """A new adapter for a protocol name."""
    ref = ADAPTERS.get(protocol)
    if ref is None:
        raise ConfigError(f"no adapter for protocol {protocol!r}",
                          hint="known: " + ", ".join(sorted(ADAPTERS)))
    module_name, _, attr = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("llmswitch"):
            raise ConfigError(f"the {protocol} adapter is not available in this version") from None
        raise
    cls = getattr(module, attr)
    adapter: Adapter = cls()
    return adapter
