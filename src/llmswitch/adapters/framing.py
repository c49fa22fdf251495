"""Incremental decoders that cut a byte stream into frames: SSE events and NDJSON lines.

Bytes may arrive split anywhere (even inside a UTF-8 character); decoders buffer until a frame
is complete. `close` returns what remains and raises if a partial frame is left over.
"""

from __future__ import annotations

import codecs
import json
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
    """Server-sent events per the WHATWG rules: comments (`:`) skipped, CRLF/CR/LF accepted."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._buffer = ""
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, data: bytes) -> list[SSEEvent]:
        """Events completed by `data`."""
        self._buffer += self._text.decode(data)
        out: list[SSEEvent] = []
        while True:
            line, sep, rest = _split_line(self._buffer)
            if not sep:
                break
            self._buffer = rest
            event = self._line(line)
            if event is not None:
                out.append(event)
        return out

    def close(self) -> list[SSEEvent]:
        """Dispatch a last event that lacked its blank line."""
        self._buffer += self._text.decode(b"", final=True)
        out: list[SSEEvent] = []
        if self._buffer:
            event = self._line(self._buffer)
            self._buffer = ""
            if event is not None:
                out.append(event)
        if self._data:
            out.append(SSEEvent(self._event, "\n".join(self._data)))
            self._event, self._data = None, []
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


def _split_line(buffer: str) -> tuple[str, str, str]:
    i_n, i_r = buffer.find("\n"), buffer.find("\r")
    if i_r == -1 or (i_n != -1 and i_n < i_r):
        if i_n == -1:
            return buffer, "", ""
        return buffer[:i_n], "\n", buffer[i_n + 1 :]
    if i_r + 1 == len(buffer):
        return buffer, "", ""  # wait: this may be a CRLF split across chunks
    sep_len = 2 if buffer[i_r + 1] == "\n" else 1
    return buffer[:i_r], buffer[i_r : i_r + sep_len], buffer[i_r + sep_len :]


class NDJSONDecoder(FrameDecoder):
    """Newline-delimited JSON objects; blank lines skipped."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[Any]:
        """Objects completed by `data`."""
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        return [_json_line(line) for line in lines if line.strip()]

    def close(self) -> list[Any]:
        """A last object without its newline."""
        rest, self._buffer = self._buffer, b""
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
