"""Error mapping: Anthropic error responses and `error` stream events → the error tree.

Body shape: `{"type": "error", "error": {"type": "...", "message": "..."}, "request_id": ...}`.
The error `type` decides; the status is the fallback (and stands in for it mid-stream).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.http_errors import (
    error_for_status,
    map_enveloped_error,
)
from llmswitch.errors import LLMSwitchError

STATUS_FOR_TYPE: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
CONTEXT_PHRASES = ("prompt is too long", "exceed context limit", "context window",
                   "input is too long")
QUOTA_PHRASES = ("credit balance", "spend limit", "usage limit", "billing")


def map_error(status: int, headers: Mapping[str, str], body: bytes) -> LLMSwitchError:
    """The typed error for a non-2xx response."""
    return map_enveloped_error(status, headers, body, error_from_object)


def error_from_object(
    error: Mapping[str, Any],
    status: int | None,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
) -> LLMSwitchError:
    """Map an `{"type", "message"}` error object (also the payload of an `error` event)."""
    kind = str(error.get("type") or "")
    message = str(error.get("message") or kind or "provider error")
    effective = status if status and status >= 400 else STATUS_FOR_TYPE.get(kind, 500)
    lowered = message.lower()
    quota_text = any(p in lowered for p in QUOTA_PHRASES)
    result = error_for_status(
        effective,
        message,
        headers or {},
        body=body if body is not None else dict(error),
        context_too_long=kind == "request_too_large"
        or any(p in lowered for p in CONTEXT_PHRASES),
        model_missing=kind == "not_found_error",
        quota=kind == "billing_error" or (
            kind in ("invalid_request_error", "rate_limit_error") and quota_text),
    )
    result.status = status if status and status >= 400 else None
    return result
