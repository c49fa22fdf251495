"""`strategy: cascade` with fake models: escalation, checks, cost sums, failures."""

from __future__ import annotations

from typing import Any

import pytest

from llmswitch import Switch
from llmswitch.errors import AllAttemptsFailedError, ConfigError, OverloadedError
from llmswitch.request import Request
from llmswitch.results import Completion, Usage
from llmswitch.strategies.checks import (
    Heuristics,
    LogprobConfidence,
    mean_logprob_confidence,
    parse_score,
)
from llmswitch.testing import FakeModel


def cascade(checks: list[Any], **extra: Any) -> dict[str, Any]:
    return {"routes": {"c": {"strategy": "cascade", "targets": ["cheap", "mid", "strong"],
                             "checks": checks, **extra}}}


def models(cheap: list[Any], mid: list[Any] | None = None, **more: FakeModel) -> dict[str, Any]:
    return {"cheap": FakeModel("cheap", cheap, cost_per_call=0.001),
            "mid": FakeModel("mid", mid or ["mid answer"], cost_per_call=0.01),
            "strong": FakeModel("strong", ["strong answer"], cost_per_call=0.1), **more}


async def test_accepts_first_passing_stage() -> None:
    s = Switch(cascade(["heuristics"]), models=models(["Paris"]))
    out = await s.complete("c", "Capital of France?")
    assert (out.text, out.model, out.cost_usd) == ("Paris", "cheap", 0.001)
    assert out.trace is not None and len(out.trace.children) == 1
    assert "stage 1 passed" in out.trace.attributes["llmswitch.reason"]


async def test_escalates_on_refusal_and_sums_every_stage() -> None:
    s = Switch(cascade(["heuristics"]),
               models=models(["I'm not sure, hard to say."], ["I can't help with that."]))
    out = await s.complete("c", "Capital of France?")
    assert out.model == "strong" and out.cost_usd == pytest.approx(0.111)
    assert out.usage.input_tokens == 3 * max(1, len("Capital of France?") // 4)
    stages = out.trace.children  # type: ignore[union-attr]
    assert [st.name for st in stages] == ["stage 1: cheap", "stage 2: mid", "stage 3: strong"]
    assert "hedging" in stages[0].attributes["llmswitch.escalate"]
    assert "refusal" in stages[1].attributes["llmswitch.escalate"]
    assert stages[0].attributes["llmswitch.checks"]["heuristics"]["passed"] is False


async def test_error_escalates_and_all_failing_raises_with_every_cause() -> None:
    boom = OverloadedError("busy")
    s = Switch(cascade(["heuristics"]), models=models([boom]))
    assert (await s.complete("c", "q")).model == "mid"
    fails = {n: FakeModel(n, [OverloadedError(f"{n} busy")]) for n in ("cheap", "mid", "strong")}
    s2 = Switch(cascade(["heuristics"]), models=fails)
    with pytest.raises(AllAttemptsFailedError) as info:
        await s2.complete("c", "q")
    assert len(info.value.errors) == 3 and "routes.c" in str(info.value)
    assert info.value.trace is not None and len(info.value.trace.children) == 3


async def test_judge_scores_and_garbage_escalates_with_reason() -> None:
    judge = FakeModel("judge", ["Score: 4", "I refuse to grade", "9"], cost_per_call=0.005)
    s = Switch(cascade([{"kind": "judge", "model": "judge", "threshold": 7}], final="check"),
               models=models(["a1"], ["a2"], judge=judge))
    out = await s.complete("c", "q")
    assert out.model == "strong" and out.cost_usd == pytest.approx(0.111 + 3 * 0.005)
    reasons = [st.attributes["llmswitch.escalate"] for st in out.trace.children[:2]]  # type: ignore[union-attr]
    assert "judge scored 4" in reasons[0]
    assert "judge 'judge' returned no score" in reasons[1]
    assert out.trace.attributes["llmswitch.scores"] == {"cheap": 0.4, "strong": 0.9}  # type: ignore[union-attr]


async def test_final_check_failing_returns_last_answer_with_reason() -> None:
    judge = FakeModel("judge", ["1"])
    s = Switch(cascade([{"kind": "judge", "model": "judge"}], final="check"),
               models=models(["a"], ["b"], judge=judge))
    out = await s.complete("c", "q")
    assert out.model == "strong"
    assert "no stage passed" in out.trace.attributes["llmswitch.reason"]  # type: ignore[union-attr]


async def test_self_consistency_samples_cost_and_agreement() -> None:
    cheap = FakeModel("cheap", ["42", "41", "40"], cost_per_call=0.001)
    mid = FakeModel("mid", ["7", "7.", "7"], cost_per_call=0.01)
    s = Switch(cascade([{"kind": "self_consistency", "samples": 3}]),
               models={"cheap": cheap, "mid": mid, "strong": FakeModel("strong")})
    out = await s.complete("c", "q")
    assert out.model == "mid" and out.text == "7"
    assert out.cost_usd == pytest.approx(3 * 0.001 + 3 * 0.01)
    assert cheap.calls[1].settings.temperature == 0.8


async def test_schema_check_uses_request_schema() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    s = Switch(cascade(["schema"]), models=models(['{"n": "x"}'], ['{"n": 2}']))
    out = await s.complete("c", "q", response_format={"schema": schema})
    assert out.model == "mid"
    checks = out.trace.children[0].attributes["llmswitch.checks"]  # type: ignore[union-attr]
    assert "schema error" in checks["schema"]["reason"]


async def test_require_any_passes_when_one_check_passes() -> None:
    s = Switch(cascade(["heuristics", {"kind": "heuristics", "min_chars": 50}], require="any"),
               models=models(["short"]))
    assert (await s.complete("c", "q")).model == "cheap"
    s2 = Switch(cascade(["heuristics", {"kind": "heuristics", "min_chars": 50}]),
                models=models(["short"], ["a long enough answer " * 3]))
    assert (await s2.complete("c", "q")).model == "mid"


class Scorer:
    def __init__(self, bar: float = 0.5) -> None:
        self.bar = bar

    def score(self, request: Request, answer: Completion) -> float:
        return 0.9 if answer.text.startswith("good") else 0.1


async def test_learned_check_plugs_in_a_scorer() -> None:
    check = {"kind": "learned", "scorer": f"{__name__}:Scorer", "bar": 0.2}
    s = Switch(cascade([check]), models=models(["bad"], ["good one"]))
    out = await s.complete("c", "q")
    assert out.model == "mid" and out.trace.attributes["llmswitch.scores"]["mid"] == 0.9  # type: ignore[union-attr]


def test_learned_check_without_scorer_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"routes\.c: .*learned check needs"):
        Switch(cascade([{"kind": "learned"}]), models=models(["x"]))


