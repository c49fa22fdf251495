r"""`strategy: chain`: a multi-step pipeline, one model (or route) per step.

```yaml
routes:
  report:
    strategy: chain
    steps:
      - {name: extract, target: cheap, prompt: "List the facts in:\n{input}"}
      - {name: summary, target: long, prompt: "Summarise:\n{extract}"}
      - name: sentiment
        target: cheap
        prompt: "Sentiment of:\n{input}"
        schema: {type: object, properties: {label: {enum: [positive, negative, neutral]}},
                 required: [label]}
      - {name: report, target: strong, prompt: "Report.\n{summary}\nMood: {sentiment.label}"}
    output: report          # default: the last step
```

Templates use `{input}` (the request's last user message), `{name}` (an earlier step's text)
and `{name.field}` (a field of a step's JSON output); `{{`/`}}` are literal braces. Steps run as
soon as the steps they reference are done, so independent steps run in parallel. A step may
set `system`, `settings` (max_tokens, temperature, …), `schema` (validated, with `retries`).
References to unknown steps and cycles are config errors naming the route and step.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmswitch.catalog.card import ModelCard
from llmswitch.errors import LLMSwitchError, ResponseError
from llmswitch.messages import Message
from llmswitch.models import Model
from llmswitch.observe.trace import Span
from llmswitch.request import TEXT, Request, Settings, coerce_settings
from llmswitch.results import Completion
from llmswitch.routing.capability import card_for
from llmswitch.strategies._tally import Tally
from llmswitch.strategies.registry import RouteContext
from llmswitch.structured import Schema, run_structured, schema_problem

_REF = re.compile(r"\{\{|\}\}|\{([A-Za-z_][\w-]*)((?:\.[\w-]+)*)\}")
INPUT = "input"


@dataclass(frozen=True)
class Step:
    """One step: its name, model, prompt template and optional system, schema and settings."""

    name: str
    model: Model
    prompt: str
    system: str | None = None
    schema: Mapping[str, Any] | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)
    retries: int = 1
    card: ModelCard | None = None

    def references(self) -> list[str]:
        """Names referenced by the template (`input` included)."""
        return [m.group(1) for m in _REF.finditer(self.prompt) if m.group(1)]


def render(template: str, values: Mapping[str, str], parsed: Mapping[str, Any]) -> str:
    """Fill `{name}` / `{name.field}` from step outputs (`KeyError` names a missing one)."""
    def sub(match: re.Match[str]) -> str:
        whole = match.group(0)
        if whole in ("{{", "}}"):
            return whole[0]
        name, path = match.group(1), match.group(2)
        if not path:
            return values[name]
        node: Any = parsed.get(name)
        for key in path.strip(".").split("."):
            if isinstance(node, Mapping) and key in node:
                node = node[key]
            elif isinstance(node, list) and key.isdigit() and int(key) < len(node):
                node = node[int(key)]
            else:
                raise KeyError(f"{name}{path}")
        return node if isinstance(node, str) else json.dumps(node, ensure_ascii=False)

    return _REF.sub(sub, template)


def plan(steps: Sequence[Step]) -> list[list[Step]]:
    """Steps grouped in levels: each level depends only on earlier levels (`ValueError` on
    duplicates, unknown references or cycles)."""
    names = [s.name for s in steps]
    for step in steps:
        if step.name == INPUT or names.count(step.name) > 1:
            raise ValueError(f"step {step.name!r}: names must be unique and not {INPUT!r}")
    known = set(names)
    for step in steps:
        missing = [r for r in step.references() if r != INPUT and r not in known]
        if missing:
            raise ValueError(f"step {step.name!r} references unknown step(s) {missing}; "
                             f"known: {INPUT}, {', '.join(names)}")
    done: set[str] = set()
    levels: list[list[Step]] = []
    left = list(steps)
    while left:
        ready = [s for s in left if all(r == INPUT or r in done for r in s.references())]
        if not ready:
            raise ValueError("steps form a cycle: " + ", ".join(s.name for s in left))
        levels.append(ready)
        done.update(s.name for s in ready)
        left = [s for s in left if s.name not in done]
    return levels


class Chain(Model):
    """Runs steps level by level (parallel within a level) and returns the output step."""

    def __init__(self, name: str, steps: Sequence[Step], output: str | None = None) -> None:
        if not steps:
            raise ValueError("a chain needs at least one step")
        self.name, self.steps = name, list(steps)
        self.levels = plan(self.steps)
        self.output = output or self.steps[-1].name
        if self.output not in {s.name for s in self.steps}:
            raise ValueError(f"output {self.output!r} is not a step")

    def _request(self, step: Step, request: Request, text: str) -> Request:
        messages = [Message.system(step.system)] if step.system else []
        values = {**_caller(request.settings), **coerce_settings(step.settings)}
        if step.name == self.output and step.schema is None:
            values["response_format"] = request.settings.response_format
        settings = Settings(**values)
        return Request((*messages, Message.user(text)), settings, request.metadata)

    async def _run(self, step: Step, request: Request, values: dict[str, str],
                   parsed: dict[str, Any]) -> tuple[Completion, Any]:
        try:
            text = render(step.prompt, values, parsed)
        except KeyError as exc:
            raise ResponseError(f"routes.{self.name} step {step.name!r}: the template "
                                f"references {exc.args[0]!r}, which the step did not produce",
                                hint="check the field names of the referenced step's schema"
                                ) from None
        ask = self._request(step, request, text)
        if step.schema is None:
            return await step.model.complete(ask), None
        result = await run_structured(step.model, ask, Schema.of(step.schema, step.name),
                                      retries=step.retries, card=step.card,
                                      where=f"routes.{self.name} step {step.name!r}",
                                      span_name=f"structured {step.name}")
        return result.completion, result.value

    async def complete(self, request: Request) -> Completion:
        """Run every step and return the output step's answer; cost sums all steps."""
        tally = Tally(self.name, "chain", **{"llmswitch.candidates": [s.name for s in self.steps]})
        values: dict[str, str] = {INPUT: request.last_user_text}
        parsed: dict[str, Any] = {}
        results: dict[str, Completion] = {}
        for level in self.levels:
            outcomes = await asyncio.gather(
                *(self._run(s, request, values, parsed) for s in level), return_exceptions=True)
            failed: tuple[str, LLMSwitchError] | None = None
            for step, outcome in zip(level, outcomes, strict=True):
                span = Span(f"step {step.name}", "step",
                            {"llmswitch.step": step.name, "llmswitch.target": step.model.name})
                tally.span.child(span)
                if isinstance(outcome, LLMSwitchError):
                    tally.failed(outcome, span)
                    span.fail(outcome)
                    span.duration_ms = outcome.trace.duration_ms if outcome.trace else 0.0
                    failed = failed or (step.name, _named(outcome, self.name, step.name))
                elif isinstance(outcome, BaseException):
                    raise outcome
                else:
                    completion, value = outcome
                    tally.add(completion, span)
                    span.duration_ms = round(completion.latency_ms, 3)
                    results[step.name] = completion
                    values[step.name] = completion.text
                    parsed[step.name] = value
            if failed is not None:
                tally.span.attributes["llmswitch.failed_step"] = failed[0]
                raise tally.fail(failed[1])
        tally.decide(self.output, f"{len(self.steps)} steps in {len(self.levels)} levels; "
                                  f"output of step {self.output!r}")
        return tally.result(results[self.output])

    def describe(self) -> dict[str, Any]:
        """The chain's steps."""
        return {"name": self.name, "kind": "chain",
                "steps": [{"name": s.name, "target": s.model.name} for s in self.steps]}


