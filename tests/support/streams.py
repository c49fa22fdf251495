"""Drive an adapter's decoder and stream parser over a recorded body, cut into pieces."""

from __future__ import annotations

from llmswitch.adapters.base import Adapter, Reply, Target
from llmswitch.messages import Message
from llmswitch.request import Request
from llmswitch.results import StreamEvent


def run_stream(adapter: Adapter, provider: str, body: bytes, step: int,
               content_type: str) -> tuple[Reply, list[StreamEvent]]:
    """Feed `body` in `step`-byte pieces through a fresh decoder and parser; the reply and the
    events (raises what the parser raises, e.g. for a stream cut short)."""
    decoder = adapter.decoder(content_type)
    parser = adapter.stream_parser(Request((Message.user("x"),)), Target(provider, "m"))
    events: list[StreamEvent] = []
    for i in range(0, len(body), step):
        for frame in decoder.feed(body[i : i + step]):
            events.extend(parser.feed(frame))
    for frame in decoder.close():
        events.extend(parser.feed(frame))
    return parser.finish(), events
