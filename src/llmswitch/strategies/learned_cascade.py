"""A `strategy: learned` route over a cascade router file: probe cheap models, then decide.

The route's λ picks, per task, the arm the cascade stored (`routing.learned.cascade_serve`):
either one call to the model the base router predicts best for λ, or calls to the probe models
(concurrently), whose answers — compared with each other and with the answer memory — decide
whether a probe's answer stands or the request escalates. Every call is in the usage, the cost
and the trace: the `learned` span has the usual decision attributes plus ``llmswitch.arm``,
``.probes``, ``.probe_answers`` (normalised), ``.estimated_quality`` (the policy's estimate
after the probes) and ``.policy`` (the task policy used). A probe that fails counts as billed
and the request escalates to the base router's choice among the other targets.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import numpy as np

from llmswitch.errors import LLMSwitchError
from llmswitch.models import Model, replay_as_stream
from llmswitch.request import Request
from llmswitch.results import Completion, StreamEvent
from llmswitch.routing.learned.cascade import normalise_answer
from llmswitch.routing.learned.cascade_serve import (
    ProbePlan,
    choose_after_probes,
    plan_probes,
)
from llmswitch.routing.learned.policy import choose
from llmswitch.strategies._tally import Tally, stream_through
from llmswitch.strategies.learned import request_labels


class LearnedCascadeModel(Model):
    """Serves a `CascadeRouter` with live probe calls (see the module docstring)."""

    def __init__(self, name: str, router: Any, targets: Mapping[str, str], lam: float,
                 resolve: Callable[[str], Model], attributes: Mapping[str, Any]) -> None:
        self.name = name
        self.router = router
        self.targets = dict(targets)
        self.lam = lam
        self._resolve = resolve
        self._attributes = dict(attributes)

    def _plan(self, request: Request) -> tuple[Tally, ProbePlan]:
        tally = Tally(self.name, "learned", **self._attributes)
        task, labels = request_labels(request)
        plan = plan_probes(self.router, request.last_user_text, task, self.lam, self.targets,
                           labels)
        tally.span.attributes.update({
            "llmswitch.arm": plan.arm, "llmswitch.policy": plan.policy,
            "llmswitch.probes": [self.targets[p] for p in plan.probes],
            "llmswitch.predicted_quality": plan.predicted_quality,
            "llmswitch.predicted_cost_usd": plan.predicted_cost,
            "llmswitch.candidates": list(dict.fromkeys(self.targets.values())),
        })
        return tally, plan

    async def _probe(self, tally: Tally, plan: ProbePlan,
                     request: Request) -> tuple[str, Completion | None]:
        """Call the probes; the final table model and, if it is a probe, its answer."""
        calls = [self._resolve(self.targets[p]).complete(request) for p in plan.probes]
        results = await asyncio.gather(*calls, return_exceptions=True)
        answers: dict[str, Completion] = {}
        unexpected: BaseException | None = None
        for probe, result in zip(plan.probes, results, strict=True):
            if isinstance(result, LLMSwitchError):
                tally.failed(result)
            elif isinstance(result, BaseException):
                unexpected = unexpected or result  # count every answered probe first
            else:
                answers[probe] = tally.add(result)
        if unexpected is not None:
            raise unexpected
        if len(answers) < len(plan.probes):
            final = self._fallback(plan, exclude=set(plan.probes) - set(answers))
            if final is None:
                raise tally.all_failed(f"routes.{self.name}: every probe failed and no other "
                                       "target is routed")
            tally.decide(self.targets[final], f"a probe failed; base router's choice at "
                         f"λ={self.lam:g}: {final} → {self.targets[final]}")
            return final, answers.get(final)
        texts = [answers[p].text for p in plan.probes]
        final, estimate = choose_after_probes(self.router, plan, request.last_user_text, texts,
                                              self.targets)
        normalised = [normalise_answer(t)[:40] for t in texts]
        verdict = "kept" if final in answers else "escalated"
        tally.decide(self.targets[final],
                     f"{plan.arm}: probe answers {normalised} → {verdict} {final} "
                     f"(est. quality {estimate[final]:.3f}, λ′={plan.lam:g}) "
                     f"→ {self.targets[final]}",
                     probe_answers=normalised, estimated_quality=estimate)
        return final, answers.get(final)

    def _fallback(self, plan: ProbePlan, exclude: set[str]) -> str | None:
        """The base router's choice at λ among routed models not in ``exclude`` (or `None`)."""
        models = self.router.models
        q = np.asarray([[plan.predicted_quality[m] for m in models]])
        c = np.asarray([[plan.predicted_cost[m] for m in models]])
        mask = np.asarray([[m in self.targets and m not in exclude for m in models]])
        if not mask.any():
            return None
        return str(models[int(choose(q, c, self.lam, mask)[0])])

    async def _decide(self, request: Request) -> tuple[Tally, str, Completion | None]:
        tally, plan = self._plan(request)
        if plan.final is not None:
            tally.decide(self.targets[plan.final],
                         f"{plan.arm} at λ′={plan.lam:g}: {plan.final} → "
                         f"{self.targets[plan.final]}")
            return tally, plan.final, None
        final, answer = await self._probe(tally, plan, request)
        return tally, final, answer

    async def complete(self, request: Request) -> Completion:
        """Probe if the policy says so, then answer (see the module docstring)."""
        tally, final, answer = await self._decide(request)
        if answer is not None:
            return tally.result(answer)
        try:
            completion = tally.add(await self._resolve(self.targets[final]).complete(request))
        except LLMSwitchError as exc:
            tally.failed(exc)
            raise tally.fail(exc) from None
        return tally.result(completion)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Probes are complete calls; an escalation streams, a kept probe answer is replayed."""
        tally, final, answer = await self._decide(request)
        if answer is not None:
            async for event in replay_as_stream(_ready(tally.result(answer))):
                yield event
            return
        async for event in stream_through(tally, self._resolve(self.targets[final]), request):
            yield event

    def describe(self) -> dict[str, Any]:
        """The route, its router and candidates."""
        return {"name": self.name, "kind": "learned", "cascade": True,
                "candidates": list(dict.fromkeys(self.targets.values())),
                "targets": dict(self.targets), **self._attributes}


async def _ready(completion: Completion) -> Completion:
    return completion
