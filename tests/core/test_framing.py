"""SSE and NDJSON framing: chunk boundaries anywhere, comments, CRLF, multi-line data."""

from __future__ import annotations

import pytest

from llmswitch.adapters.framing import NDJSONDecoder, SSEDecoder, SSEEvent
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
