"""Stream parsing: Chat Completions SSE chunks → events and a final `Reply`.

Handles what real traffic does: Azure's first chunk with empty `choices`, usage on a separate
`choices: []` chunk (OpenAI), on the finish chunk (DeepSeek) or after it with a non-empty
`choices` (OpenRouter), and errors inside a 200 stream (OpenRouter).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from llmswitch._json import loads
from llmswitch.adapters.base import Reply, StreamParser
from llmswitch.adapters.framing import SSEEvent
from llmswitch.adapters.openai_chat.response import (
    ERROR_FINISH_REASONS,
    finish_reason,
    usage_from,
)
from llmswitch.errors import LLMSwitchError, OverloadedError, ResponseError
from llmswitch.messages import ToolCall
from llmswitch.results import StreamEvent, TextDelta, ToolCallDelta, Usage, UsageUpdate

ErrorMapper = Callable[[Mapping[str, Any]], LLMSwitchError]


class ChatStreamParser(StreamParser):
    """Accumulates one streamed chat completion."""

    def __init__(self, on_error: ErrorMapper) -> None:
        self._on_error = on_error
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self._calls: dict[int, dict[str, Any]] = {}
        self._finish: str | None = None
        self._done = False
        self._model: str | None = None
        self.usage = Usage()

    def feed(self, frame: SSEEvent) -> list[StreamEvent]:
        """Events from one SSE event."""
        data = frame.data.strip()
        if not data:
            return []
        if data == "[DONE]":
            self._done = True
            return []
        try:
            chunk = loads(data)
        except ValueError:
            raise ResponseError(f"malformed stream chunk: {data[:120]!r}") from None
        if not isinstance(chunk, dict):
            raise ResponseError(f"unexpected stream chunk: {data[:120]!r}")
        return self._chunk(chunk)

    def _chunk(self, chunk: Mapping[str, Any]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if chunk.get("usage"):
            self.usage = usage_from(chunk["usage"])
            events.append(UsageUpdate(self.usage))
        if isinstance(chunk.get("error"), dict):
            raise self._on_error(chunk["error"])
        self._model = chunk.get("model") or self._model
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            events.extend(self._delta(choice.get("delta") or {}))
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return events

    def _delta(self, delta: Mapping[str, Any]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str):
            self._reasoning.append(reasoning)
        if delta.get("refusal"):
            self._refusal.append(str(delta["refusal"]))
        content = delta.get("content")
        if isinstance(content, str) and content:
            self._text.append(content)
            events.append(TextDelta(content))
        for item in delta.get("tool_calls") or ():
            events.append(self._tool_delta(item))
        return events

    def _tool_delta(self, item: Mapping[str, Any]) -> ToolCallDelta:
        index = int(item.get("index", len(self._calls)))
        fn = item.get("function") or {}
        call = self._calls.setdefault(index, {"id": None, "name": "", "arguments": []})
        if item.get("id"):
            call["id"] = item["id"]
        name = fn.get("name")
        if name and not call["name"].endswith(name):
            call["name"] += name
        args = fn.get("arguments")
        piece = args if isinstance(args, str) else (json.dumps(args) if args else "")
        call["arguments"].append(piece)
        return ToolCallDelta(index, item.get("id"), fn.get("name"), piece)

    def finish(self) -> Reply:
        """The reply; a stream that never said how it finished was cut short."""
        if self._finish is None:
            got = "".join(self._text)
            raise ResponseError(
                "the stream ended before the model finished"
                + (f" (after {len(got)} characters)" if got else ""),
                hint="the connection was cut; retry or fall back",
                usage=self.usage if self.usage.total_tokens else None,
            )
        if not self._done and not self.usage.total_tokens:
            # We always ask for usage, and servers end with a usage chunk or `[DONE]`.
            raise ResponseError(
                "the stream stopped after the finish chunk, before its usage and end marker",
                hint="the connection was cut; retry or fall back",
            )
        if self._finish in ERROR_FINISH_REASONS:
            raise OverloadedError(f"the provider ended the answer with an error "
                                  f"(finish_reason {self._finish!r})")
        calls = tuple(
            ToolCall(c["id"] or f"call_{i}", c["name"], "".join(c["arguments"]) or "{}")
            for i, c in sorted(self._calls.items())
        )
        refusal = "".join(self._refusal) or None
        return Reply(
            text="".join(self._text),
            finish_reason=finish_reason(self._finish, bool(calls), refusal),
            usage=self.usage,
            tool_calls=calls,
            refusal=refusal,
            reasoning="".join(self._reasoning),
            raw_finish_reason=self._finish,
            response_model=self._model,
        )
