"""Error mapping: Bedrock error responses and exception frames → the error tree.

The error type comes from the `x-amzn-errortype` header (`AccessDeniedException:http://…`,
the part before `:`), else `__type`/`code` in the JSON body (`com.amazon…#ValidationException`),
else the `:exception-type` header of an exception frame inside a stream (`throttlingException`).
`ValidationException` covers several cases that AWS distinguishes only by message, so that one
type is refined by its text; every other decision is by type.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.http_errors import body_json, body_snippet, error_for_status, retry_after
from llmswitch.errors import (
    AuthenticationError,
    BadRequestError,
    ContentFilteredError,
    ContextTooLongError,
    LLMSwitchError,
    ModelNotFoundError,
    OverloadedError,
    RateLimitedError,
    TimeoutError,
)

AUTH_TYPES = frozenset({
    "AccessDeniedException", "UnrecognizedClientException", "UnrecognizedClient",
    "ExpiredTokenException", "ExpiredToken", "IncompleteSignatureException", "IncompleteSignature",
    "InvalidSignatureException", "MissingAuthenticationTokenException",
    "MissingAuthenticationToken", "InvalidClientTokenId", "SignatureDoesNotMatch",
})
OVERLOADED_TYPES = frozenset({
    "ModelNotReadyException", "ServiceUnavailableException", "InternalServerException",
    "ModelStreamErrorException", "ModelErrorException", "InternalFailure", "ServiceUnavailable",
})
RATE_TYPES = frozenset({"ThrottlingException", "TooManyRequestsException",
                        "ServiceQuotaExceededException"})
CONTEXT_PHRASES = ("too long", "too many tokens", "context length", "context window",
                   "maximum context", "exceeds the maximum number of input tokens")
MODEL_PHRASES = ("model identifier is invalid", "model id is invalid",
                 "model identifier provided is invalid")

# The status an exception frame stands for (frames have none of their own).
TYPE_STATUS = {
    "ValidationException": 400, "AccessDeniedException": 403, "ResourceNotFoundException": 404,
    "ModelTimeoutException": 408, "ModelErrorException": 424, "ThrottlingException": 429,
    "ServiceQuotaExceededException": 429, "InternalServerException": 500,
    "ModelStreamErrorException": 500, "ServiceUnavailableException": 503,
    "ModelNotReadyException": 503,
}


def error_type_name(raw: str | None) -> str:
    """`AccessDeniedException:http://…`, `…#ThrottlingException` or `throttlingException` →
    the shape name with a capital first letter."""
    name = (raw or "").split(":", 1)[0].rsplit("#", 1)[-1].strip()
    return name[:1].upper() + name[1:]


def map_error(status: int, headers: Mapping[str, str], body: bytes) -> LLMSwitchError:
    """The typed error for a non-2xx Converse/ConverseStream response."""
    data = body_json(body)
    lowered = {k.lower(): v for k, v in headers.items()}
    kind = error_type_name(lowered.get("x-amzn-errortype"))
    message = ""
    if isinstance(data, dict):
        kind = kind or error_type_name(str(data.get("__type") or data.get("code") or ""))
        message = str(data.get("message") or data.get("Message") or "")
    message = message or body_snippet(body) or f"HTTP {status}"
    if not kind and status == 400:
        kind = "ValidationException"  # the only 400 type Bedrock has; proxies drop the header
    return error_from_type(kind, message, status, headers, data)


def error_from_type(
    kind: str,
    message: str,
    status: int | None = None,
    headers: Mapping[str, str] | None = None,
    body: Any = None,
) -> LLMSwitchError:
    """Map an AWS error type (`ThrottlingException`, …) and its message to the error tree."""
    kind = error_type_name(kind)
    status = status or TYPE_STATUS.get(kind)
    headers = headers or {}
    text = f"{kind}: {message}" if kind else message
    kw: dict[str, Any] = {"status": status, "body": body}
    if kind in RATE_TYPES:
        return RateLimitedError(text, retry_after=retry_after(headers),
                                hint="slow down or raise the Bedrock quota", **kw)
    if kind in OVERLOADED_TYPES:
        return OverloadedError(text, hint="retry later or fall back to another model",
                               retry_after=retry_after(headers), **kw)
    if kind in AUTH_TYPES:
        return AuthenticationError(
            text, hint="check the AWS credentials, region and that model access is enabled "
            "for this account", **kw)
    if kind == "ModelTimeoutException":
        return TimeoutError(text, hint="retry, or shorten the request", **kw)
    if kind == "ResourceNotFoundException":
        return ModelNotFoundError(text, **kw)
    if kind == "ValidationException":
        return _validation(text, message.lower(), kw)
    if kind in ("ContentFilteredException", "GuardrailInterventionException"):
        return ContentFilteredError(text, **kw)
    return error_for_status(status or 500, text, headers, body=body)


def _validation(text: str, lowered: str, kw: dict[str, Any]) -> LLMSwitchError:
    if any(p in lowered for p in MODEL_PHRASES):
        return ModelNotFoundError(text, **kw)
    if any(p in lowered for p in CONTEXT_PHRASES):
        return ContextTooLongError(text, hint="shorten the input or use a larger-window model",
                                   **kw)
    return BadRequestError(text, **kw)
