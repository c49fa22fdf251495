"""The AWS event-stream binary framing (`application/vnd.amazon.eventstream`), pure and incremental.

A message is: total length (u32), headers length (u32), prelude CRC32 (u32), headers, payload,
message CRC32 (u32), all big-endian. Both checksums are CRC32 (`zlib.crc32`): the prelude's over
its first 8 bytes, the message's over everything before it. A header is a 1-byte name length,
the name, a 1-byte value type and the value (see `_VALUE_SIZES`).
"""

from __future__ import annotations

import struct
import uuid
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmswitch.adapters.framing import FrameDecoder
from llmswitch.errors import ResponseError

PRELUDE = 12
CRC = 4
MIN_MESSAGE = PRELUDE + CRC
MAX_MESSAGE = 24 * 1024 * 1024
"""Larger claimed lengths mean the framing is corrupt (AWS caps payloads far below this)."""

HeaderValue = bool | int | bytes | str | uuid.UUID

# type id -> fixed value size (None: 2-byte length prefix follows)
_VALUE_SIZES: dict[int, int | None] = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 6: None, 7: None,
                                       8: 8, 9: 16}
_INT_FORMATS = {2: ">b", 3: ">h", 4: ">i", 5: ">q", 8: ">q"}


@dataclass(frozen=True, slots=True)
class EventMessage:
    """One decoded message: its headers (`:event-type`, `:message-type`, …) and raw payload."""

    headers: Mapping[str, HeaderValue] = field(default_factory=dict)
    payload: bytes = b""

    @property
    def message_type(self) -> str:
        """`event`, `exception` or `error`."""
        return str(self.headers.get(":message-type", "event"))

    @property
    def event_type(self) -> str:
        """The event's name (`messageStart`, `contentBlockDelta`, …), or `''`."""
        return str(self.headers.get(":event-type", ""))


class EventStreamDecoder(FrameDecoder):
    """Cuts bytes into `EventMessage`s, checking both CRCs; bytes may arrive split anywhere.

    Linear in the body: messages are read at an offset and the consumed prefix is dropped
    once per `feed`, not once per message.
    """

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[EventMessage]:
        """Messages completed by `data` (raises `ResponseError` on corrupt framing)."""
        self._buffer += data
        buffer = self._buffer
        out: list[EventMessage] = []
        pos = 0
        try:
            while len(buffer) - pos >= PRELUDE:
                total = _prelude_length(bytes(buffer[pos : pos + PRELUDE]))
                if len(buffer) - pos < total:
                    break
                out.append(decode_message(bytes(buffer[pos : pos + total])))
                pos += total
        finally:
            del buffer[:pos]
        return out

    def close(self) -> list[EventMessage]:
        """Nothing may be left over: a partial message means the stream was cut mid-frame."""
        if self._buffer:
            left = len(self._buffer)
            self._buffer.clear()
            raise ResponseError(
                f"the event stream ended inside a message ({left} bytes of an incomplete frame)",
                hint="the connection was cut; retry or fall back",
            )
        return []


def _prelude_length(prelude: bytes) -> int:
    total, headers_len, crc = struct.unpack(">III", prelude)
    if zlib.crc32(prelude[:8]) != crc:
        raise ResponseError("corrupt event stream: prelude checksum mismatch",
                            hint="the response was damaged in transit; retry")
    if total < MIN_MESSAGE or total > MAX_MESSAGE or headers_len > total - MIN_MESSAGE:
        raise ResponseError(f"corrupt event stream: impossible lengths ({total}, {headers_len})")
    return int(total)


def decode_message(data: bytes) -> EventMessage:
    """One complete message (exactly its bytes) decoded and checked."""
    total = _prelude_length(data[:PRELUDE])
    if len(data) != total:
        raise ResponseError(f"corrupt event stream: message is {len(data)} bytes, not {total}")
    (crc,) = struct.unpack(">I", data[-CRC:])
    if zlib.crc32(data[:-CRC]) != crc:
        raise ResponseError("corrupt event stream: message checksum mismatch",
                            hint="the response was damaged in transit; retry")
    (headers_len,) = struct.unpack(">I", data[4:8])
    headers = decode_headers(data[PRELUDE : PRELUDE + headers_len])
    return EventMessage(headers, data[PRELUDE + headers_len : -CRC])


def decode_headers(data: bytes) -> dict[str, HeaderValue]:
    """The header block as a dict."""
    headers: dict[str, HeaderValue] = {}
    pos = 0
    try:
        while pos < len(data):
            name_len = data[pos]
            name = data[pos + 1 : pos + 1 + name_len].decode("utf-8")
            pos += 1 + name_len
            kind = data[pos]
            pos += 1
            value, pos = _header_value(data, pos, kind)
            headers[name] = value
    except (IndexError, struct.error, UnicodeDecodeError, KeyError):
        raise ResponseError("corrupt event stream: malformed headers") from None
    return headers


def _header_value(data: bytes, pos: int, kind: int) -> tuple[HeaderValue, int]:
    size = _VALUE_SIZES[kind]
    if kind in (0, 1):
        return kind == 0, pos
    if size is None:
        (length,) = struct.unpack(">H", data[pos : pos + 2])
        raw = data[pos + 2 : pos + 2 + length]
        if len(raw) != length:
            raise IndexError
        return (raw.decode("utf-8") if kind == 7 else bytes(raw)), pos + 2 + length
    raw = data[pos : pos + size]
    if len(raw) != size:
        raise IndexError
    if kind == 9:
        return uuid.UUID(bytes=bytes(raw)), pos + size
    (number,) = struct.unpack(_INT_FORMATS[kind], raw)
    return int(number), pos + size


def encode_message(headers: Mapping[str, Any], payload: bytes) -> bytes:
    """Encode one message (string, bool, int and bytes headers), e.g. for replay servers."""
    block = b"".join(_encode_header(name, value) for name, value in headers.items())
    total = PRELUDE + len(block) + len(payload) + CRC
    prelude = struct.pack(">II", total, len(block))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    body = prelude + block + payload
    return body + struct.pack(">I", zlib.crc32(body))


def _encode_header(name: str, value: Any) -> bytes:
    raw_name = name.encode("utf-8")
    head = bytes([len(raw_name)]) + raw_name
    if isinstance(value, bool):
        return head + bytes([0 if value else 1])
    if isinstance(value, int):
        return head + bytes([4]) + struct.pack(">i", value)
    if isinstance(value, bytes):
        return head + bytes([6]) + struct.pack(">H", len(value)) + value
    text = str(value).encode("utf-8")
    return head + bytes([7]) + struct.pack(">H", len(text)) + text


def event_frame(event_type: str, payload: bytes) -> bytes:
    """An `event` message as Bedrock sends it (JSON payload)."""
    return encode_message({":event-type": event_type, ":content-type": "application/json",
                           ":message-type": "event"}, payload)


def exception_frame(exception_type: str, payload: bytes) -> bytes:
    """An `exception` message (e.g. `throttlingException`) as Bedrock sends it mid-stream."""
    return encode_message({":exception-type": exception_type,
                           ":content-type": "application/json",
                           ":message-type": "exception"}, payload)
