"""`strategy: ensemble` and `strategy: chain` with fake models."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch import Completion, Model, Request, Switch
from llmswitch.errors import (
    AllAttemptsFailedError,
    ConfigError,
    OverloadedError,
    ResponseError,
    SchemaError,
)
from llmswitch.errors import TimeoutError as CallTimeout
from llmswitch.testing import FakeModel


def ens(**options: Any) -> dict[str, Any]:
    return {"routes": {"e": {"strategy": "ensemble", "targets": ["a", "b", "c"], **options}}}


def trio(a: Any = "Yes.", b: Any = "yes", c: Any = "no", **kw: Any) -> dict[str, Any]:
    return {"a": FakeModel("a", [a], cost_per_call=0.01, **kw),
            "b": FakeModel("b", [b], cost_per_call=0.02, **kw),
            "c": FakeModel("c", [c], cost_per_call=0.03, **kw)}


class Gauge:
    """Counts calls in flight across models: `peak` proves (or rules out) overlap without
    timing anything."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    def wrap(self, models: dict[str, FakeModel]) -> dict[str, Model]:
        return {name: Tracked(model, self) for name, model in models.items()}


class Tracked(Model):
    def __init__(self, inner: FakeModel, gauge: Gauge) -> None:
        self.inner, self.gauge, self.name = inner, gauge, inner.name

    async def complete(self, request: Request) -> Completion:
        self.gauge.now += 1
        self.gauge.peak = max(self.gauge.peak, self.gauge.now)
        try:
            return await self.inner.complete(request)
        finally:
            self.gauge.now -= 1


async def test_vote_normalises_and_sums_cost() -> None:
    out = await Switch(ens(), models=trio()).complete("e", "Is water wet?")
    assert out.text == "Yes." and out.model == "a" and out.cost_usd == pytest.approx(0.06)
    assert out.trace is not None
    assert out.trace.attributes["llmswitch.scores"] == {"a": 0.6667, "b": 0.6667, "c": 0.3333}


async def test_members_run_in_parallel_with_bounded_concurrency() -> None:
    gauge = Gauge()
    await Switch(ens(), models=gauge.wrap(trio(delay=0.05))).complete("e", "q")
    assert gauge.peak == 3
    gauge = Gauge()
    await Switch(ens(concurrency=1), models=gauge.wrap(trio(delay=0.05))).complete("e", "q")
    assert gauge.peak == 1


async def test_quorum_tolerates_failures_and_cancels_stragglers() -> None:
    models = trio(a=OverloadedError("busy"))
    models["c"] = FakeModel("c", ["late"], delay=2.0)
    out = await Switch(ens(quorum=1, aggregate="vote"), models=models).complete("e", "q")
    assert out.model == "b"
    names = [(s.name, s.status, s.attributes.get("llmswitch.cancelled"))
             for s in out.trace.children]  # type: ignore[union-attr]
    assert ("chat a", "error", None) in names and ("cancel c", "ok", "quorum reached") in names


async def test_all_members_failing_raises_every_cause() -> None:
    models = {n: FakeModel(n, [OverloadedError(f"{n} down")]) for n in "abc"}
    with pytest.raises(AllAttemptsFailedError, match=r"routes\.e: every member failed") as info:
        await Switch(ens(), models=models).complete("e", "q")
    assert len(info.value.errors) == 3 and info.value.trace is not None


async def test_quorum_unreachable_is_an_error() -> None:
    models = trio(a=OverloadedError("x"), b=OverloadedError("y"))
    with pytest.raises(AllAttemptsFailedError, match="only 1 of 3 members answered"):
        await Switch(ens(quorum=2), models=models).complete("e", "q")


async def test_timeout_per_member() -> None:
    models = trio(b=OverloadedError("down"))
    models["c"] = FakeModel("c", ["slow"], delay=1.0)
    with pytest.raises(AllAttemptsFailedError, match="only 1 of 3") as info:
        await Switch(ens(timeout=0.05, quorum=2), models=models).complete("e", "q")
    assert any(isinstance(e, CallTimeout) for e in info.value.errors)


async def test_judge_picks_and_garbage_is_a_clear_error() -> None:
    models = {**trio(), "j": FakeModel("j", ["Answer 3 is best"], cost_per_call=0.1)}
    out = await Switch(ens(aggregate="judge", judge="j"), models=models).complete("e", "q")
    assert out.model == "c" and out.cost_usd == pytest.approx(0.16)
    models["j"] = FakeModel("j", ["they are all lovely"])
    with pytest.raises(ResponseError, match=r"routes\.e: judge 'j' returned no valid answer"):
        await Switch(ens(aggregate="judge", judge="j"), models=models).complete("e", "q")


