"""The readable trace tree of `chat --trace` / `traces ID`."""

from __future__ import annotations

from llmswitch.cli.tracefmt import render_trace
from llmswitch.observe.trace import Span, span_from_dict


def test_render_tree_with_decision_and_failed_attempt() -> None:
    root = Span("fallback r", "strategy", {"llmswitch.chosen": "b", "llmswitch.skipped": ["x"],
                                           "llmswitch.retry_wait_s": 0.5})
    root.children.append(Span("chat a", "attempt", {"gen_ai.request.model": "a"}).fail(
        ValueError("boom")))
    root.children.append(Span("chat b", "attempt", {"gen_ai.usage.input_tokens": 3}))
    text = render_trace(span_from_dict(root.to_dict()))
    lines = text.splitlines()
    assert lines[0].startswith("fallback r [strategy] ok")
    assert "chosen=b" in lines[0] and "skipped=x" in lines[0] and "wait_s=0.5" in lines[0]
    assert lines[1].startswith("├─ chat a [attempt] ERROR ValueError: boom")
    assert lines[2].startswith("└─ chat b [attempt] ok") and "in=3" in lines[2]


def test_span_round_trips_through_json_shape() -> None:
    root = Span("s", "strategy", {"k": 1}, [Span("a", "attempt", {"x": [1]})])
    assert span_from_dict(root.to_dict()).to_dict() == root.to_dict()