def _caller(settings: Settings) -> dict[str, Any]:
    keep = ("temperature", "top_p", "max_tokens", "seed", "timeout", "stop")
    return {k: getattr(settings, k) for k in keep} | {"response_format": TEXT}


def _named(error: LLMSwitchError, route: str, step: str) -> LLMSwitchError:
    prefix = f"routes.{route} step {step!r}"
    if prefix not in error.message:
        error.message = f"{prefix}: {error.message}"
        error.args = (error.message,)
    return error


OPTIONS = frozenset({"output", "steps"})
"""Option keys this strategy reads beside `strategy` and `targets` (others are rejected)."""


def build(ctx: RouteContext) -> Model:
    """Build a chain from its route entry."""
    raw = ctx.option("steps")
    if not isinstance(raw, list) or not raw:
        raise ctx.fail("a chain needs 'steps': a list of {name, target, prompt}")
    steps: list[Step] = []
    for i, spec in enumerate(raw):
        if not isinstance(spec, Mapping):
            raise ctx.fail(f"steps[{i}] must be a mapping with name, target and prompt")
        name = str(spec.get("name") or f"step{i + 1}")
        target, prompt = spec.get("target"), spec.get("prompt")
        if not isinstance(target, str) or not isinstance(prompt, str):
            raise ctx.fail(f"step {name!r} needs 'target' (a model or route) and 'prompt'")
        schema = spec.get("schema")
        if schema is not None and (why := schema_problem(schema)):
            raise ctx.fail(f"step {name!r}: schema: {why}")
        try:
            settings = coerce_settings(spec.get("settings") or {})
        except ValueError as exc:
            raise ctx.fail(f"step {name!r} settings: {exc}") from None
        steps.append(Step(name, ctx.resolve(target), prompt, spec.get("system"), schema,
                          settings, int(spec.get("retries", 1)),
                          card_for(target, ctx.config, ctx.catalog)))
    try:
        return Chain(ctx.name, steps, ctx.option("output"))
    except ValueError as exc:
        raise ctx.fail(str(exc)) from None
