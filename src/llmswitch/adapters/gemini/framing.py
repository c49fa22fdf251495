"""Framing for `streamGenerateContent`: SSE (`alt=sse`), one incrementally streamed JSON array
(no `alt`), or a plain JSON object (an error, even under `text/event-stream`).

`StreamDecoder` decides from the first non-blank byte of the body, whatever the content type
says, so every form reaches the stream parser as frames.
"""

from __future__ import annotations

import json
import re
from typing import Any

from llmswitch.adapters.framing import FrameDecoder, SSEDecoder
from llmswitch.errors import ResponseError

# A whole string in one match, else a lone quote (a string the buffer cuts) or a bracket.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|["\[\]{}]')
_STRING_END = re.compile(rb'["\\]')
_QUOTE = ord('"')
_OPEN = frozenset(b"[{")


class JSONArrayDecoder(FrameDecoder):
    """The elements of one top-level JSON array, each yielded as soon as it is complete."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._pos = 0
        self._depth = 0  # 0: before '[' or after ']'; 1: between elements; >1: in an element
        self._start = -1
        self._in_string = False
        self._escape = False
        self._closed = False

    def feed(self, data: bytes) -> list[Any]:
        """Elements completed by `data`.

        Linear in the body: each byte is scanned once (a string cut by the end of the buffer
        resumes where it stopped), and consumed bytes are dropped once per call.
        """
        self._buffer += data
        buf = self._buffer
        out: list[Any] = []
        while self._pos < len(buf):
            if self._in_string:
                self._scan_string()
                continue
            match = _TOKEN.search(buf, self._pos)
            if match is None:
                self._check_gap(len(buf))
                self._pos = len(buf)
                break
            start, end = match.span()
            if self._depth <= 1:
                self._check_gap(start)
            self._pos = end
            if buf[start] == _QUOTE:
                # a string the buffer cuts is scanned as it arrives
                self._in_string = end - start == 1
                continue
            element = self._token(buf[start], start)
            if element is not None:
                out.append(element)
        self._compact()
        return out

    def _scan_string(self) -> None:
        buf = self._buffer
        while True:
            if self._escape:
                if self._pos >= len(buf):
                    return
                self._pos += 1
                self._escape = False
            match = _STRING_END.search(buf, self._pos)
            if match is None:
                self._pos = len(buf)
                return
            self._pos = match.end()
            if match.group() == b"\\":
                self._escape = True
                continue
            self._in_string = False
            return

    def _token(self, char: int, at: int) -> Any:
        if char in _OPEN:
            if self._closed:
                raise ResponseError("unexpected data after the end of the JSON array")
            self._depth += 1
            if self._depth == 2:
                self._start = at
        else:
            self._depth -= 1
            if self._depth == 1:
                return self._element(at + 1)
            if self._depth == 0:
                self._closed = True
            if self._depth < 0:
                raise ResponseError("malformed JSON array stream (unbalanced brackets)")
        return None

    def _element(self, end: int) -> Any:
        raw = bytes(self._buffer[self._start:end])
        self._start = -1
        try:
            return json.loads(raw)
        except ValueError:
            raise ResponseError(f"malformed stream element: {raw[:120]!r}") from None

    def _check_gap(self, end: int) -> None:
        """Between elements only whitespace and commas may appear."""
        if self._depth <= 1 and not self._in_string and end > self._pos:
            gap = bytes(self._buffer[self._pos:end]).replace(b",", b"").strip()
            if gap:
                raise ResponseError(f"unexpected data in JSON array stream: {gap[:60]!r}")

    def _compact(self) -> None:
        keep = self._start if self._start >= 0 else self._pos
        if keep > 0:
            del self._buffer[:keep]
            self._pos -= keep
            self._start = min(0, self._start)

    def close(self) -> list[Any]:
        """Nothing is left over in a complete array; a cut-off element is an error."""
        if self._depth > 1 or self._in_string:
            raise ResponseError("the JSON array stream ended inside an element",
                                hint="the connection was cut; retry or fall back")
        return []


class WholeJSONDecoder(FrameDecoder):
    """A body that is one JSON value, yielded at the end."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """Nothing until the end."""
        self._buffer += data
        return []

    def close(self) -> list[Any]:
        """The parsed value."""
        try:
            return [json.loads(bytes(self._buffer))]
        except ValueError:
            text = bytes(self._buffer[:120]).decode("utf-8", "replace")
            raise ResponseError(f"malformed JSON response: {text!r}") from None


class StreamDecoder(FrameDecoder):
    """Picks SSE, JSON-array or whole-JSON framing from the first non-blank byte."""

    def __init__(self) -> None:
        self._inner: FrameDecoder | None = None
        self._pending = b""

    def feed(self, data: bytes) -> list[Any]:
        """Frames completed by `data`."""
        if self._inner is None:
            self._pending += data
            head = self._pending.lstrip()
            if not head:
                return []
            self._inner = _decoder_for(head[:1])
            data, self._pending = self._pending, b""
        return self._inner.feed(data)

    def close(self) -> list[Any]:
        """Frames left at the end."""
        if self._inner is None:
            return []
        return self._inner.close()


def _decoder_for(first: bytes) -> FrameDecoder:
    if first == b"[":
        return JSONArrayDecoder()
    if first == b"{":
        return WholeJSONDecoder()
    return SSEDecoder()
