"""The one table from a failure to each API's error: HTTP status, body and headers.

Two kinds of failure reach a client: the library's typed errors (`LLMSwitchError.type`, raised
by `Switch`) and the gateway's own refusals (`GatewayError`: bad JSON, no key, a model the key
may not use, a limit, a budget). Both are looked up here, once, and rendered in the shape of the
API the client spoke: OpenAI (`{"error": {"message", "type", "param", "code"}}`), Anthropic
(`{"type": "error", "error": {"type", "message"}}`) or the Responses API (OpenAI's shape).

Statuses follow what the official SDKs expect: they retry 408, 409, 429 and 5xx, so a
rate limit is 429 with `retry-after`, an upstream outage is 502/503/504, and an exhausted
budget is 402, which no SDK retries (waiting a few seconds cannot help).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from llmswitch import AllAttemptsFailedError, LLMSwitchError, RateLimitedError

Api: TypeAlias = Literal["openai", "anthropic", "responses"]


@dataclass(frozen=True, slots=True)
class ErrorKind:
    """How one kind of failure is shown: status, OpenAI type and code, Anthropic type."""

    status: int
    openai_type: str
    anthropic_type: str
    code: str | None = None


# The gateway's own refusals and the library's error types, by name.
KINDS: dict[str, ErrorKind] = {
    # refused by the gateway before any call
    "invalid_json": ErrorKind(400, "invalid_request_error", "invalid_request_error",
                              "invalid_json"),
    "invalid_request": ErrorKind(400, "invalid_request_error", "invalid_request_error"),
    "unauthenticated": ErrorKind(401, "authentication_error", "authentication_error",
                                 "invalid_api_key"),
    "model_not_allowed": ErrorKind(403, "permission_error", "permission_error",
                                   "model_not_allowed"),
    "forbidden": ErrorKind(403, "permission_error", "permission_error", "forbidden"),
    "not_found": ErrorKind(404, "invalid_request_error", "not_found_error", "not_found"),
    "method_not_allowed": ErrorKind(405, "invalid_request_error", "invalid_request_error",
                                    "method_not_allowed"),
    "body_too_large": ErrorKind(413, "invalid_request_error", "request_too_large",
                                "request_too_large"),
    "unsupported_media_type": ErrorKind(415, "invalid_request_error", "invalid_request_error",
                                        "unsupported_media_type"),
    "limit_exceeded": ErrorKind(429, "rate_limit_error", "rate_limit_error",
                                "rate_limit_exceeded"),
    "budget_exceeded": ErrorKind(402, "insufficient_quota", "billing_error", "budget_exceeded"),
    "unavailable": ErrorKind(503, "server_error", "overloaded_error", "unavailable"),
    "internal": ErrorKind(500, "server_error", "api_error", "internal_error"),
    # the library's error types (LLMSwitchError.type)
    "config": ErrorKind(500, "server_error", "api_error", "config_error"),
    "model_not_found": ErrorKind(404, "invalid_request_error", "not_found_error",
                                 "model_not_found"),
    "unsupported": ErrorKind(400, "invalid_request_error", "invalid_request_error",
                             "unsupported"),
    "provider_error": ErrorKind(502, "server_error", "api_error", "upstream_error"),
    "authentication": ErrorKind(502, "server_error", "api_error", "upstream_authentication"),
    "bad_request": ErrorKind(400, "invalid_request_error", "invalid_request_error"),
    "context_too_long": ErrorKind(400, "invalid_request_error", "invalid_request_error",
                                  "context_length_exceeded"),
    "content_filtered": ErrorKind(400, "invalid_request_error", "invalid_request_error",
                                  "content_filter"),
    "quota_exceeded": ErrorKind(502, "server_error", "api_error", "upstream_quota_exceeded"),
    "rate_limited": ErrorKind(429, "rate_limit_error", "rate_limit_error",
                              "upstream_rate_limited"),
    "overloaded": ErrorKind(503, "server_error", "overloaded_error", "upstream_overloaded"),
    "timeout": ErrorKind(504, "server_error", "api_error", "timeout"),
    "connection": ErrorKind(502, "server_error", "api_error", "upstream_connection"),
    "bad_response": ErrorKind(502, "server_error", "api_error", "upstream_bad_response"),
    "schema_failed": ErrorKind(422, "invalid_request_error", "invalid_request_error",
                               "schema_failed"),
    "no_route": ErrorKind(503, "server_error", "overloaded_error", "no_route"),
    "all_failed": ErrorKind(502, "server_error", "api_error", "all_attempts_failed"),
    "cancelled": ErrorKind(499, "server_error", "api_error", "cancelled"),
}


@dataclass
class GatewayError(Exception):
    """A refusal by the gateway itself (bad input, auth, limits), in the table's terms."""

    kind: str
    message: str
    param: str | None = None
    retry_after: float | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)
        if self.kind not in KINDS:
            raise ValueError(f"unknown gateway error kind {self.kind!r}")


