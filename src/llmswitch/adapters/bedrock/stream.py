"""Stream parsing: ConverseStream event-stream messages → events and a final `Reply`.

Events: `messageStart`, `contentBlockStart` (a `toolUse` start carries id and name),
`contentBlockDelta` (`text`, `toolUse.input` fragments, `reasoningContent`), `contentBlockStop`,
`messageStop` (the stop reason: the stream is complete only after it), then `metadata` (usage).
An `exception` message raises the mapped error; usage seen so far stays on the parser.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llmswitch.adapters.base import Reply, StreamParser
from llmswitch.adapters.bedrock.errors import error_from_type, map_error
from llmswitch.adapters.bedrock.eventstream import EventMessage, EventStreamDecoder
from llmswitch.adapters.bedrock.request import STRUCTURED_TOOL
from llmswitch.adapters.bedrock.response import finish_reason, reply_from, usage_from
from llmswitch.adapters.framing import FrameDecoder, JSONBodyDecoder
from llmswitch.errors import ResponseError
from llmswitch.messages import ToolCall
from llmswitch.results import StreamEvent, TextDelta, ToolCallDelta, Usage, UsageUpdate


class SniffingDecoder(FrameDecoder):
    """Event stream or JSON, told apart by the first byte (frames start with a zero length
    byte, JSON with `{`): for a body whose content type does not say."""

    def __init__(self) -> None:
        self._inner: FrameDecoder | None = None

    def feed(self, data: bytes) -> list[Any]:
        """Frames completed by `data`."""
        if self._inner is None:
            if not data.strip():
                return []
            first = data.lstrip()[:1] if data[:1].isspace() else data[:1]
            self._inner = JSONBodyDecoder() if first in (b"{", b"[") else EventStreamDecoder()
        return self._inner.feed(data)

    def close(self) -> list[Any]:
        """What the chosen decoder has left."""
        return self._inner.close() if self._inner is not None else []


class ConverseStreamParser(StreamParser):
    """Accumulates one ConverseStream response."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        """contentBlockIndex -> {index, id, name, arguments} for tool-use blocks."""
        self._structured: set[int] = set()
        self._stop: str | None = None
        self._complete: Reply | None = None
        self.usage = Usage()

    def feed(self, frame: EventMessage | Mapping[str, Any]) -> list[StreamEvent]:
        """Events from one message (or from a plain JSON body)."""
        if not isinstance(frame, EventMessage):
            return self._json_body(frame)
        if frame.message_type in ("exception", "error"):
            raise self._exception(frame)
        payload = _payload(frame)
        handler = {
            "contentBlockStart": self._block_start,
            "contentBlockDelta": self._block_delta,
            "messageStop": self._message_stop,
            "metadata": self._metadata,
        }.get(frame.event_type)
        return handler(payload) if handler else []

    def _exception(self, frame: EventMessage) -> Exception:
        payload: dict[str, Any] = {}
        if frame.message_type == "error":
            kind = str(frame.headers.get(":error-code", ""))
            message = str(frame.headers.get(":error-message", ""))
        else:
            kind = str(frame.headers.get(":exception-type", ""))
            payload = _payload(frame)
            message = str(payload.get("message") or payload.get("Message") or "")
        error = error_from_type(kind, message or "error inside the stream",
                                body={"type": kind, **payload})
        if self.usage.total_tokens:
            error.usage = self.usage
        return error

    def _block_start(self, payload: Mapping[str, Any]) -> list[StreamEvent]:
        use = (payload.get("start") or {}).get("toolUse")
        if not isinstance(use, dict):
            return []
        block = int(payload.get("contentBlockIndex", len(self._calls)))
        if use.get("name") == STRUCTURED_TOOL:
            self._structured.add(block)
            return []
        index = len(self._calls)
        self._calls[block] = {"index": index, "id": use.get("toolUseId"),
                              "name": str(use.get("name") or ""), "arguments": []}
        return [ToolCallDelta(index, use.get("toolUseId"), use.get("name"), "")]

    def _block_delta(self, payload: Mapping[str, Any]) -> list[StreamEvent]:
        delta = payload.get("delta") or {}
        block = int(payload.get("contentBlockIndex", 0))
        if isinstance(delta.get("text"), str) and delta["text"]:
            self._text.append(delta["text"])
            return [TextDelta(delta["text"])]
        use = delta.get("toolUse")
        if isinstance(use, dict):
            piece = use.get("input")
            piece = piece if isinstance(piece, str) else json.dumps(piece)
            if block in self._structured:
                self._text.append(piece)
                return [TextDelta(piece)] if piece else []
            call = self._calls.get(block)
            if call is None:  # a delta without its start: keep it as an anonymous call
                call = self._calls[block] = {"index": len(self._calls), "id": None, "name": "",
                                             "arguments": []}
            call["arguments"].append(piece)
            return [ToolCallDelta(call["index"], None, None, piece)]
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str):
            self._reasoning.append(reasoning["text"])
        return []

    def _message_stop(self, payload: Mapping[str, Any]) -> list[StreamEvent]:
        self._stop = str(payload.get("stopReason") or "end_turn")
        return []

    def _metadata(self, payload: Mapping[str, Any]) -> list[StreamEvent]:
        if not payload.get("usage"):
            return []
        self.usage = usage_from(payload["usage"])
        return [UsageUpdate(self.usage)]

    def _json_body(self, data: Mapping[str, Any]) -> list[StreamEvent]:
        if not isinstance(data, Mapping) or "output" not in data:
            raise map_error(500, {}, json.dumps(data).encode())
        reply = reply_from(data)
        self._complete, self.usage = reply, reply.usage
        events: list[StreamEvent] = [TextDelta(reply.text)] if reply.text else []
        events.extend(ToolCallDelta(i, c.id, c.name, c.arguments)
                      for i, c in enumerate(reply.tool_calls))
        return events

    def finish(self) -> Reply:
        """The reply; without `messageStop` the stream was cut short."""
        if self._complete is not None:
            return self._complete
        if self._stop is None:
            got = "".join(self._text)
            raise ResponseError(
                "the stream ended before messageStop"
                + (f" (after {len(got)} characters)" if got else ""),
                hint="the connection was cut; retry or fall back",
                usage=self.usage if self.usage.total_tokens else None,
            )
        calls = tuple(
            ToolCall(c["id"] or f"call_{c['index']}", c["name"], "".join(c["arguments"]) or "{}")
            for c in sorted(self._calls.values(), key=lambda c: int(c["index"]))
        )
        return Reply(
            text="".join(self._text),
            finish_reason=finish_reason(self._stop, bool(calls), self.usage),
            usage=self.usage,
            tool_calls=calls,
            reasoning="".join(self._reasoning),
            raw_finish_reason=self._stop,
        )


def _payload(frame: EventMessage) -> dict[str, Any]:
    if not frame.payload.strip():
        return {}
    try:
        data = json.loads(frame.payload)
    except ValueError:
        raise ResponseError(
            f"malformed event payload: {frame.payload[:120].decode('utf-8', 'replace')!r}"
        ) from None
    return data if isinstance(data, dict) else {}


def parse_stream_body(body: bytes) -> Reply:
    """A whole ConverseStream body (event-stream frames) read as one reply."""
    decoder = EventStreamDecoder()
    parser = ConverseStreamParser()
    for frame in [*decoder.feed(body), *decoder.close()]:
        parser.feed(frame)
    return parser.finish()
