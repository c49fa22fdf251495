"""The ledger's trace JSON is encoded span by span; it must be exactly the text the dict path
(`Span.to_dict()` plus the trace id, through `dumps_text`) writes, for any span tree."""

from __future__ import annotations

import dataclasses
import datetime
import math
import types
from typing import Any

import pytest

from llmswitch._json import dumps_text
from llmswitch.observe.records import trace_json
from llmswitch.observe.trace import Span

TRACE_ID = "0123456789abcdef0123456789abcdef"


def reference(trace: Span, status: str | None = None,
              extra: dict[str, Any] | None = None) -> str:
    data = trace.to_dict()
    if status is not None:
        data["status"] = status
    if extra:
        data["attributes"] = {**data["attributes"], **extra}
    data["trace_id"] = TRACE_ID
    return dumps_text(data)


@dataclasses.dataclass
class Point:
    x: int


def attempt(name: str = "chat m", **attributes: Any) -> Span:
    span = Span(name, "attempt", {"gen_ai.provider.name": "openai", "llmswitch.cost_usd": 2.5e-05,
                                  "gen_ai.response.finish_reasons": ["stop"], **attributes})
    span.duration_ms = 12.345
    return span


def tree() -> Span:
    root = Span("fallback r", "strategy", {"llmswitch.chosen": "b", "llmswitch.retry_wait_s": 0.5})
    root.child(attempt("chat a").fail(ValueError("boom \u00e9 \"quoted\"")))
    inner = root.child(Span("cascade c", "strategy", {"llmswitch.skipped": ["x", "y"]}))
    assert inner is not None
    inner.child(attempt("chat b", **{"gen_ai.usage.input_tokens": 3}))
    inner.child(Span("step", "step"))
    root.duration_ms = 40.0
    return root


@pytest.mark.parametrize("status", [None, "cancelled", "abandoned"])
@pytest.mark.parametrize("extra", [None, {}, {"gen_ai.input.messages": [{"role": "user",
                                                                         "content": "hi"}]},
                                   {"llmswitch.chosen": "overridden", "new": 1}])
def test_same_text_as_the_dict_path(status: str | None, extra: dict[str, Any] | None) -> None:
    for trace in (attempt(), tree(), Span("empty", "step")):
        assert trace_json(trace, TRACE_ID, status, extra) == reference(trace, status, extra)


@pytest.mark.parametrize("value", [
    2**70,  # orjson refuses it: json's text for the whole trace
    math.nan, math.inf, 1e-05, -0.0, 10**18, True, None,
    datetime.datetime(2026, 1, 2, 3, 4, 5), {1: "non-str key"}, (1, 2), {"set"}, Point(1),
    b"bytes", "lone \ud800 surrogate", "\u2028 line separator",
    {"deep": [[[[{"x": [1, 2.5, "z"]}]]]]},
])
def test_unusual_values_match_the_dict_path(value: Any) -> None:
    trace = tree()
    trace.children[0].attributes["odd"] = value
    assert trace_json(trace, TRACE_ID) == reference(trace)
    assert trace_json(trace, TRACE_ID, "cancelled", {"odd": value}) == reference(
        trace, "cancelled", {"odd": value})


def test_unusual_shapes_match_the_dict_path() -> None:
    mapping = attempt()
    mapping.attributes = types.MappingProxyType({"a": 1})  # type: ignore[assignment]
    deep = Span("0", "strategy")
    node = deep
    for i in range(150):  # deeper than orjson nests
        node = node.child(Span(str(i), "strategy"))  # type: ignore[assignment]
    for trace in (mapping, deep):
        assert trace_json(trace, TRACE_ID) == reference(trace)