async def test_synthesize_and_first() -> None:
    models = {**trio(), "s": FakeModel("s", ["merged"])}
    out = await Switch(ens(aggregate="synthesize", synthesizer="s"), models=models).complete(
        "e", "q", max_tokens=20)
    assert out.text == "merged" and models["s"].calls[0].settings.max_tokens == 20
    assert "Answer 3:\nno" in models["s"].calls[0].messages[0].text
    fast = trio()
    fast["a"] = FakeModel("a", ["slow"], delay=0.5)
    out = await Switch(ens(aggregate="first"), models=fast).complete("e", "q")
    assert out.model in ("b", "c")


@pytest.mark.parametrize(("options", "message"), [
    ({"aggregate": "judge"}, "needs 'judge'"),
    ({"aggregate": "median"}, "aggregate must be one of"),
    ({"quorum": 4}, "quorum must be between"),
])
def test_bad_ensemble_config(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Switch(ens(**options), models=trio()).model("e")


SENTIMENT = {"type": "object", "properties": {"label": {"enum": ["positive", "negative"]}},
             "required": ["label"]}


def chain(steps: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"routes": {"ch": {"strategy": "chain", "steps": steps, **extra}}}


SEED: list[dict[str, Any]] = [
    {"name": "extract", "target": "cheap", "prompt": "Facts in: {input}"},
    {"name": "summary", "target": "long", "prompt": "Summarise: {extract}"},
    {"name": "sentiment", "target": "cheap", "prompt": "Mood of: {input}", "schema": SENTIMENT},
    {"name": "report", "target": "strong",
     "prompt": "Report {{draft}}: {summary} / mood {sentiment.label}"},
]


async def test_chain_runs_steps_and_feeds_outputs_forward() -> None:
    def cheap(request: Any) -> str:
        text = request.messages[-1].text
        return '{"label": "positive"}' if text.startswith("Mood") else "fact list"

    models = {"cheap": FakeModel("cheap", [cheap], cost_per_call=0.001),
              "long": FakeModel("long", ["short summary"], cost_per_call=0.01),
              "strong": FakeModel("strong", ["final report"], cost_per_call=0.1)}
    out = await Switch(chain(SEED), models=models).complete("ch", "Great product, fast delivery")
    assert out.text == "final report" and out.model == "strong"
    assert out.cost_usd == pytest.approx(0.001 * 2 + 0.01 + 0.1)
    assert models["strong"].calls[0].messages[-1].text == (
        "Report {draft}: short summary / mood positive")
    assert out.trace is not None
    assert [c.name for c in out.trace.children] == [
        "step extract", "step sentiment", "step summary", "step report"]
    assert "3 levels" in out.trace.attributes["llmswitch.reason"]


async def test_independent_steps_run_in_parallel() -> None:
    steps = [{"name": n, "target": n, "prompt": "{input}"} for n in ("a", "b", "c")]
    steps.append({"name": "join", "target": "a", "prompt": "{a}{b}{c}"})
    gauge = Gauge()
    await Switch(chain(steps), models=gauge.wrap(trio(delay=0.05))).complete("ch", "q")
    assert gauge.peak == 3


async def test_step_failure_names_route_and_step() -> None:
    models = {"cheap": FakeModel("cheap", ["facts"]), "long": FakeModel("long", [
        OverloadedError("down")]), "strong": FakeModel("strong")}
    with pytest.raises(OverloadedError, match=r"routes\.ch step 'summary'") as info:
        await Switch(chain(SEED[:2]), models=models).complete("ch", "q")
    assert info.value.trace is not None
    assert info.value.trace.attributes["llmswitch.failed_step"] == "summary"


async def test_step_schema_failure_is_a_schema_error() -> None:
    models = {"cheap": FakeModel("cheap", ["no json here"]), "long": FakeModel("long"),
              "strong": FakeModel("strong")}
    with pytest.raises(SchemaError, match=r"routes\.ch step 'sentiment'") as info:
        await Switch(chain([SEED[2]]), models=models).complete("ch", "q")
    assert info.value.attempts == 2


@pytest.mark.parametrize(("steps", "message"), [
    ([{"name": "a", "target": "cheap", "prompt": "{missing}"}], "step 'a' references unknown"),
    ([{"name": "a", "target": "cheap", "prompt": "{b}"},
      {"name": "b", "target": "cheap", "prompt": "{a}"}], "cycle"),
    ([{"name": "a", "target": "cheap"}], "needs 'target'"),
    ([{"name": "a", "target": "cheap", "prompt": "x",
       "schema": {"type": "integer", "minimum": 5, "maximum": 1}}], "cannot be satisfied"),
])
def test_bad_chain_config_names_route_and_step(steps: list[Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        Switch(chain(steps), models={"cheap": FakeModel("cheap")}).model("ch")
    assert "routes.ch" in str(info.value)

