"""llmswitch: run work across many LLMs with one typed API.

The public API is what `__all__` lists; everything else is internal.

`import llmswitch` is cheap: each public name is imported on first use (PEP 562), so a
program or `llmswitch --help` pays only for what it touches.
"""

import typing as _typing

from llmswitch._lazy import lazy_exports as _lazy_exports

__version__ = "0.1.0"

# Public name -> the module that defines it (add new exports here and to __all__).
_EXPORTS: dict[str, str] = {
    "AllAttemptsFailedError": "llmswitch.errors",
    "AuthenticationError": "llmswitch.errors",
    "BadRequestError": "llmswitch.errors",
    "CallEstimate": "llmswitch.estimate",
    "CallRecord": "llmswitch.calls",
    "Catalog": "llmswitch.catalog",
    "collect": "llmswitch.models",
    "Completion": "llmswitch.results",
    "Config": "llmswitch.config",
    "ConfigError": "llmswitch.errors",
    "ConnectionError": "llmswitch.errors",
    "ContentFilteredError": "llmswitch.errors",
    "ContextTooLongError": "llmswitch.errors",
    "check_context": "llmswitch.capabilities",
    "cost_usd": "llmswitch.catalog",
    "new_trace_id": "llmswitch.calls",
    "ImagePart": "llmswitch.messages",
    "LLMSwitchError": "llmswitch.errors",
    "load_config": "llmswitch.config",
    "Message": "llmswitch.messages",
    "Model": "llmswitch.models",
    "ModelCard": "llmswitch.catalog",
    "ModelNotFoundError": "llmswitch.errors",
    "NoRouteError": "llmswitch.errors",
    "Observer": "llmswitch.switch",
    "OverloadedError": "llmswitch.errors",
    "ProviderError": "llmswitch.errors",
    "QuotaExceededError": "llmswitch.errors",
    "RateLimitedError": "llmswitch.errors",
    "Request": "llmswitch.request",
    "ResponseError": "llmswitch.errors",
    "ResponseFormat": "llmswitch.request",
    "SchemaError": "llmswitch.errors",
    "Settings": "llmswitch.request",
    "Span": "llmswitch.observe.trace",
    "StreamEnd": "llmswitch.results",
    "StreamEvent": "llmswitch.results",
    "StreamNotice": "llmswitch.results",
    "Switch": "llmswitch.switch",
    "TextDelta": "llmswitch.results",
    "TextPart": "llmswitch.messages",
    "TimeoutError": "llmswitch.errors",
    "ToolCall": "llmswitch.messages",
    "ToolCallDelta": "llmswitch.results",
    "ToolSpec": "llmswitch.messages",
    "UnsupportedError": "llmswitch.errors",
    "Usage": "llmswitch.results",
    "UsageUpdate": "llmswitch.results",
}

if _typing.TYPE_CHECKING:
    from llmswitch.calls import CallRecord, new_trace_id
    from llmswitch.capabilities import check_context
    from llmswitch.catalog import Catalog, ModelCard, cost_usd
    from llmswitch.config import Config, load_config
    from llmswitch.errors import (
        AllAttemptsFailedError,
        AuthenticationError,
        BadRequestError,
        ConfigError,
        ConnectionError,
        ContentFilteredError,
        ContextTooLongError,
        LLMSwitchError,
        ModelNotFoundError,
        NoRouteError,
        OverloadedError,
        ProviderError,
        QuotaExceededError,
        RateLimitedError,
        ResponseError,
        SchemaError,
        TimeoutError,
        UnsupportedError,
    )
    from llmswitch.estimate import CallEstimate
    from llmswitch.messages import ImagePart, Message, TextPart, ToolCall, ToolSpec
    from llmswitch.models import Model, collect
    from llmswitch.observe.trace import Span
    from llmswitch.request import Request, ResponseFormat, Settings
    from llmswitch.results import (
        Completion,
        StreamEnd,
        StreamEvent,
        StreamNotice,
        TextDelta,
        ToolCallDelta,
        Usage,
        UsageUpdate,
    )
    from llmswitch.switch import Observer, Switch

__all__ = [
    "AllAttemptsFailedError",
    "AuthenticationError",
    "BadRequestError",
    "CallEstimate",
    "CallRecord",
    "Catalog",
    "Completion",
    "Config",
    "ConfigError",
    "ConnectionError",
    "ContentFilteredError",
    "ContextTooLongError",
    "ImagePart",
    "LLMSwitchError",
    "Message",
    "Model",
    "ModelCard",
    "ModelNotFoundError",
    "NoRouteError",
    "Observer",
    "OverloadedError",
    "ProviderError",
    "QuotaExceededError",
    "RateLimitedError",
    "Request",
    "ResponseError",
    "ResponseFormat",
    "SchemaError",
    "Settings",
    "Span",
    "StreamEnd",
    "StreamEvent",
    "StreamNotice",
    "Switch",
    "TextDelta",
    "TextPart",
    "TimeoutError",
    "ToolCall",
    "ToolCallDelta",
    "ToolSpec",
    "UnsupportedError",
    "Usage",
    "UsageUpdate",
    "__version__",
    "check_context",
    "collect",
    "cost_usd",
    "load_config",
    "new_trace_id",
]


__getattr__, __dir__ = _lazy_exports(__name__, _EXPORTS, globals(), __all__)
