"""Error mapping: OpenAI-style error responses (and errors inside streams) → the error tree."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.http_errors import body_json, body_snippet, error_for_status
from llmswitch.errors import BadRequestError, LLMSwitchError

CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached"})
FILTER_CODES = frozenset({"content_filter", "content_policy_violation"})


def map_error(status: int, headers: Mapping[str, str], body: bytes) -> LLMSwitchError:
    """The typed error for a non-2xx response."""
    data = body_json(body)
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return error_from_object(error, status, headers, data)
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return error_from_object(data, status, headers, data)  # vLLM-style top-level error
    if isinstance(data, dict) and isinstance(data.get("detail"), str):
        error = data["detail"]
    message = error if isinstance(error, str) else (body_snippet(body) or f"HTTP {status}")
    if status == 404 and "model" not in message.lower():
        return BadRequestError(
            f"not found: {message}", status=status, body=data,
            hint="the endpoint does not exist here; check the base URL (e.g. a missing /v1)",
        )
    return error_for_status(status, message, headers, body=data)


def error_from_object(
    error: Mapping[str, Any],
    status: int | None,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
) -> LLMSwitchError:
    """Map an `{"message", "type", "code", "param"}` error object (also used mid-stream)."""
    code = str(error.get("code") or "")
    kind = str(error.get("type") or "")
    message = str(error.get("message") or kind or code or "provider error")
    numeric = int(code) if code.isdigit() else None
    effective = status if status and status >= 400 else (numeric or 500)
    lowered = message.lower()
    return error_for_status(
        effective,
        message,
        headers or {},
        body=body if body is not None else dict(error),
        context_too_long=code in CONTEXT_CODES or "maximum context length" in lowered
        or ("context length" in lowered and "exceed" in lowered),
        model_missing=code == "model_not_found"
        or (effective == 404 and "model" in lowered),
        filtered=code in FILTER_CODES,
        quota=code in QUOTA_CODES,
    )
