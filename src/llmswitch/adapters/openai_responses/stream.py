"""Stream parsing: Responses API typed SSE events → events and a final `Reply`.

The stream is `response.created`, `response.in_progress`, then per output item
`response.output_item.added`, deltas (`response.output_text.delta`,
`response.function_call_arguments.delta`, `response.reasoning_text.delta`, …) and
`…done` events, and one terminal event carrying the whole `response`:
`response.completed`, `response.incomplete` or `response.failed`. An `error` event may arrive
instead. There is no `[DONE]` sentinel: a stream without a terminal event was cut short.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from llmswitch.adapters.base import Reply, StreamParser
from llmswitch.adapters.framing import SSEEvent
from llmswitch.adapters.openai_responses.errors import in_band_error
from llmswitch.adapters.openai_responses.response import reply_from_response, usage_from
from llmswitch.errors import ResponseError
from llmswitch.messages import ToolCall
from llmswitch.results import StreamEvent, TextDelta, ToolCallDelta, Usage, UsageUpdate

TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
REASONING_DELTAS = frozenset({
    "response.reasoning_text.delta", "response.reasoning_summary_text.delta",
})


@dataclass(slots=True)
class _Call:
    index: int
    id: str | None
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ResponsesStreamParser(StreamParser):
    """Accumulates one streamed response; the terminal event's `response` is authoritative."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._calls: dict[int, _Call] = {}
        """Tool calls by their output index."""
        self._final: Mapping[str, Any] | None = None
        self._model: str | None = None
        self.usage = Usage()

    def feed(self, frame: SSEEvent) -> list[StreamEvent]:
        """Events from one SSE event."""
        data = frame.data.strip()
        if not data or data == "[DONE]":
            return []
        try:
            event = json.loads(data)
        except ValueError:
            raise ResponseError(f"malformed stream event: {data[:120]!r}") from None
        if not isinstance(event, dict):
            raise ResponseError(f"unexpected stream event: {data[:120]!r}")
        kind = str(event.get("type") or frame.event or "")
        return self._event(kind, event)

    def _event(self, kind: str, event: Mapping[str, Any]) -> list[StreamEvent]:
        if kind == "response.output_text.delta":
            piece = str(event.get("delta") or "")
            self._text.append(piece)
            return [TextDelta(piece)] if piece else []
        if kind == "response.function_call_arguments.delta":
            return self._arguments(event)
        if kind == "response.output_item.added":
            return self._item_added(event)
        if kind in REASONING_DELTAS:
            self._reasoning.append(str(event.get("delta") or ""))
            return []
        if kind in ("response.created", "response.in_progress"):
            response = event.get("response") or {}
            self._model = response.get("model") or self._model
            return []
        if kind in TERMINAL:
            return self._terminal(event)
        if kind == "error" or kind.endswith(".error"):
            raise in_band_error(event)
        return []

    def _item_added(self, event: Mapping[str, Any]) -> list[StreamEvent]:
        item = event.get("item") or {}
        if item.get("type") != "function_call":
            return []
        out_index = int(event.get("output_index", len(self._calls)))
        call = _Call(len(self._calls), item.get("call_id") or item.get("id"),
                     str(item.get("name") or ""))
        self._calls[out_index] = call
        first = str(item.get("arguments") or "")
        if first:
            call.arguments.append(first)
        return [ToolCallDelta(call.index, call.id, call.name or None, first)]

    def _arguments(self, event: Mapping[str, Any]) -> list[StreamEvent]:
        out_index = int(event.get("output_index", 0))
        call = self._calls.get(out_index)
        if call is None:  # a server that skipped `output_item.added`
            call = _Call(len(self._calls), event.get("item_id"))
            self._calls[out_index] = call
        piece = str(event.get("delta") or "")
        call.arguments.append(piece)
        return [ToolCallDelta(call.index, arguments=piece)] if piece else []

    def _terminal(self, event: Mapping[str, Any]) -> list[StreamEvent]:
        response = event.get("response")
        if not isinstance(response, Mapping):
            raise ResponseError(f"{event.get('type')} event without a response object")
        if response.get("usage"):
            self.usage = usage_from(response["usage"])
        if event.get("type") == "response.failed" or response.get("status") == "failed":
            raise in_band_error(response if response.get("error") else
                                {"message": "the response failed"})
        self._final = response
        return [UsageUpdate(self.usage)] if self.usage.total_tokens else []

    def finish(self) -> Reply:
        """The reply; a stream without its terminal event was cut short."""
        if self._final is None:
            got = "".join(self._text)
            raise ResponseError(
                "the stream ended before the response completed"
                + (f" (after {len(got)} characters)" if got else ""),
                hint="the connection was cut; retry or fall back",
                usage=self.usage if self.usage.total_tokens else None,
            )
        reply = reply_from_response(self._final)
        return self._fill_from_deltas(reply)

    def _fill_from_deltas(self, reply: Reply) -> Reply:
        """Use the streamed pieces where a terminal response left its output out."""
        changes: dict[str, Any] = {}
        if not reply.text and self._text:
            changes["text"] = "".join(self._text)
        if not reply.tool_calls and self._calls:
            changes["tool_calls"] = tuple(
                ToolCall(c.id or f"call_{c.index}", c.name, "".join(c.arguments) or "{}")
                for c in sorted(self._calls.values(), key=lambda c: c.index)
            )
            if reply.finish_reason == "stop":
                changes["finish_reason"] = "tool_calls"
        if not reply.reasoning and self._reasoning:
            changes["reasoning"] = "".join(self._reasoning)
        if reply.response_model is None and self._model:
            changes["response_model"] = self._model
        return replace(reply, **changes) if changes else reply
