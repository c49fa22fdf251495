"""`strategy: ensemble`: ask several targets in parallel and aggregate their answers.

```yaml
routes:
  panel:
    strategy: ensemble
    targets: [a, b, c]
    aggregate: vote         # vote | judge | synthesize | first
    quorum: 2               # stop waiting once this many answered (default: all; first: 1)
    concurrency: 3          # calls in flight at once (default: all)
    timeout: 20             # seconds per member call (default: none)
    judge: strong           # aggregate: judge — picks the best answer by number
    synthesizer: strong     # aggregate: synthesize — merges the answers
```

Failed members are tolerated while the quorum can still be reached and are recorded in the
trace; members still running at quorum are cancelled (their spans say so). Votes compare
normalised answers (case, spacing, edge punctuation); ties go to the earlier target.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from llmswitch.errors import LLMSwitchError, ResponseError
from llmswitch.errors import TimeoutError as CallTimeout
from llmswitch.messages import Message
from llmswitch.models import Model
from llmswitch.observe.trace import Span
from llmswitch.request import Request
from llmswitch.results import Completion
from llmswitch.strategies._tally import Tally
from llmswitch.strategies.checks import normalise
from llmswitch.strategies.registry import RouteContext

AGGREGATES = ("vote", "judge", "synthesize", "first")
JUDGE_PROMPT = ("Several answers to the same request follow. Reply with only the number of the "
                "best answer.\n\nRequest:\n{request}\n\n{answers}")
SYNTH_PROMPT = ("Merge these answers to the request into one best answer. Keep what they agree "
                "on; resolve conflicts by correctness.\n\nRequest:\n{request}\n\n{answers}")
_NUMBER = re.compile(r"\d+")


class Ensemble(Model):
    """Parallel members, a quorum, and one aggregation."""

    def __init__(self, name: str, members: Sequence[Model], aggregate: str = "vote",
                 quorum: int | None = None, concurrency: int | None = None,
                 timeout: float | None = None, helper: Model | None = None) -> None:
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}")
        if aggregate in ("judge", "synthesize") and helper is None:
            key = "judge" if aggregate == "judge" else "synthesizer"
            raise ValueError(f"aggregate: {aggregate} needs '{key}' (a model or route name)")
        n = len(members)
        quorum = quorum if quorum is not None else (1 if aggregate == "first" else n)
        if not 1 <= quorum <= n:
            raise ValueError(f"quorum must be between 1 and the {n} targets")
        self.name, self.members, self.aggregate = name, list(members), aggregate
        self.quorum, self.timeout, self.helper = quorum, timeout, helper
        self.concurrency = max(1, concurrency or n)

    async def _call(self, index: int, model: Model, request: Request,
                    gate: asyncio.Semaphore) -> tuple[int, Completion]:
        async with gate:
            try:
                if self.timeout is None:
                    return index, await model.complete(request)
                return index, await asyncio.wait_for(model.complete(request), self.timeout)
            except CallTimeout:
                raise
            except builtins.TimeoutError:
                raise CallTimeout(f"no answer within {self.timeout:g}s (ensemble timeout)",
                                  model=model.name) from None

    async def gather(self, request: Request, tally: Tally) -> list[tuple[int, Completion]]:
        """Run members until the quorum answered or it can no longer be reached."""
        gate = asyncio.Semaphore(self.concurrency)
        tasks = {asyncio.ensure_future(self._call(i, m, request, gate)): i
                 for i, m in enumerate(self.members)}
        answers: list[tuple[int, Completion]] = []
        pending = set(tasks)
        try:
            while pending and len(answers) < self.quorum:
                if len(answers) + len(pending) < self.quorum:
                    break
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    exc = task.exception()
                    if exc is None:
                        index, answer = task.result()
                        answers.append((index, tally.add(answer)))
                    elif isinstance(exc, LLMSwitchError):
                        tally.failed(exc)
                    else:
                        raise exc
        finally:
            for task in pending:
                task.cancel()
                name = self.members[tasks[task]].name
                # A marker, not an attempt: the provider call itself is recorded (as
                # `cancelled`, with what it was billed) by the call's record.
                tally.span.child(Span(f"cancel {name}", "step",
                                      {"llmswitch.cancelled": "quorum reached"}))
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
        return sorted(answers, key=lambda a: a[0])

    async def complete(self, request: Request) -> Completion:
        """Ask the members, then aggregate (see the module docstring)."""
        tally = Tally(self.name, "ensemble", **{
            "llmswitch.candidates": [m.name for m in self.members],
            "llmswitch.aggregate": self.aggregate, "llmswitch.quorum": self.quorum})
        answers = await self.gather(request, tally)
        if len(answers) < self.quorum:
            if not answers:
                raise tally.all_failed(f"routes.{self.name}: every member failed")
            raise tally.all_failed(f"routes.{self.name}: only {len(answers)} of "
                                   f"{len(self.members)} members answered (quorum {self.quorum})")
        if self.aggregate == "first":
            index, answer = answers[0] if len(answers) == 1 else min(
                answers, key=lambda a: a[1].latency_ms)
            tally.decide(self.members[index].name, "first answer to arrive")
            return tally.result(answer)
        if self.aggregate == "vote":
            return self._vote(answers, tally)
        return await self._with_helper(request, answers, tally)

    def _vote(self, answers: list[tuple[int, Completion]], tally: Tally) -> Completion:
        counts = Counter(normalise(c.text) for _, c in answers)
        top = max(counts.values())
        index, answer = next((i, c) for i, c in answers if counts[normalise(c.text)] == top)
        scores = {self.members[i].name: round(counts[normalise(c.text)] / len(answers), 4)
                  for i, c in answers}
        tally.decide(self.members[index].name,
                     f"majority {top} of {len(answers)} ({len(counts)} distinct answers)",
                     scores=scores)
        return tally.result(answer)

    async def _with_helper(self, request: Request, answers: list[tuple[int, Completion]],
                           tally: Tally) -> Completion:
        assert self.helper is not None
        listed = "\n\n".join(f"Answer {n}:\n{c.text}" for n, (_, c) in enumerate(answers, 1))
        template = JUDGE_PROMPT if self.aggregate == "judge" else SYNTH_PROMPT
        ask = Request((Message.user(template.format(request=request.last_user_text,
                                                    answers=listed)),))
        if self.aggregate == "judge":
            ask = ask.with_settings(max_tokens=8, temperature=0.0)
        else:
            ask = _keep_settings(ask, request)
        step = "judge" if self.aggregate == "judge" else "synthesizer"
        try:
            reply = tally.add(await self.helper.complete(ask))
        except LLMSwitchError as exc:
            tally.failed(exc)
            raise tally.fail(exc) from None
        if self.aggregate == "synthesize":
            tally.decide(self.helper.name, f"synthesized from {len(answers)} answers")
            return tally.result(reply)
        match = _NUMBER.search(reply.text)
        pick = int(match.group(0)) if match else 0
        if not 1 <= pick <= len(answers):
            raise tally.fail(ResponseError(
                f"routes.{self.name}: {step} {self.helper.name!r} returned no valid answer "
                f"number (1-{len(answers)}): {json.dumps(reply.text[:60])}",
                hint="use a stronger judge or aggregate: vote"))
        index, answer = answers[pick - 1]
        tally.decide(self.members[index].name, f"judge {self.helper.name!r} picked answer {pick}")
        return tally.result(answer)

    def describe(self) -> dict[str, Any]:
        """The ensemble's members and aggregation."""
        return {"name": self.name, "kind": "ensemble", "members": [m.name for m in self.members],
                "aggregate": self.aggregate, "quorum": self.quorum}


def _keep_settings(ask: Request, original: Request) -> Request:
    """The synthesizer's request keeps the caller's output settings (max_tokens, …)."""
    return Request(ask.messages, original.settings, original.metadata)


OPTIONS = frozenset({"aggregate", "concurrency", "judge", "quorum", "synthesizer", "timeout"})
"""Option keys this strategy reads beside `strategy` and `targets` (others are rejected)."""


def build(ctx: RouteContext) -> Model:
    """Build an ensemble from its route entry."""
    members = ctx.targets()
    if not members:
        raise ctx.fail("an ensemble needs targets")
    aggregate = str(ctx.option("aggregate", "vote"))
    helper_name = ctx.option("judge") if aggregate == "judge" else ctx.option("synthesizer")
    helper = ctx.resolve(str(helper_name)) if helper_name else None
    try:
        return Ensemble(ctx.name, members, aggregate, ctx.option("quorum"),
                        ctx.option("concurrency"), ctx.option("timeout"), helper)
    except ValueError as exc:
        raise ctx.fail(str(exc)) from None
