"""llmswitch: run work across many LLMs with one typed API.

The public API is what `__all__` lists; everything else is internal.
"""

from llmswitch.calls import CallRecord
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

__version__ = "0.1.0"

__all__ = [
    "AllAttemptsFailedError",
    "AuthenticationError",
    "BadRequestError",
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
    "collect",
    "cost_usd",
    "load_config",
]
