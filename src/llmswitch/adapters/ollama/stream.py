"""Stream parsing: Ollama NDJSON objects → events and a final `Reply`.

Each line is `{message: {content, thinking?, tool_calls?}, done: false}`; the last one has
`done: true`, `done_reason` and the token counts. A `{"error": "..."}` line (status still 200)
raises the mapped error; a stream that ends without `done: true` was cut short.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.base import Reply, StreamParser
from llmswitch.adapters.framing import FrameDecoder, NDJSONDecoder, SSEDecoder, SSEEvent
from llmswitch.adapters.ollama.errors import error_from_message
from llmswitch.adapters.ollama.response import (
    finish_reason,
    message_parts,
    tool_calls_from,
    usage_from,
)
from llmswitch.adapters.openai_chat.shapes import looks_like_sse
from llmswitch.adapters.openai_chat.stream import ChatStreamParser
from llmswitch.errors import ResponseError
from llmswitch.messages import ToolCall
from llmswitch.results import StreamEvent, TextDelta, ToolCallDelta, Usage, UsageUpdate


class OllamaStreamParser(StreamParser):
    """Accumulates one streamed `/api/chat` answer."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._thinking: list[str] = []
        self._calls: list[ToolCall] = []
        self._done: Mapping[str, Any] | None = None
        self._model: str | None = None
        self._chat: ChatStreamParser | None = None
        self.usage = Usage()

    def feed(self, frame: Any) -> list[StreamEvent]:
        """Events from one NDJSON object (or SSE event, from an OpenAI-shaped server)."""
        if isinstance(frame, SSEEvent):
            return self._chat_stream(frame)
        if not isinstance(frame, dict):
            raise ResponseError(f"unexpected stream line: {str(frame)[:120]!r}")
        if frame.get("error"):
            error = error_from_message(str(frame["error"]), None, None, frame)
            if self.usage.total_tokens:
                error.usage = self.usage
            raise error
        self._model = frame.get("model") or self._model
        text, thinking, raw_calls = message_parts(frame)
        events: list[StreamEvent] = []
        if thinking:
            self._thinking.append(thinking)
        if text:
            self._text.append(text)
            events.append(TextDelta(text))
        for call in tool_calls_from(raw_calls, start=len(self._calls)):
            events.append(ToolCallDelta(len(self._calls), call.id, call.name, call.arguments))
            self._calls.append(call)
        if frame.get("done"):
            self._done = frame
            self.usage = usage_from(frame)
            events.append(UsageUpdate(self.usage))
        return events

    def _chat_stream(self, frame: SSEEvent) -> list[StreamEvent]:
        if self._chat is None:
            self._chat = ChatStreamParser(lambda err: error_from_message(
                str(err.get("message") or err), None, None, dict(err)))
        events = self._chat.feed(frame)
        self.usage = self._chat.usage
        return events

    def finish(self) -> Reply:
        """The reply; without a `done: true` object the stream was cut short."""
        if self._chat is not None:
            return self._chat.finish()
        if self._done is None:
            got = "".join(self._text)
            raise ResponseError(
                "the stream ended before the model finished (no `done: true` line)"
                + (f" (after {len(got)} characters)" if got else ""),
                hint="the connection was cut or the model crashed; retry or fall back",
            )
        raw = self._done.get("done_reason")
        return Reply(
            text="".join(self._text),
            finish_reason=finish_reason(raw, bool(self._calls)),
            usage=self.usage,
            tool_calls=tuple(self._calls),
            reasoning="".join(self._thinking),
            raw_finish_reason=raw,
            response_model=self._model,
            raw=dict(self._done),
        )


def parse_stream_body(body: bytes) -> Reply:
    """A whole streamed body (NDJSON lines, or server-sent events) read as one reply."""
    decoder: FrameDecoder = SSEDecoder() if looks_like_sse(body) else NDJSONDecoder()
    parser = OllamaStreamParser()
    for frame in [*decoder.feed(body), *decoder.close()]:
        parser.feed(frame)
    return parser.finish()
