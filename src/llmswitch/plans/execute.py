"""One stream's work: ordinary `switch.complete` calls to its model, moving down its
`fallback` list when a model fails, within its budget and deadline; JSON outputs parsed and
checked (with one corrective retry); agent streams run as a bounded tool-calling loop.

Every call is tagged with the run and stream ids (so the spend ledger files it under the run)
and its usage, cost and trace are tallied here, failed calls included (they were billed).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmswitch import (
    Completion,
    LLMSwitchError,
    Message,
    SchemaError,
    Span,
    Switch,
    Usage,
    cost_usd,
    tokens,
)
from llmswitch.plans.errors import BudgetExceededError, PlanError, StepLimitError
from llmswitch.plans.estimate import price_card
from llmswitch.plans.model import StreamSpec
from llmswitch.plans.templates import Output
from llmswitch.plans.tools import Toolbox
from llmswitch.structured import extract_json

JSON_RETRIES = 1
"""Corrective retries when a JSON stream's answer does not parse or match its schema."""
TOOL_PREVIEW = 300


@dataclass
class Tally:
    """What a stream has used so far, over every call (failed ones included)."""

    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    cost_known: bool = True
    attempts: int = 0
    calls: list[dict[str, Any]] = field(default_factory=list)
    spans: list[Span] = field(default_factory=list)
    trace_ids: list[str] = field(default_factory=list)

    def add(self, model: str, usage: Usage | None, cost: float | None, trace: Span | None,
            trace_id: str | None, error: LLMSwitchError | None = None) -> None:
        """Count one call."""
        if usage is not None:
            self.usage = self.usage + usage
        if cost is not None:
            self.cost_usd += cost
        elif usage is not None and usage.total_tokens:
            self.cost_known = False
        self.attempts += max(1, len(trace.attempts())) if trace is not None else 1
        if trace is not None:
            self.spans.append(trace)
        if trace_id:
            self.trace_ids.append(trace_id)
        self.calls.append({
            "model": model, "status": "error" if error else "ok",
            "error": error.to_dict() if error else None,
            "input_tokens": usage.input_tokens if usage else 0,
            "output_tokens": usage.output_tokens if usage else 0,
            "cost_usd": cost, "trace_id": trace_id,
        })


@dataclass
class RunBudget:
    """The plan's `budget_usd`, shared by every stream of the run: what the run's calls have
    cost so far plus the estimated cost of the calls in flight (so streams running in parallel
    cannot each spend what is left)."""

    limit: float
    spent: float = 0.0
    reserved: float = 0.0


@dataclass
class Result:
    """A finished stream's output and what produced it."""

    output: Output
    completion: Completion
    served_model: str
    checks: list[dict[str, Any]]


