"""Error mapping: Google RPC error envelopes → the error tree.

`{"error": {"code", "message", "status", "details": [...]}}`, sometimes wrapped in a one-item
array (the JSON-array stream form), and sent as plain JSON even under `text/event-stream`.
A bad key is a 400 whose `ErrorInfo.reason` is `API_KEY_INVALID`: decided by reason, not status.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.http_errors import (
    MAX_RETRY_AFTER,
    error_for_status,
    map_enveloped_error,
    retry_after,
)
from llmswitch.errors import AuthenticationError, LLMSwitchError, RateLimitedError

STATUS_FOR_RPC: dict[str, int] = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "INTERNAL": 500,
    "UNKNOWN": 500,
    "UNAVAILABLE": 503,
    "DEADLINE_EXCEEDED": 504,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


def map_error(status: int, headers: Mapping[str, str], body: bytes) -> LLMSwitchError:
    """The typed error for a non-2xx response."""
    return map_enveloped_error(status, headers, body, error_from_object, unwrap_list=True)


def error_from_object(
    error: Mapping[str, Any],
    status: int | None,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
) -> LLMSwitchError:
    """Map one RPC error object (also an error chunk inside a stream)."""
    rpc = str(error.get("status") or "")
    code = error.get("code")
    message = str(error.get("message") or rpc or "provider error")
    effective = status if status and status >= 400 else (
        code if isinstance(code, int) and code >= 400 else STATUS_FOR_RPC.get(rpc, 500))
    details = [d for d in error.get("details") or () if isinstance(d, Mapping)]
    reasons = {str(d.get("reason") or "") for d in details}
    lowered = message.lower()
    kw: dict[str, Any] = {"status": status if status and status >= 400 else None,
                          "body": body if body is not None else dict(error)}
    if any(r.startswith("API_KEY") for r in reasons) or rpc in ("UNAUTHENTICATED",
                                                                 "PERMISSION_DENIED"):
        return AuthenticationError(message, hint="check GEMINI_API_KEY (or GOOGLE_API_KEY)",
                                   **kw)
    if effective == 429 or rpc == "RESOURCE_EXHAUSTED":
        delay = retry_delay(details)
        return RateLimitedError(
            message, retry_after=delay if delay is not None else retry_after(headers or {}), **kw
        )
    result = error_for_status(
        effective,
        message,
        headers or {},
        body=kw["body"],
        context_too_long="token count" in lowered and "exceed" in lowered,
        model_missing=effective == 404 or rpc == "NOT_FOUND",
        quota=rpc == "FAILED_PRECONDITION" and ("billing" in lowered or "free tier" in lowered),
    )
    result.status = kw["status"]
    return result


def retry_delay(details: list[Mapping[str, Any]]) -> float | None:
    """Seconds from a `google.rpc.RetryInfo` detail (`"retryDelay": "34.4s"`)."""
    for detail in details:
        if not str(detail.get("@type") or "").endswith("google.rpc.RetryInfo"):
            continue
        delay = detail.get("retryDelay")
        if isinstance(delay, Mapping):  # the proto form {"seconds": 34, "nanos": ...}
            seconds = float(delay.get("seconds") or 0) + float(delay.get("nanos") or 0) / 1e9
            return min(seconds, MAX_RETRY_AFTER)
        match = _DURATION.match(str(delay or ""))
        if match:
            return min(float(match.group(1)), MAX_RETRY_AFTER)
    return None
