"""Fallback decisions with fake models and a fake clock (no real waiting)."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch import (
    AllAttemptsFailedError,
    AuthenticationError,
    ConfigError,
    OverloadedError,
    RateLimitedError,
    ResponseError,
    StreamEnd,
    StreamNotice,
    Switch,
    TextDelta,
    TimeoutError,
    Usage,
)
from llmswitch.resilience.clock import FakeClock
from llmswitch.resilience.services import SERVICE_KEY, Resilience
from llmswitch.testing import FakeModel


def make(route: dict[str, Any], models: dict[str, FakeModel], clock: FakeClock | None = None,
         rng: float = 0.5) -> Switch:
    state = Resilience(clock=clock or FakeClock(), rng=lambda: rng)
    config = {"routes": {"r": {"strategy": "fallback", **route}}, "observe": {"ledger": False}}
    return Switch(config, models=models, services={SERVICE_KEY: state}, observers=[])


async def test_primary_answers_without_fallback() -> None:
    a, b = FakeModel("a", ["from a"], cost_per_call=0.01), FakeModel("b", ["from b"])
    c = await make({"targets": ["a", "b"]}, {"a": a, "b": b}).complete("r", "hi")
    assert (c.text, c.model, b.call_count) == ("from a", "a", 0)
    assert c.trace is not None and c.trace.kind == "strategy"
    attrs = c.trace.attributes
    assert attrs["llmswitch.strategy"] == "fallback"
    assert attrs["llmswitch.candidates"] == ["a", "b"]
    assert attrs["llmswitch.chosen"] == "a"
    assert attrs["llmswitch.reason"] == "first target answered"
    assert [s.attributes["llmswitch.target"] for s in c.trace.attempts()] == ["a"]


async def test_retries_with_full_jitter_then_answers() -> None:
    clock = FakeClock()
    a = FakeModel("a", [OverloadedError("busy"), OverloadedError("busy"), "third time"])
    c = await make({"targets": ["a"], "retries": 2, "backoff": {"base": 1, "cap": 10}},
                   {"a": a}, clock, rng=0.5).complete("r", "hi")
    assert c.text == "third time" and a.call_count == 3
    assert clock.sleeps == [0.5, 1.0]  # uniform(0, 1*2**n) with rng 0.5
    spans = c.trace.attempts() if c.trace else []
    assert [s.status for s in spans] == ["error", "error", "ok"]
    assert spans[2].attributes["llmswitch.retry_wait_s"] == 1.0
    assert c.trace is not None and c.trace.attributes["llmswitch.retry_wait_s"] == 1.5


async def test_retry_after_is_honoured() -> None:
    clock = FakeClock()
    a = FakeModel("a", [RateLimitedError("slow down", retry_after=7.0), "ok"])
    c = await make({"targets": ["a"]}, {"a": a}, clock, rng=0.0).complete("r", "hi")
    assert c.text == "ok" and clock.sleeps == [7.0]


async def test_retry_after_past_deadline_falls_back_at_once() -> None:
    clock = FakeClock()
    a = FakeModel("a", [RateLimitedError("slow down", retry_after=30.0)])
    b = FakeModel("b", ["from b"])
    c = await make({"targets": ["a", "b"], "deadline": 10}, {"a": a, "b": b},
                   clock).complete("r", "hi")
    assert c.model == "b" and clock.sleeps == [] and a.call_count == 1


async def test_never_retries_authentication_and_raises_it_as_is() -> None:
    a = FakeModel("a", [AuthenticationError("bad key")])
    b = FakeModel("b", ["never"])
    with pytest.raises(AuthenticationError) as info:
        await make({"targets": ["a", "b"]}, {"a": a, "b": b}).complete("r", "hi")
    assert a.call_count == 1 and b.call_count == 0
    assert info.value.trace is not None and info.value.trace.kind == "strategy"
    assert len(info.value.trace.attempts()) == 1


async def test_fallback_on_config_extends_the_defaults() -> None:
    a = FakeModel("a", [AuthenticationError("bad key")])
    b = FakeModel("b", ["from b"])
    c = await make({"targets": ["a", "b"], "fallback_on": ["authentication"]},
                   {"a": a, "b": b}).complete("r", "hi")
    assert c.model == "b"


async def test_all_fail_sums_billed_usage_and_keeps_every_cause() -> None:
    billed = ResponseError("cut", usage=Usage(10, 5))
    billed.cost_usd = 0.002
    a = FakeModel("a", [billed])
    b = FakeModel("b", [TimeoutError("slow")])
    clock = FakeClock()
    with pytest.raises(AllAttemptsFailedError) as info:
        await make({"targets": ["a", "b"], "retries": 1}, {"a": a, "b": b},
                   clock).complete("r", "hi")
    err = info.value
    assert [e.type for e in err.errors] == ["bad_response"] * 2 + ["timeout"] * 2
    assert err.usage == Usage(20, 10) and err.cost_usd == pytest.approx(0.004)
    assert err.trace is not None and len(err.trace.attempts()) == 4
    assert err.trace.status == "error" and len(clock.sleeps) == 2


async def test_usage_and_cost_sum_failed_attempts() -> None:
    billed = ResponseError("cut", usage=Usage(10, 5))
    billed.cost_usd = 0.5
    a = FakeModel("a", [billed])
    b = FakeModel("b", ["fine"], cost_per_call=0.25)
    c = await make({"targets": ["a", "b"], "retries": 0}, {"a": a, "b": b}).complete("r", "x")
    assert c.cost_usd == pytest.approx(0.75)
    assert c.usage.input_tokens == 11 and c.model == "b"


async def test_circuit_opens_and_skips_then_probes_after_cooldown() -> None:
    clock = FakeClock()
    a = FakeModel("a", [OverloadedError("down")])
    b = FakeModel("b", ["from b"])
    switch = make({"targets": ["a", "b"], "retries": 0,
                   "breaker": {"failures": 2, "cooldown": 30}}, {"a": a, "b": b}, clock)
    for _ in range(2):
        await switch.complete("r", "hi")
    assert a.call_count == 2
    c = await switch.complete("r", "hi")
    assert a.call_count == 2 and c.trace is not None
    assert c.trace.attributes["llmswitch.skipped"] == ["a"]
    clock.time += 31
    a.script = ["back"]
    c = await switch.complete("r", "hi")
    assert c.model == "a" and a.call_count == 3  # the half-open probe closed it


async def test_nested_route_failure_falls_back_to_outer_target() -> None:
    a, b = FakeModel("a", [OverloadedError("x")]), FakeModel("b", [OverloadedError("y")])
    c_model = FakeModel("c", ["from c"])
    config = {"routes": {"inner": {"strategy": "fallback", "targets": ["a", "b"],
                                   "retries": 0},
                         "outer": {"strategy": "fallback", "targets": ["inner", "c"]}}}
    switch = Switch(config, models={"a": a, "b": b, "c": c_model}, observers=[],
                    services={SERVICE_KEY: Resilience(clock=FakeClock())})
    c = await switch.complete("outer", "hi")
    assert c.model == "c" and c.trace is not None
    assert [s.status for s in c.trace.attempts()] == ["error", "error", "ok"]


async def collect_events(switch: Switch, prompt: str = "hi") -> list[Any]:
    return [e async for e in switch.stream("r", prompt)]


async def test_stream_fails_over_before_first_token_transparently() -> None:
    a = FakeModel("a", [OverloadedError("down")])
    b = FakeModel("b", ["hello there world"])
    events = await collect_events(make({"targets": ["a", "b"], "retries": 0},
                                       {"a": a, "b": b}))
    assert not any(isinstance(e, StreamNotice) for e in events)
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    end = events[-1]
    assert isinstance(end, StreamEnd) and text == end.completion.text == "hello there world"


async def test_stream_continues_after_first_token() -> None:
    a = FakeModel("a", ["one two three four"], stream_cut_after=2,
                  stream_error=ResponseError("cut", usage=Usage(3, 2)))
    b = FakeModel("b", ["three four"])
    events = await collect_events(make({"targets": ["a", "b"], "retries": 0},
                                       {"a": a, "b": b}))
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    notices = [e for e in events if isinstance(e, StreamNotice)]
    end = events[-1]
    assert isinstance(end, StreamEnd)
    assert text == end.completion.text == "one two three four"
    assert [n.kind for n in notices] == ["failover"]
    # the continuation request carries the partial answer and asks to go on
    sent = b.calls[0].messages
    assert sent[-2].role == "assistant" and sent[-2].text == "one two "
    assert "Continue" in sent[-1].text
    assert end.completion.trace is not None
    assert end.completion.trace.attributes["llmswitch.stream_failover"] == 1
    assert end.completion.usage.input_tokens >= 3


async def test_stream_error_mode_raises_after_first_token() -> None:
    a = FakeModel("a", ["one two three"], stream_cut_after=1,
                  stream_error=ResponseError("cut"))
    b = FakeModel("b", ["never"])
    switch = make({"targets": ["a", "b"], "retries": 0, "on_stream_error": "error"},
                  {"a": a, "b": b})
    seen: list[str] = []
    with pytest.raises(AllAttemptsFailedError) as info:
        async for e in switch.stream("r", "hi"):
            if isinstance(e, TextDelta):
                seen.append(e.text)
    assert seen == ["one "] and b.call_count == 0
    assert info.value.trace is not None
    assert info.value.trace.attributes["llmswitch.stream_failed_after_chars"] == 4


@pytest.mark.parametrize(("route", "needle"), [
    ({"strategy": "fallback", "targets": ["nosuchmodel-xyz"]},
     r'routes\.r: targets\[0\]: unknown model'),
    ({"strategy": "fallback", "targets": ["a"], "retries": -1}, "routes.r"),
    ({"strategy": "fallback", "targets": ["a"], "fallback_on": ["nope"]}, "routes.r"),
    ({"strategy": "fallback", "targets": ["a"], "on_stream_error": "maybe"}, "routes.r"),
    ({"strategy": "fallback", "targets": []}, "routes.r: needs at least one target"),
])
def test_bad_config_is_rejected_at_load_naming_the_route(route: dict[str, Any],
                                                          needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Switch({"routes": {"r": route}}, models={"a": FakeModel("a")}, observers=[])


def test_cycle_is_rejected_at_load_naming_the_route() -> None:
    config = {"routes": {"x": {"strategy": "fallback", "targets": ["y"]},
                         "y": {"strategy": "cascade", "targets": ["x"]}}}
    with pytest.raises(ConfigError, match=r"routes\.x: routes form a cycle: x -> y -> x"):
        Switch(config, observers=[])