@pytest.mark.parametrize(("checks", "message"), [
    ([{"kind": "judge"}], "judge check needs 'model'"),
    (["vibes"], "unknown check kind"),
    ([{"kind": "heuristics", "reject": ["rude"]}], "unknown sign"),
    ("heuristics", "must be a list"),
])
def test_bad_checks_name_the_route(checks: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Switch(cascade(checks), models=models(["x"]))


def test_check_helpers() -> None:
    assert parse_score("I'd say 8/10") == 8 and parse_score("ten") is None
    assert parse_score("10") == 10
    raw = {"choices": [{"logprobs": {"content": [{"logprob": -0.1}, {"logprob": -0.3}]}}]}
    assert mean_logprob_confidence(raw) == pytest.approx(0.8187, abs=1e-3)
    assert mean_logprob_confidence({"choices": [{}]}) is None
    truncated = Completion("Paris is", "length", Usage(), 0.0, "p", "m")
    assert Heuristics().signs(truncated) == ["truncated"]


async def test_logprob_check_reads_raw_and_requests_logprobs() -> None:
    low = {"choices": [{"logprobs": {"content": [{"logprob": -2.0}]}}]}
    high = {"choices": [{"logprobs": {"content": [{"logprob": -0.01}]}}]}
    c1 = Completion("a", "stop", Usage(1, 1), 0.001, "fake", "cheap", raw=low)
    c2 = Completion("b", "stop", Usage(1, 1), 0.01, "fake", "mid", raw=high)
    cheap, mid = FakeModel("cheap", [c1]), FakeModel("mid", [c2])
    s = Switch(cascade([{"kind": "logprob", "threshold": 0.5, "request": True}]),
               models={"cheap": cheap, "mid": mid, "strong": FakeModel("strong")})
    out = await s.complete("c", "q")
    assert out.model == "mid" and cheap.calls[0].settings.extra["logprobs"] is True
    assert LogprobConfidence(missing="fail").missing == "fail"
