"""Shared helpers for mapping HTTP error responses: status table, `retry-after`, body text."""

from __future__ import annotations

import email.utils
import math
import time
from collections.abc import Callable, Mapping
from typing import Any

from llmswitch._json import loads
from llmswitch.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    ContextTooLongError,
    LLMSwitchError,
    ModelNotFoundError,
    OverloadedError,
    ProviderError,
    QuotaExceededError,
    RateLimitedError,
    TimeoutError,
)

MAX_RETRY_AFTER = 3600.0


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait, from `retry-after-ms`, `retry-after` (seconds or HTTP date) or an
    `x-ratelimit-reset` epoch (seconds or milliseconds). `None` when no header says."""
    h = {k.lower(): v for k, v in headers.items()}
    now = time.time() if now is None else now
    value: float | None = None
    if "retry-after-ms" in h:
        value = _number(h["retry-after-ms"])
        value = value / 1000 if value is not None else None
    if value is None and "retry-after" in h:
        value = _number(h["retry-after"])
        if value is None:
            value = _http_date(h["retry-after"], now)
    if value is None and "x-ratelimit-reset" in h:
        reset = _number(h["x-ratelimit-reset"])
        if reset is not None:
            reset = reset / 1000 if reset > 1e11 else reset
            value = reset - now if reset > 1e9 else reset
    if value is None:
        return None
    return min(max(value, 0.0), MAX_RETRY_AFTER)


def _number(text: str) -> float | None:
    try:
        value = float(text.strip())
    except (ValueError, AttributeError):
        return None
    return value if math.isfinite(value) else None


def _http_date(text: str, now: float) -> float | None:
    try:
        parsed = email.utils.parsedate_to_datetime(text.strip())
    except (ValueError, TypeError, IndexError):
        return None
    return parsed.timestamp() - now


def body_json(body: bytes) -> Any:
    """The body parsed as JSON, or `None` when it is not JSON."""
    try:
        return loads(body)  # orjson when it agrees with json (llmswitch/_json.py)
    except (ValueError, UnicodeDecodeError):
        return None


def body_snippet(body: bytes, limit: int = 300) -> str:
    """The start of a body as text, for messages about non-JSON replies."""
    text = body.decode("utf-8", "replace").strip()
    return text[:limit] + ("…" if len(text) > limit else "")


def error_for_status(
    status: int,
    message: str,
    headers: Mapping[str, str],
    *,
    body: Any = None,
    context_too_long: bool = False,
    model_missing: bool = False,
    filtered: bool = False,
    quota: bool = False,
) -> LLMSwitchError:
    """The error-tree class for an HTTP status, refined by what the adapter read in the body."""
    kw: dict[str, Any] = {"status": status, "body": body}
    if quota:
        return QuotaExceededError(message, hint="add credits or raise the spending limit", **kw)
    if context_too_long or status == 413:
        return ContextTooLongError(message, hint="shorten the input or use a larger-window model",
                                   **kw)
    if filtered:
        return ContentFilteredError(message, **kw)
    if model_missing:
        return ModelNotFoundError(message, **kw)
    if status in (401, 403):
        return AuthenticationError(message, hint="check the API key and its permissions", **kw)
    if status == 402:
        return QuotaExceededError(message, hint="add credits or raise the spending limit", **kw)
    if status == 404:
        return ModelNotFoundError(message, **kw)
    if status in (408, 504):
        return TimeoutError(message, **kw)
    if status == 429:
        return RateLimitedError(message, retry_after=retry_after(headers), **kw)
    if status >= 500 or status == 409:  # a 503/529 may say when to come back, like a 429
        return OverloadedError(message, hint="retry later or fall back to another model",
                               retry_after=retry_after(headers), **kw)
    if 400 <= status < 500:
        return BadRequestError(message, **kw)
    return ProviderError(message, **kw)


ErrorFromObject = Callable[[Mapping[str, Any], int | None, Mapping[str, str], Any], LLMSwitchError]


def map_enveloped_error(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    from_object: ErrorFromObject,
    unwrap_list: bool = False,
) -> LLMSwitchError:
    """The typed error for a `{"error": {...}}` body (mapped by the protocol's `from_object`),
    or by status alone when the body is something else. `unwrap_list`: a one-element JSON array
    around the envelope (Gemini's streamed form)."""
    data = body_json(body)
    if unwrap_list and isinstance(data, list) and len(data) == 1:
        data = data[0]
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return from_object(error, status, headers, data)
    return error_for_status(status, body_snippet(body) or f"HTTP {status}", headers, body=data)
