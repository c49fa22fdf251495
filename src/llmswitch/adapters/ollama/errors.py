"""Error mapping: Ollama's `{"error": "message"}` bodies and stream lines → the error tree.

Ollama's errors carry only a status and a message. The status decides, except where Ollama
uses one status for two causes (a missing model is a 404 or, from some versions, a 400/500
"model … not found"; an over-long prompt is a 400 or 500).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.http_errors import body_json, body_snippet, error_for_status
from llmswitch.errors import LLMSwitchError, ModelNotFoundError

CONTEXT_PHRASES = ("context length", "context window", "exceeds the context",
                   "input length exceeds", "prompt is too long")


def map_error(
    status: int, headers: Mapping[str, str], body: bytes, model: str = "MODEL"
) -> LLMSwitchError:
    """The typed error for a non-2xx response."""
    data = body_json(body)
    message = data.get("error") if isinstance(data, dict) else None
    text = str(message) if message else (body_snippet(body) or f"HTTP {status}")
    return error_from_message(text, status, headers, data, model)


def error_from_message(
    message: str,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
    model: str = "MODEL",
) -> LLMSwitchError:
    """Map an error message (with its status; a mid-stream error has none and counts as 500)."""
    effective = status if status and status >= 400 else 500
    lowered = message.lower()
    missing = "not found" in lowered and "model" in lowered
    if missing:
        # In the message: the switch replaces a not-found hint with catalog suggestions.
        return ModelNotFoundError(f"{message} (download it with `ollama pull {model}`)",
                                  status=effective, body=body)
    return error_for_status(
        effective,
        message,
        headers or {},
        body=body if body is not None else {"error": message},
        context_too_long=any(p in lowered for p in CONTEXT_PHRASES),
    )
