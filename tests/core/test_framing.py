"""SSE and NDJSON framing: chunk boundaries anywhere, comments, CRLF, multi-line data."""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from llmswitch.adapters.bedrock.eventstream import EventStreamDecoder, event_frame
from llmswitch.adapters.framing import FrameDecoder, NDJSONDecoder, SSEDecoder, SSEEvent
from llmswitch.adapters.gemini.framing import JSONArrayDecoder, StreamDecoder
from llmswitch.errors import ResponseError

STREAM = (": OPENROUTER PROCESSING\r\n\r\nevent: delta\r\ndata: {\"a\": \"é\"}\r\n\r\n"
          "data: line1\ndata: line2\n\n:keep-alive\n\ndata: [DONE]\n\n").encode()
EXPECTED = [SSEEvent("delta", '{"a": "é"}'), SSEEvent(None, "line1\nline2"),
            SSEEvent(None, "[DONE]")]


@pytest.mark.parametrize("step", [1, 2, 3, 5, 17, len(STREAM)])
def test_sse_any_chunking(step: int) -> None:
    decoder = SSEDecoder()
    events = []
    for i in range(0, len(STREAM), step):
        events += decoder.feed(STREAM[i : i + step])
    events += decoder.close()
    assert events == EXPECTED


def test_sse_cr_only_and_missing_final_blank_line() -> None:
    decoder = SSEDecoder()
    events = decoder.feed(b"data: a\r\rdata: b")
    events += decoder.close()
    assert [e.data for e in events] == ["a", "b"]


def test_ndjson() -> None:
    decoder = NDJSONDecoder()
    out = decoder.feed(b'{"a": 1}\n\n{"b"') + decoder.feed(b': 2}\n{"c": 3}')
    out += decoder.close()
    assert out == [{"a": 1}, {"b": 2}, {"c": 3}]
    with pytest.raises(ResponseError):
        NDJSONDecoder().feed(b"{broken\n")


def test_sampling_fields_maps_only_what_is_set() -> None:
    from llmswitch.adapters.base import sampling_fields
    from llmswitch.request import Settings

    settings = Settings(temperature=0.0, max_tokens=5, stop=("END",))
    assert sampling_fields(settings, temperature="t", top_p="p", max_tokens="n",
                           stop="s") == {"t": 0.0, "n": 5, "s": ["END"]}
    assert sampling_fields(Settings(), temperature="t", stop="s") == {}


# Random chunkings: every decoder must give the same frames however the body is cut.
# (hypothesis is not a dependency; a seeded generator covers many cuts reproducibly.)

def _random_cuts(body: bytes, rng: random.Random) -> list[bytes]:
    cuts, i = [], 0
    while i < len(body):
        step = rng.choice((1, 1, 2, 3, 7, 13, 64, 500))
        cuts.append(body[i : i + step])
        i += step
    return cuts


def _frames(decoder_type: type[FrameDecoder], chunks: list[bytes]) -> list[Any]:
    decoder = decoder_type()
    out: list[Any] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    return out + decoder.close()


def _sse_body(rng: random.Random) -> bytes:
    parts = []
    for i in range(40):
        eol = rng.choice(("\n", "\r\n", "\r"))
        if rng.random() < 0.2:
            parts.append(f":comment {i}{eol}")
        if rng.random() < 0.5:
            parts.append(f"event: e{i}{eol}")
        lines = rng.randint(1, 3)
        parts += [f"data: {{\"i\": {i}, \"t\": \"é✓{'x' * rng.randint(0, 40)}\"}}{eol}"
                  for _ in range(lines)]
        parts.append(eol)
    return "".join(parts).encode()


def _ndjson_body(rng: random.Random) -> bytes:
    return b"".join(json.dumps({"i": i, "t": "é" * rng.randint(0, 30)}).encode()
                    + rng.choice((b"\n", b"\n\n", b"\r\n")) for i in range(50))


def _array_body(rng: random.Random) -> bytes:
    items = [json.dumps({"i": i, "s": 'a"]}[{\\' * rng.randint(0, 3), "n": [[i], {}]})
             for i in range(50)]
    return ("[" + ",\r\n".join(items) + "]").encode()


def _eventstream_body(rng: random.Random) -> bytes:
    return b"".join(event_frame("contentBlockDelta", json.dumps({"i": i}).encode() * rng.randint(
        1, 4)) for i in range(50))


@pytest.mark.parametrize(("decoder_type", "make_body"), [
    (SSEDecoder, _sse_body), (NDJSONDecoder, _ndjson_body),
    (JSONArrayDecoder, _array_body), (StreamDecoder, _array_body), (StreamDecoder, _sse_body),
    (EventStreamDecoder, _eventstream_body),
])
@pytest.mark.parametrize("seed", range(8))
def test_random_chunkings_give_identical_frames(decoder_type: type[FrameDecoder],
                                               make_body: Any, seed: int) -> None:
    rng = random.Random(seed)
    body = make_body(rng)
    whole = _frames(decoder_type, [body])
    assert len(whole) >= 40
    assert _frames(decoder_type, [body[i : i + 1] for i in range(len(body))]) == whole
    assert _frames(decoder_type, [body[i : i + 7] for i in range(0, len(body), 7)]) == whole
    assert _frames(decoder_type, _random_cuts(body, rng)) == whole


def test_sse_frames_match_the_spec_on_a_generated_body() -> None:
    # Independent reference: split on the three line endings, then apply the field rules.
    body = _sse_body(random.Random(99)).decode()
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    expected, event, data = [], None, []
    for line in lines:
        if line == "":
            if data:
                expected.append(SSEEvent(event, "\n".join(data)))
            event, data = None, []
        elif line.startswith("data: "):
            data.append(line[6:])
        elif line.startswith("event: "):
            event = line[7:]
    assert _frames(SSEDecoder, [body.encode()]) == expected


def test_a_crlf_split_across_chunks_is_one_line_break() -> None:
    decoder = SSEDecoder()
    out = decoder.feed(b"data: a\r") + decoder.feed(b"\n") + decoder.feed(b"\r") + decoder.feed(
        b"\ndata: b\r")
    assert out == [SSEEvent(None, "a")]
    assert decoder.close() == [SSEEvent(None, "b")]


def test_a_long_line_in_small_pieces_is_one_frame() -> None:
    payload = "x" * 50_000
    body = f"data: {payload}\n\n".encode()
    assert _frames(SSEDecoder, [body[i : i + 3] for i in range(0, len(body), 3)]) == [
        SSEEvent(None, payload)]
    line = json.dumps({"t": payload}).encode() + b"\n"
    assert _frames(NDJSONDecoder, [line[i : i + 3] for i in range(0, len(line), 3)]) == [
        {"t": payload}]
