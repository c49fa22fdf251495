"""Incremental decoders that cut a byte stream into frames: SSE events and NDJSON lines.

Bytes may arrive split anywhere (even inside a UTF-8 character); decoders buffer until a frame
is complete. `close` returns what remains and raises if a partial frame is left over.
"""

from __future__ import annotations

import codecs
import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from llmswitch.errors import ResponseError


class FrameDecoder(ABC):
    """Cuts bytes into frames."""

    @abstractmethod
    def feed(self, data: bytes) -> list[Any]:
        """Frames completed by `data`."""

    @abstractmethod
    def close(self) -> list[Any]:
        """Frames left at the end of the body."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One server-sent event: its `event:` name (or `None`) and its joined `data:` lines."""

    event: str | None
    data: str


class SSEDecoder(FrameDecoder):
    """Server-sent events per the WHATWG rules: comments (`:`) skipped, CRLF/CR/LF accepted.

    Linear in the body: text without a line break waits in a list of pieces that is joined
    once a break arrives, and a joined block is cut by one left-to-right scan.
    """

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending: list[str] = []
        self._cr_tail = False  # the pending text ends in '\r' (maybe half of a CRLF)
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Events completed by `data`."""
        text = self._text.decode(data)
        if not text:
            return []
        if not self._cr_tail and "\n" not in text and "\r" not in text:
            self._pending.append(text)
            return []
        return self._scan(text, final=False)

    def close(self) -> list[SSEEvent]:
        """Dispatch a last event that lacked its blank line."""
        out = self._scan(self._text.decode(b"", final=True), final=True)
        rest = "".join(self._pending)
        self._pending, self._cr_tail = [], False
        if rest:
            event = self._line(rest)
            if event is not None:
                out.append(event)
        if self._data:
            out.append(SSEEvent(self._event, "\n".join(self._data)))
            self._event, self._data = None, []
        return out

    def _scan(self, text: str, final: bool) -> list[SSEEvent]:
        """Cut the pending text plus `text` into lines; keep the unfinished last one."""
        self._pending.append(text)
        block = "".join(self._pending)
        if "\r" not in block:  # LF only (nearly every server): one C-level split
            *lines, tail = block.split("\n")
            self._pending = [tail] if tail else []
            self._cr_tail = False
            return [e for e in map(self._line, lines) if e is not None]
        out: list[SSEEvent] = []
        pos = 0
        for match in _EOL.finditer(block):
            if not final and match.end() == len(block) and match.group() == "\r":
                break  # wait: this may be a CRLF split across chunks
            event = self._line(block[pos : match.start()])
            pos = match.end()
            if event is not None:
                out.append(event)
        rest = block[pos:]
        self._pending = [rest] if rest else []
        self._cr_tail = rest.endswith("\r")
        return out

    def _line(self, line: str) -> SSEEvent | None:
        if line == "":
            if not self._data:
                self._event = None
                return None
            event = SSEEvent(self._event, "\n".join(self._data))
            self._event, self._data = None, []
            return event
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        return None


_EOL = re.compile(r"\r\n|\r|\n")


class NDJSONDecoder(FrameDecoder):
    """Newline-delimited JSON objects; blank lines skipped.

    Linear in the body: bytes without a newline wait in a list of pieces, joined once.
    """

    def __init__(self) -> None:
        self._pending: list[bytes] = []

    def feed(self, data: bytes) -> list[Any]:
        """Objects completed by `data`."""
        if b"\n" not in data:
            if data:
                self._pending.append(data)
            return []
        self._pending.append(data)
        *lines, rest = b"".join(self._pending).split(b"\n")
        self._pending = [rest] if rest else []
        return [_json_line(line) for line in lines if line.strip()]

    def close(self) -> list[Any]:
        """A last object without its newline."""
        rest, self._pending = b"".join(self._pending), []
        return [_json_line(rest)] if rest.strip() else []


def _json_line(line: bytes) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        raise ResponseError(
            f"malformed stream line: {line[:120].decode('utf-8', 'replace')!r}"
        ) from None


class JSONBodyDecoder(FrameDecoder):
    """The whole body as one JSON value, for a stream request answered in one piece.

    With `ndjson_fallback`, a body that is not one JSON document is read as NDJSON (a
    newline-delimited stream sent under the wrong content type).
    """

    def __init__(self, ndjson_fallback: bool = False) -> None:
        self._buffer = bytearray()
        self._ndjson = ndjson_fallback

    def feed(self, data: bytes) -> list[Any]:
        """Nothing until the body ends."""
        self._buffer += data
        return []

    def close(self) -> list[Any]:
        """The parsed body (nothing for an empty one)."""
        raw, self._buffer = bytes(self._buffer), bytearray()
        if not raw.strip():
            return []
        try:
            return [json.loads(raw)]
        except ValueError:
            if not self._ndjson:
                raise ResponseError(f"the response body is not JSON: {_snippet(raw)!r}") from None
        try:
            return [json.loads(line) for line in raw.splitlines() if line.strip()]
        except ValueError:
            raise ResponseError(f"the response body is not JSON: {_snippet(raw)!r}") from None


def _snippet(raw: bytes) -> str:
    return raw[:120].decode("utf-8", "replace")
