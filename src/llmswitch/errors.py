"""The one error tree. Adapters translate vendor errors into it once, at the boundary.

```
LLMSwitchError                        type                 retryable
├── ConfigError                       config               no
├── ModelNotFoundError                model_not_found      no   (.suggestions)
├── UnsupportedError                  unsupported          no   (model lacks a capability)
├── ProviderError                     provider_error       no
│   ├── AuthenticationError           authentication       no   (401/403, missing key)
│   ├── BadRequestError               bad_request          no
│   │   └── ContextTooLongError       context_too_long     no
│   ├── ContentFilteredError          content_filtered     no
│   ├── QuotaExceededError            quota_exceeded       no   (billing, credits, spend cap)
│   ├── RateLimitedError              rate_limited         yes  (.retry_after seconds)
│   ├── OverloadedError               overloaded           yes  (5xx, 529; .retry_after)
│   ├── TimeoutError                  timeout              yes
│   ├── ConnectionError               connection           yes
│   └── ResponseError                 bad_response         yes  (malformed or truncated reply)
├── SchemaError                       schema_failed        no   (.attempts)
├── NoRouteError                      no_route             no
└── AllAttemptsFailedError            all_failed           no   (.errors: every branch's cause)
```

Strategies decide by type (`isinstance`, `.retryable`), never by message text. Every error
names the provider and model where there is one and says what to do next (`hint`).
`usage` and `cost_usd` carry what a failed call was billed (e.g. a stream cut after tokens).
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from llmswitch.observe.trace import Span
    from llmswitch.results import Usage


class LLMSwitchError(Exception):
    """Base of every error llmswitch raises on purpose."""

    type: ClassVar[str] = "error"
    retryable: bool = False
    """Whether trying again (or elsewhere) may succeed; decided by type, per instance for groups."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status: int | None = None,
        hint: str | None = None,
        usage: Usage | None = None,
        cost_usd: float | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.model = model
        self.status = status
        self.hint = hint
        self.usage = usage
        self.cost_usd = cost_usd
        self.body = body
        self.trace: Span | None = None
        self.trace_id: str | None = None
        """The id of the top-level call that failed (set by `Switch`)."""

    def __str__(self) -> str:
        where = "/".join(p for p in (self.provider, self.model) if p)
        text = f"{where}: {self.message}" if where and where not in self.message else self.message
        return f"{text} ({self.hint})" if self.hint else text

    def to_dict(self) -> dict[str, Any]:
        """The public JSON shape (the CLI's `error` object)."""
        return {
            "type": self.type,
            "message": str(self),
            "provider": self.provider,
            "model": self.model,
            "status": self.status,
            **({"trace_id": self.trace_id} if self.trace_id else {}),
        }


class ConfigError(LLMSwitchError):
    """The configuration (file, dict or argument) is invalid."""

    type = "config"


class ModelNotFoundError(LLMSwitchError):
    """No such model: unknown to the config and catalog, or the provider said 404."""

    type = "model_not_found"

    def __init__(self, message: str, *, suggestions: Sequence[str] = (), **kw: Any) -> None:
        self.suggestions = tuple(suggestions)
        if self.suggestions and "hint" not in kw:
            kw["hint"] = "did you mean " + ", ".join(f'"{s}"' for s in self.suggestions) + "?"
        super().__init__(message, **kw)


class UnsupportedError(LLMSwitchError):
    """The request needs something the chosen model cannot do (tools, images, schema, window)."""

    type = "unsupported"


class ProviderError(LLMSwitchError):
    """The provider answered with an error, or could not be reached."""

    type = "provider_error"


class AuthenticationError(ProviderError):
    """Missing, invalid or unauthorised credentials."""

    type = "authentication"


class BadRequestError(ProviderError):
    """The provider rejected the request as malformed or unsupported."""

    type = "bad_request"


class ContextTooLongError(BadRequestError):
    """The input (plus requested output) exceeds the model's context window."""

    type = "context_too_long"


class ContentFilteredError(ProviderError):
    """The provider's safety system blocked the request or the answer."""

    type = "content_filtered"


class QuotaExceededError(ProviderError):
    """The account is out of credits or over a spending cap: waiting will not help."""

    type = "quota_exceeded"


class RateLimitedError(ProviderError):
    """Too many requests or tokens; `retry_after` says how long to wait, when known."""

    type = "rate_limited"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class OverloadedError(ProviderError):
    """The provider is overloaded or failed internally (5xx, Anthropic 529); `retry_after`
    says how long to wait, when the provider said."""

    type = "overloaded"
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after


class TimeoutError(ProviderError, builtins.TimeoutError):
    """No complete answer within the timeout."""

    type = "timeout"
    retryable = True


class ConnectionError(ProviderError, builtins.ConnectionError):
    """The provider could not be reached, or the connection broke."""

    type = "connection"
    retryable = True


class ResponseError(ProviderError):
    """The reply could not be understood: not JSON, wrong shape, or a stream cut short."""

    type = "bad_response"
    retryable = True


class SchemaError(LLMSwitchError):
    """The answer did not satisfy the requested schema after every allowed attempt."""

    type = "schema_failed"

    def __init__(self, message: str, *, attempts: int = 1, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.attempts = attempts


class NoRouteError(LLMSwitchError):
    """No route or candidate could serve the request."""

    type = "no_route"


class AllAttemptsFailedError(LLMSwitchError):
    """Every branch failed; `errors` holds each branch's cause, in order."""

    type = "all_failed"

    def __init__(self, message: str, errors: Sequence[BaseException], **kw: Any) -> None:
        self.errors = tuple(errors)
        causes = "; ".join(f"[{i + 1}] {e}" for i, e in enumerate(self.errors))
        super().__init__(f"{message}: {causes}" if causes else message, **kw)
        # A group is worth retrying elsewhere when any branch failed for a passing reason.
        self.retryable = any(getattr(e, "retryable", False) for e in self.errors)

    def to_dict(self) -> dict[str, Any]:
        """The error object, plus each cause under `errors`."""
        out = super().to_dict()
        out["errors"] = [
            e.to_dict() if isinstance(e, LLMSwitchError) else {"type": type(e).__name__,
                                                                 "message": str(e)}
            for e in self.errors
        ]
        return out


ERROR_TYPES: dict[str, type[LLMSwitchError]] = {
    cls.type: cls
    for cls in (
        LLMSwitchError, ConfigError, ModelNotFoundError, UnsupportedError, ProviderError,
        AuthenticationError, BadRequestError, ContextTooLongError, ContentFilteredError,
        QuotaExceededError,
        RateLimitedError, OverloadedError, TimeoutError, ConnectionError, ResponseError,
        SchemaError, NoRouteError, AllAttemptsFailedError,
    )
}
"""Error classes by their `type` name (used to configure `fallback_on`)."""