@dataclass(frozen=True, slots=True)
class RenderedError:
    """An error ready to send: status, headers and the body object."""

    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    kind: str


def kind_of(error: BaseException) -> str:
    """The table's key for any failure (an unexpected exception is `internal`)."""
    if isinstance(error, GatewayError):
        return error.kind
    if isinstance(error, AllAttemptsFailedError):
        return _group_kind(error)
    if isinstance(error, LLMSwitchError):
        return error.type if error.type in KINDS else "internal"
    return "internal"


def _group_kind(error: AllAttemptsFailedError) -> str:
    """Every branch failed: when they failed alike, answer as that failure (e.g. all rate
    limited -> 429); otherwise a retryable group is `unavailable`, else `all_failed`."""
    kinds = {kind_of(e) for e in error.errors}
    if len(kinds) == 1:
        return kinds.pop()
    return "unavailable" if error.retryable else "all_failed"


def retry_after_of(error: BaseException) -> float | None:
    """Seconds the client should wait, when the failure says so."""
    if isinstance(error, GatewayError):
        return error.retry_after
    if isinstance(error, AllAttemptsFailedError):
        waits = [w for w in (retry_after_of(e) for e in error.errors) if w is not None]
        return min(waits) if waits else None
    if isinstance(error, RateLimitedError) or hasattr(error, "retry_after"):
        value = getattr(error, "retry_after", None)
        return float(value) if isinstance(value, (int, float)) else None
    return None


def message_of(error: BaseException) -> str:
    """What to tell the client (library errors already carry what/where/what to do)."""
    if isinstance(error, GatewayError):
        return error.message
    if isinstance(error, LLMSwitchError):
        return str(error)
    return "internal error in the gateway (see its log)"


def render(error: BaseException, api: Api) -> RenderedError:
    """The status, headers and body of `error` in the shape of `api`."""
    kind = kind_of(error)
    spec = KINDS[kind]
    message = message_of(error)
    headers: dict[str, str] = dict(getattr(error, "headers", None) or {})
    wait = retry_after_of(error)
    if wait is not None and spec.status == 429:
        headers["retry-after"] = str(max(1, math.ceil(wait)))
    trace_id = getattr(error, "trace_id", None)
    if trace_id:
        headers["x-llmswitch-trace-id"] = trace_id
    return RenderedError(spec.status, headers, error_body(kind, message, api,
                                                          getattr(error, "param", None)), kind)


def error_body(kind: str, message: str, api: Api, param: str | None = None) -> dict[str, Any]:
    """The error object of one API (what a stream's error event carries too)."""
    spec = KINDS[kind]
    if api == "anthropic":
        return {"type": "error", "error": {"type": spec.anthropic_type, "message": message}}
    return {"error": {"message": message, "type": spec.openai_type, "param": param,
                      "code": spec.code or kind}}
