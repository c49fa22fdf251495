"""Stream parsing: `streamGenerateContent` chunks → events and a final `Reply`.

Each chunk is a whole `GenerateContentResponse` holding the next parts; `usageMetadata` is
cumulative (the last one wins). The stream is complete once a candidate carries a
`finishReason` (or the prompt was blocked); ending before that is an error.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from llmswitch.adapters.base import Reply, StreamParser
from llmswitch.adapters.framing import SSEEvent
from llmswitch.adapters.gemini.response import (
    Content,
    blocked_prompt,
    build_reply,
    candidate_of,
    parts_of,
    usage_from,
)
from llmswitch.errors import LLMSwitchError, ResponseError
from llmswitch.results import StreamEvent, TextDelta, ToolCallDelta, Usage, UsageUpdate

ErrorMapper = Callable[[Mapping[str, Any]], LLMSwitchError]


class GenerateStreamParser(StreamParser):
    """Accumulates one streamed response (SSE events or JSON-array elements)."""

    def __init__(self, on_error: ErrorMapper) -> None:
        self._on_error = on_error
        self._content = Content()
        self._finish: str | None = None
        self._blocked: str | None = None
        self._model: str | None = None
        self.usage = Usage()

    def feed(self, frame: SSEEvent | Any) -> list[StreamEvent]:
        """Events from one frame."""
        if isinstance(frame, SSEEvent):
            data = frame.data.strip()
            if not data or data == "[DONE]":
                return []
            try:
                chunk = json.loads(data)
            except ValueError:
                raise ResponseError(
                    f"malformed or cut-off stream chunk: {data[:120]!r}",
                    hint="the stream was cut or garbled; retry or fall back",
                    usage=self.usage if self.usage.total_tokens else None) from None
        else:
            chunk = frame
        if isinstance(chunk, list):  # a whole JSON array delivered as one value
            return [event for item in chunk for event in self.feed(item)]
        if not isinstance(chunk, Mapping):
            raise ResponseError(f"unexpected stream chunk: {str(chunk)[:120]!r}")
        return self._chunk(chunk)

    def _chunk(self, chunk: Mapping[str, Any]) -> list[StreamEvent]:
        if isinstance(chunk.get("error"), Mapping):
            raise self._on_error(chunk["error"])
        events: list[StreamEvent] = []
        self._model = chunk.get("modelVersion") or self._model
        candidate = candidate_of(chunk)
        first = len(self._content.calls)
        texts, calls = self._content.add_parts(parts_of(candidate))
        events.extend(TextDelta(t) for t in texts)
        events.extend(ToolCallDelta(first + i, c.id, c.name, c.arguments)
                      for i, c in enumerate(calls))
        if candidate is not None and isinstance(candidate.get("finishReason"), str):
            self._finish = candidate["finishReason"]
        self._blocked = blocked_prompt(chunk) or self._blocked
        if isinstance(chunk.get("usageMetadata"), Mapping):
            self.usage = usage_from(chunk["usageMetadata"])
            events.append(UsageUpdate(self.usage))
        return events

    def finish(self) -> Reply:
        """The reply; without a `finishReason` the stream was cut short."""
        if self._finish is None and self._blocked is None:
            got = "".join(self._content.text)
            raise ResponseError(
                "the stream ended before the model finished (no finishReason)"
                + (f" after {len(got)} characters" if got else ""),
                hint="the connection was cut; retry or fall back",
                usage=self.usage if self.usage.total_tokens else None,
            )
        return build_reply(self._content, self._finish, self._blocked, self.usage,
                           self._model, None)
