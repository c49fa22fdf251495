"""`strategy: cascade`: try targets from cheapest to strongest; stop at the first good answer.

```yaml
routes:
  careful:
    strategy: cascade
    targets: [cheap, mid, strong]      # in escalation order
    checks:                            # see strategies/checks.py for every kind
      - heuristics
      - {kind: judge, model: judge, threshold: 7}
    require: all                       # all | any: how checks combine
    final: accept                      # accept | check: is the last stage checked too?
```

A stage that errors escalates too. If the last stage fails (or, with `final: check`, fails
its checks) the best earlier answer is returned, marked in the reason; if no stage answered,
`AllAttemptsFailedError` carries every stage's error. The trace has one `step` span per
stage with its answer's trace, each check's verdict and score, and why it escalated. Usage and
cost sum every stage and every call a check made.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from llmswitch.errors import LLMSwitchError
from llmswitch.models import Model
from llmswitch.observe.trace import Span
from llmswitch.request import Request
from llmswitch.results import Completion
from llmswitch.strategies._tally import Tally
from llmswitch.strategies.checks import Check, Verdict, build_check
from llmswitch.strategies.registry import RouteContext


class Cascade(Model):
    """Escalate through `stages` until the answer passes `checks`."""

    def __init__(self, name: str, stages: Sequence[Model], checks: Sequence[Check],
                 require: str = "all", final: str = "accept") -> None:
        if not stages:
            raise ValueError("a cascade needs at least one target")
        if require not in ("all", "any"):
            raise ValueError("require must be 'all' or 'any'")
        if final not in ("accept", "check"):
            raise ValueError("final must be 'accept' or 'check'")
        self.name, self.stages, self.checks = name, list(stages), list(checks)
        self.require, self.final = require, final

    def prepare(self, request: Request) -> Request:
        """The request every stage gets (checks may ask for logprobs)."""
        for check in self.checks:
            request = check.prepare(request)
        return request

    async def judge(self, request: Request, answer: Completion, model: Model,
                    tally: Tally, span: Span) -> tuple[bool, str, float | None]:
        """Run the checks (short-circuiting), record them; (passed, reason, score)."""
        verdicts: dict[str, dict[str, Any]] = {}
        passed_any, reasons, scores = False, [], []
        for check in self.checks:
            verdict: Verdict = await check.evaluate(request, answer, model)
            for call in verdict.calls:
                tally.add(call, span)
            for error in verdict.errors:
                tally.failed(error, span)
            verdicts[check.name] = {"passed": verdict.passed, "score": verdict.score,
                                    "reason": verdict.reason}
            reasons.append(f"{check.name}: {verdict.reason}")
            if verdict.score is not None:
                scores.append(verdict.score)
            passed_any = passed_any or verdict.passed
            if self.require == "all" and not verdict.passed:
                break
            if self.require == "any" and verdict.passed:
                break
        ok = passed_any if self.require == "any" else all(v["passed"] for v in verdicts.values())
        span.attributes["llmswitch.checks"] = verdicts
        return ok, "; ".join(reasons) or "no checks", min(scores) if scores else None

    async def complete(self, request: Request) -> Completion:
        """Escalate until a stage's answer passes (see the module docstring)."""
        tally = Tally(self.name, "cascade",
                      **{"llmswitch.candidates": [m.name for m in self.stages]})
        staged = self.prepare(request)
        best: tuple[Completion, Model, int] | None = None
        scores: dict[str, float] = {}
        last = len(self.stages) - 1
        for i, model in enumerate(self.stages):
            span = Span(f"stage {i + 1}: {model.name}", "step", {"llmswitch.stage": i + 1})
            tally.span.child(span)
            started = time.perf_counter()
            try:
                answer = tally.add(await model.complete(staged), span)
            except LLMSwitchError as exc:
                tally.failed(exc, span)
                span.fail(exc).finish(started)
                span.attributes["llmswitch.escalate"] = f"{exc.type}: escalating"
                continue
            best = (answer, model, i)
            if i == last and self.final == "accept":
                span.finish(started)
                tally.decide(model.name, f"stage {i + 1} (last) accepted without checks",
                             scores=scores)
                return tally.result(answer)
            ok, reason, score = await self.judge(request, answer, model, tally, span)
            span.finish(started)
            if score is not None:
                scores[model.name] = round(score, 4)
            span.attributes["llmswitch.passed"] = ok
            if ok:
                tally.decide(model.name, f"stage {i + 1} passed ({reason})", scores=scores)
                return tally.result(answer)
            span.attributes["llmswitch.escalate"] = reason
        if best is None:
            raise tally.all_failed(f"routes.{self.name}: every stage failed")
        answer, model, i = best
        tally.decide(model.name, f"no stage passed its checks; returning stage {i + 1}, "
                                 "the last that answered", scores=scores)
        return tally.result(answer)

    async def aclose(self) -> None:
        """Nothing to close: stages are owned by the Switch."""

    def describe(self) -> dict[str, Any]:
        """The cascade's stages and checks."""
        return {"name": self.name, "kind": "cascade", "stages": [m.name for m in self.stages],
                "checks": [c.name for c in self.checks]}


OPTIONS = frozenset({"checks", "final", "require"})
"""Option keys this strategy reads beside `strategy` and `targets` (others are rejected)."""


def build(ctx: RouteContext) -> Model:
    """Build a cascade from its route entry."""
    stages = ctx.targets()
    if not stages:
        raise ctx.fail("a cascade needs targets (cheapest first)")
    raw = ctx.option("checks", ["heuristics"])
    if not isinstance(raw, list):
        raise ctx.fail("'checks' must be a list of check kinds or {kind: ..., ...}")
    try:
        checks = [build_check(spec, ctx.resolve) for spec in raw]
        return Cascade(ctx.name, stages, checks, str(ctx.option("require", "all")),
                       str(ctx.option("final", "accept")))
    except ValueError as exc:
        raise ctx.fail(str(exc)) from None
