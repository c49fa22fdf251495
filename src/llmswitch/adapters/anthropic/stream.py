"""Stream parsing: Anthropic Messages SSE events → events and a final `Reply`.

The sequence is `message_start`, then per content block `content_block_start`,
`content_block_delta`*, `content_block_stop`, then `message_delta` (stop reason and cumulative
usage) and `message_stop`. `ping` may appear anywhere; an `error` event raises. A stream that
ends without `message_stop` is an error, never a silent truncation.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmswitch.adapters.anthropic.request import JSON_TOOL, JSON_TOOLS
from llmswitch.adapters.anthropic.response import (
    build_reply,
    json_answer,
    parse_message,
    usage_from,
)
from llmswitch.adapters.base import Reply, StreamParser
from llmswitch.adapters.framing import SSEEvent
from llmswitch.errors import LLMSwitchError, ResponseError
from llmswitch.messages import ToolCall
from llmswitch.results import StreamEvent, TextDelta, ToolCallDelta, Usage, UsageUpdate

ErrorMapper = Callable[[Mapping[str, Any]], LLMSwitchError]


@dataclass
class _Block:
    """One content block being assembled."""

    kind: str
    call_index: int = -1
    id: str = ""
    name: str = ""
    parts: list[str] = field(default_factory=list)


class MessagesStreamParser(StreamParser):
    """Accumulates one streamed message."""

    def __init__(self, on_error: ErrorMapper) -> None:
        self._on_error = on_error
        self._blocks: dict[int, _Block] = {}
        self._calls = 0
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._stop_reason: str | None = None
        self._stop_details: Any = None
        self._model: str | None = None
        self._done = False
        self._whole: Reply | None = None
        self.usage = Usage()

    def feed(self, frame: SSEEvent | Mapping[str, Any]) -> list[StreamEvent]:
        """Events from one SSE event (or one whole JSON body, if the server did not stream)."""
        if isinstance(frame, Mapping):
            return self._object(frame)
        data = frame.data.strip()
        if not data:
            return []
        try:
            event = json.loads(data)
        except ValueError:
            raise ResponseError(f"malformed or cut-off stream event: {data[:120]!r}",
                                hint="the stream was cut or garbled; retry or fall back",
                                usage=self.usage if self.usage.total_tokens else None) from None
        if not isinstance(event, dict):
            raise ResponseError(f"unexpected stream event: {data[:120]!r}")
        event.setdefault("type", frame.event)
        return self._event(event)

    def _event(self, event: Mapping[str, Any]) -> list[StreamEvent]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self._model = message.get("model") or self._model
            self.usage = usage_from(message.get("usage"), self.usage)
            return [UsageUpdate(self.usage)]
        if kind == "content_block_start":
            return self._block_start(int(event.get("index", 0)), event.get("content_block") or {})
        if kind == "content_block_delta":
            return self._delta(int(event.get("index", 0)), event.get("delta") or {})
        if kind == "message_delta":
            delta = event.get("delta") or {}
            self._stop_reason = delta.get("stop_reason") or self._stop_reason
            self._stop_details = delta.get("stop_details") or self._stop_details
            self.usage = usage_from(event.get("usage"), self.usage)
            return [UsageUpdate(self.usage)]
        if kind == "message_stop":
            self._done = True
        elif kind == "error":
            raise self._on_error(event.get("error") or {"type": "api_error"})
        return []  # ping, content_block_stop, and event types added later

    def _block_start(self, index: int, block: Mapping[str, Any]) -> list[StreamEvent]:
        kind = str(block.get("type") or "")
        current = _Block(kind)
        self._blocks[index] = current
        if kind == "text":
            return self._text_piece(str(block.get("text") or ""))
        if kind == "thinking":
            self._reasoning.append(str(block.get("thinking") or ""))
        elif kind == "tool_use":
            current.id, current.name = str(block.get("id") or ""), str(block.get("name") or "")
            start = block.get("input")
            if start:  # normally `{}` with the arguments in `input_json_delta` pieces
                current.parts.append(json.dumps(start))
            if current.name in JSON_TOOLS:
                return []
            current.call_index = self._calls
            self._calls += 1
            return [ToolCallDelta(current.call_index, current.id, current.name,
                                  "".join(current.parts))]
        return []

    def _delta(self, index: int, delta: Mapping[str, Any]) -> list[StreamEvent]:
        kind = delta.get("type")
        block = self._blocks.setdefault(index, _Block("text"))
        if kind == "text_delta":
            return self._text_piece(str(delta.get("text") or ""))
        if kind == "thinking_delta":
            self._reasoning.append(str(delta.get("thinking") or ""))
        elif kind == "input_json_delta":
            piece = str(delta.get("partial_json") or "")
            block.parts.append(piece)
            if piece and block.name == JSON_TOOL:
                return [TextDelta(piece)]  # the emulated JSON answer streams as text
            if piece and block.call_index >= 0:
                return [ToolCallDelta(block.call_index, None, None, piece)]
        return []

    def _text_piece(self, text: str) -> list[StreamEvent]:
        if not text:
            return []
        self._text.append(text)
        return [TextDelta(text)]

    def _object(self, data: Mapping[str, Any]) -> list[StreamEvent]:
        """A non-streamed body: a whole `message`, or an error."""
        if data.get("type") == "error" or isinstance(data.get("error"), Mapping):
            raise self._on_error(data.get("error") or {"type": "api_error"})
        if data.get("type") != "message":
            return self._event(data)
        self._whole = parse_message(data)
        self.usage = self._whole.usage
        self._done = True
        events: list[StreamEvent] = [UsageUpdate(self.usage)]
        if self._whole.text:
            events.append(TextDelta(self._whole.text))
        events.extend(ToolCallDelta(i, c.id, c.name, c.arguments)
                      for i, c in enumerate(self._whole.tool_calls))
        return events

    def finish(self) -> Reply:
        """The reply; without `message_stop` the stream was cut short."""
        if self._whole is not None:
            return self._whole
        if not self._done:
            got = "".join(self._text)
            raise ResponseError(
                "the stream ended before message_stop"
                + (f" (after {len(got)} characters)" if got else ""),
                hint="the connection was cut; retry or fall back",
                usage=self.usage if self.usage.total_tokens else None,
            )
        calls: list[ToolCall] = []
        emulated: str | None = None
        text = "".join(self._text)
        for _, block in sorted(self._blocks.items()):
            if block.kind != "tool_use":
                continue
            arguments = "".join(block.parts) or "{}"
            if block.name in JSON_TOOLS:
                emulated = block.name
                text = _emulated_text(block.name, arguments)
            else:
                calls.append(ToolCall(block.id or f"toolu_{len(calls)}", block.name, arguments))
        return build_reply(
            text=text,
            raw_finish=self._stop_reason,
            usage=self.usage,
            calls=tuple(calls),
            reasoning="".join(self._reasoning),
            model=self._model,
            stop_details=self._stop_details,
            raw=None,
            emulated=emulated,
        )


def _emulated_text(name: str, arguments: str) -> str:
    """The JSON answer; a truncated input (stop at `max_tokens`) is returned as it came."""
    if name == JSON_TOOL:
        return arguments  # exactly the text that was streamed
    try:
        return json_answer(name, json.loads(arguments))
    except ValueError:
        return arguments