class StreamRun:
    """Runs one stream; `tally`, `target` and `step` are readable while it runs."""

    def __init__(self, switch: Switch, spec: StreamSpec, model: str, *, run_id: str,
                 budget_usd: float | None = None, tools: Toolbox | None = None,
                 deadline_at: float | None = None, run_budget: RunBudget | None = None,
                 on_change: Callable[[], None] | None = None) -> None:
        self.switch = switch
        self.spec = spec
        self.targets = [model, *spec.fallback]
        self.index = 0
        self.run_id = run_id
        self.budget = budget_usd
        self.run_budget = run_budget
        self.tools = tools
        self.deadline_at = deadline_at
        self.on_change = on_change or (lambda: None)
        self.tally = Tally()
        self.step = 0
        self.moves: list[dict[str, Any]] = []
        self.tool_spans: list[Span] = []
        self._tags = {"run_id": run_id, "stream_id": spec.id}

    @property
    def target(self) -> str:
        """The model the stream is calling now (after a fallback: the fallback)."""
        return self.targets[min(self.index, len(self.targets) - 1)]

    async def run(self, prompt: str, system: str | None) -> Result:
        """Produce the stream's output."""
        messages: list[Message] = [Message.user(prompt)]
        if system:
            messages.insert(0, Message.system(system))
        if self.spec.tools:
            completion = await self._agent(messages)
        else:
            completion = await self.call(messages)
        if self.spec.output.kind == "json":
            completion, value = await self._json(messages, completion)
            text = json.dumps(value, indent=2, ensure_ascii=False)
            output = Output(text, value)
        else:
            text = completion.text
            if self.spec.output.kind == "file":
                text = file_text(text, self.spec.output.file or "")
            output = Output(text)
        checks = [{"check": c.describe(), "passed": c.passes(output.text)}
                  for c in self.spec.checks]
        return Result(output, completion, self.target, checks)

    # -- one call, with fallback --------------------------------------------------------
    def settings(self, **extra: Any) -> dict[str, Any]:
        """Keyword settings for a call: the stream's, the output format, the time left."""
        out: dict[str, Any] = {}
        for key in ("max_tokens", "temperature", "seed"):
            value = getattr(self.spec, key)
            if value is not None:
                out[key] = value
        if self.spec.output.kind == "json" and not self.spec.tools:
            out["response_format"] = dict(self.spec.output.schema or {}) or "json"
        if self.deadline_at is not None:
            out["timeout"] = max(0.001, self.deadline_at - time.monotonic())
        if self.spec.task:
            out["metadata"] = {"task": self.spec.task}  # what task and learned routes read
        out.update(extra)
        return out

    async def call(self, messages: list[Message], **extra: Any) -> Completion:
        """One `switch.complete` on the current target, moving down the fallback list on
        failure. Raises the last model's error when every target failed."""
        while True:
            target = self.target
            settings = self.settings(**extra)
            held = self._check_budget(target, messages, settings)
            try:
                completion = await self.switch.complete(target, list(messages), **settings,
                                                        tags=self._tags)
            except LLMSwitchError as exc:
                if isinstance(exc, PlanError):
                    raise
                self._count(target, exc.usage, exc.cost_usd, exc.trace, exc.trace_id, exc)
                if self.index + 1 >= len(self.targets):
                    raise
                self.index += 1
                self.moves.append({"from": target, "to": self.target, "error": exc.to_dict()})
                continue
            finally:
                if self.run_budget is not None:
                    self.run_budget.reserved -= held
            self._count(target, completion.usage, completion.cost_usd, completion.trace,
                        completion.trace_id)
            return completion

    def _count(self, target: str, usage: Usage | None, cost: float | None,
               trace: Span | None, trace_id: str | None,
               error: LLMSwitchError | None = None) -> None:
        self.tally.add(target, usage, cost, trace, trace_id, error)
        if self.run_budget is not None and cost:
            self.run_budget.spent += cost
        self.on_change()

    def _check_budget(self, target: str, messages: list[Message],
                      settings: Mapping[str, Any]) -> float:
        """Refuse a call that would pass the stream's or the run's budget; returns the
        estimate held on the run's budget while the call is in flight."""
        run = self.run_budget
        if self.budget is None and run is None:
            return 0.0
        card = price_card(self.switch, target)
        if card is None or not card.priced:
            return 0.0
        request = self.switch.request(list(messages), **{
            k: v for k, v in settings.items() if k in ("max_tokens", "tools")})
        guess = cost_usd(card, Usage(tokens.estimate_request_tokens(request, card),
                                     tokens.expected_output_tokens(request, card))) or 0.0
        spent = self.tally.cost_usd
        if self.budget is not None and spent + guess > self.budget:
            raise BudgetExceededError(
                f"stream {self.spec.id}: the next call to {target} (~${guess:.6f}) would bring "
                f"its spend to ~${spent + guess:.6f}, over its budget of ${self.budget:.6f}",
                hint="raise budget_usd, lower max_tokens or pick a cheaper model",
                cost_usd=spent)
        if run is None:
            return 0.0
        if run.spent + run.reserved + guess > run.limit:
            raise BudgetExceededError(
                f"stream {self.spec.id}: the next call to {target} (~${guess:.6f}) would bring "
                f"the run's spend (with the calls in flight) to "
                f"~${run.spent + run.reserved + guess:.6f}, over the plan's budget_usd of "
                f"${run.limit:.6f}",
                hint="raise the plan's budget_usd, lower max_tokens or pick cheaper models",
                cost_usd=spent)
        run.reserved += guess
        return guess

    # -- JSON outputs ---------------------------------------------------------------------
    async def _json(self, messages: list[Message], completion: Completion
                    ) -> tuple[Completion, Any]:
        """The JSON value of the answer. With a schema the switch has validated it already
        (`Completion.parsed`); otherwise it is extracted from the text and, when it does not
        parse (or, for an agent's final answer, does not match the schema), asked again."""
        schema = self.spec.output.schema
        errors: list[str] = []
        for attempt in range(JSON_RETRIES + 1):
            if completion.parsed is not None:
                return completion, completion.parsed
            try:
                value = extract_json(completion.text)
                errors = _schema_errors(value, schema) if schema else []
            except ValueError as exc:
                errors = [str(exc)]
            if not errors:
                return completion, value
            if attempt == JSON_RETRIES:
                break
            messages = [*messages, completion.message(), Message.user(
                "Your answer was not valid: " + "; ".join(errors[:5])
                + ". Answer again with only the corrected JSON.")]
            completion = await self.call(messages)
        raise SchemaError(f"stream {self.spec.id}: the answer is not the JSON asked for after "
                          f"{JSON_RETRIES + 1} attempts: " + "; ".join(errors[:5]),
                          attempts=JSON_RETRIES + 1, model=self.target,
                          hint="raise max_tokens, loosen the schema or use a stronger model")

    # -- agent streams --------------------------------------------------------------------
    async def _agent(self, messages: list[Message]) -> Completion:
        assert self.tools is not None
        specs = [self.tools.spec(name) for name in self.spec.tools]
        for step in range(1, self.spec.max_steps + 1):
            self.step = step
            completion = await self.call(messages, tools=specs)
            if not completion.tool_calls:
                return completion
            messages.append(completion.message())
            for call in completion.tool_calls:
                messages.append(Message.tool(call.id, await self._tool(step, call.name,
                                                                       call.arguments),
                                             call.name))
        raise StepLimitError(
            f"stream {self.spec.id}: no final answer after max_steps={self.spec.max_steps} "
            "model calls", hint="raise max_steps, or make the task smaller",
            cost_usd=self.tally.cost_usd)

    async def _tool(self, step: int, name: str, arguments: str) -> str:
        assert self.tools is not None
        started = time.perf_counter()
        span = Span(f"tool {name}", "step", {"llmswitch.plan.step": step,
                                             "gen_ai.tool.name": name})
        if name not in self.spec.tools:
            result = f"error: tool {name!r} is not available to this stream"
        else:
            try:
                args = json.loads(arguments or "{}")
                if not isinstance(args, dict):
                    raise ValueError("arguments must be a JSON object")
            except ValueError as exc:
                result = f"error: the arguments are not valid JSON: {exc}"
            else:
                result = await self.tools.call(name, args)
        span.attributes["llmswitch.tool.arguments"] = arguments[:TOOL_PREVIEW]
        span.attributes["llmswitch.tool.result"] = result[:TOOL_PREVIEW]
        if result.startswith("error:"):
            span.status = "error"
        self.tool_spans.append(span.finish(started))
        self.on_change()
        return result


def _schema_errors(value: Any, schema: Mapping[str, Any]) -> list[str]:
    """Errors of `value` against a JSON Schema (the validator the switch itself uses)."""
    from llmswitch import schemacheck

    return schemacheck.validate(value, schema)


_FENCED = re.compile(r"^```[^\n`]*\n(.*?)^```", re.DOTALL | re.MULTILINE)
PROSE_FILES = (".md", ".markdown", ".txt", ".rst")


def file_text(answer: str, filename: str) -> str:
    """What goes into a `file` output: for a code file, the longest fenced code block of the
    answer when it has one (models wrap code in fences and add prose); else the answer."""
    if filename.lower().endswith(PROSE_FILES):
        return answer
    blocks: list[str] = [b for b in _FENCED.findall(answer) if b.strip()]
    if not blocks:
        return answer
    return max(blocks, key=len).rstrip("\n") + "\n"
