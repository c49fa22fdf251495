"""Error mapping for the Responses API: the same `{"error": {...}}` envelope as Chat
Completions (mapped by `openai_chat.errors`), plus the error objects that arrive without an
HTTP status: `error` stream events and a `response.failed` response's `error`.

An unknown model is HTTP 400 with `code: model_not_found` here (Chat Completions says 404);
the shared mapper classifies by `code` first, so both become `ModelNotFoundError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.openai_chat.errors import error_from_object, map_error
from llmswitch.errors import LLMSwitchError

__all__ = ["STATUS_FOR_CODE", "in_band_error", "map_error"]

# Codes seen in `error` events and `response.failed` bodies, with the status they stand for.
STATUS_FOR_CODE: dict[str, int] = {
    "rate_limit_exceeded": 429,
    "server_error": 500,
    "server_is_overloaded": 503,
    "slow_down": 503,
    "vector_store_timeout": 504,
    "invalid_prompt": 400,
    "invalid_request_error": 400,
    "invalid_image": 400,
    "model_not_found": 400,
    "context_length_exceeded": 400,
    "insufficient_quota": 429,
}


def in_band_error(data: Mapping[str, Any]) -> LLMSwitchError:
    """The typed error for an error object delivered inside a 200 response or stream.

    Accepts the object itself (`{"code", "message", …}`) or an event/response wrapping it
    under `error`.
    """
    inner = data.get("error")
    error: Mapping[str, Any] = inner if isinstance(inner, Mapping) else data
    code = str(error.get("code") or error.get("type") or "")
    status = STATUS_FOR_CODE.get(code)
    return error_from_object(error, status)
