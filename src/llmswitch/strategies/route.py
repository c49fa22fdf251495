r"""`strategy: route`: choose one target per request, by task, rules, capability or complexity.

```yaml
routes:
  by-task:
    strategy: route
    by: task                 # task | rules | capability | complexity (inferred if omitted)
    default: general         # a task name or a target; none → NoRouteError
    tasks:
      sql_generation:
        target: cheap
        match: ['(?i)\\bsql\\b']          # infer the task when metadata["task"] is absent
        system: {default: "Write SQL only.", claude: "You write SQL. Answer in a fence."}
        prompt_version: v2
        pre: [strip]
        post: [strip_code_fence]
  by-rules:
    strategy: route
    by: rules
    rules: [{when: {has_images: true}, target: vision}, {when: {min_tokens: 8000}, target: long}]
    default: cheap
  by-capability:
    strategy: route
    by: capability
    targets: [openai/gpt-4o-mini, anthropic/claude-sonnet-4-5]   # none → whole catalog
    require: [tools]
    optimize: cost           # cost | latency | quality
  by-complexity:
    strategy: route
    by: complexity
    tiers: [{below: 0.35, target: cheap}, {below: 0.7, target: mid}, {target: strong}]
    scorer: builtin          # or "package.module:factory" returning a Scorer
```

Every decision lands in the trace: `llmswitch.chosen`, `llmswitch.reason`, `llmswitch.scores`.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from llmswitch.catalog.catalog import Catalog
from llmswitch.config.schema import Config
from llmswitch.errors import LLMSwitchError, NoRouteError, ResponseError
from llmswitch.messages import Message, TextPart
from llmswitch.models import Model, replay_as_stream
from llmswitch.request import Request
from llmswitch.results import Completion, StreamEvent
from llmswitch.routing.capability import Candidate, CapabilityRouter, NoCandidateError, card_for
from llmswitch.routing.complexity import ComplexityRouter, HeuristicScorer, Scorer
from llmswitch.routing.decision import Decision
from llmswitch.routing.rules import RuleRouter
from llmswitch.strategies._tally import Tally, stream_through
from llmswitch.strategies.registry import RouteContext
from llmswitch.structured import extract_json

KINDS = ("task", "rules", "capability", "complexity")
_FENCE = re.compile(r"```[\w+-]*[ \t]*\n(.*?)\n?```", re.DOTALL)

PRE_STEPS: dict[str, Callable[[str], str]] = {
    "strip": str.strip,
    "collapse_whitespace": lambda t: re.sub(r"\s+", " ", t).strip(),
}


def _strip_fence(text: str) -> str:
    """The first fenced block's content (models often add prose around it), else the text."""
    match = _FENCE.search(text)
    return match.group(1) if match else text.strip()


POST_STEPS: dict[str, Callable[[str], str]] = {
    "strip": str.strip,
    "strip_code_fence": _strip_fence,
    "parse_json": lambda t: json.dumps(extract_json(t), ensure_ascii=False),
    "first_line": lambda t: t.strip().split("\n", 1)[0],
    "lower": str.lower,
}


class Selector(Protocol):
    """A route kind: a pure decision, plus an optional rewrite of the request/answer."""

    def decide(self, request: Request) -> Decision:
        """Choose a target (raise `NoRouteError` when none fits)."""
        ...

    def prepare(self, decision: Decision, request: Request) -> Request:
        """The request to send to the chosen target (a copy)."""
        ...

    def finish(self, decision: Decision, text: str) -> str:
        """Post-process the answer text."""
        ...

    def candidates(self) -> list[str]:
        """Every target this selector may choose (for the trace)."""
        ...


@dataclass
class _Plain:
    """A selector that only decides (rules, capability, complexity)."""

    decider: Any
    names: list[str]
    on_empty: str = "no target matched"
    eager: bool = True
    """Resolve every candidate at build time (not for a whole-catalog capability route)."""

    def decide(self, request: Request) -> Decision:
        try:
            decision: Decision | None = self.decider.decide(request)
        except NoCandidateError as exc:
            raise NoRouteError(f"no candidate can serve this request: {exc}",
                               hint="relax 'require' or add models") from None
        if decision is None:
            raise NoRouteError(self.on_empty, hint="add a 'default' target")
        return decision

    def prepare(self, decision: Decision, request: Request) -> Request:
        return request

    def finish(self, decision: Decision, text: str) -> str:
        return text

    def candidates(self) -> list[str]:
        return list(self.names)


@dataclass(frozen=True)
class Task:
    """One task: its target, system prompt(s) by model family, and pre/post steps."""

    name: str
    target: str
    system: Mapping[str, str] = field(default_factory=dict)
    version: str | None = None
    match: tuple[re.Pattern[str], ...] = ()
    pre: tuple[str, ...] = ()
    post: tuple[str, ...] = ()


@dataclass
class TaskSelector:
    """Task from `metadata[task_key]`, else the first task whose `match` regex hits the text."""

    tasks: dict[str, Task]
    default: str | None
    task_key: str
    families: dict[str, list[str]]

    def decide(self, request: Request) -> Decision:
        asked = request.metadata.get(self.task_key)
        if asked is not None:
            task = self.tasks.get(str(asked))
            if task is not None:
                return Decision(task.target, f"task {task.name!r} from metadata{_v(task)}",
                                {"task:" + task.name: 1.0})
            return self._default(f"unknown task {asked!r}")
        text = request.last_user_text
        for task in self.tasks.values():
            if any(p.search(text) for p in task.match):
                return Decision(task.target, f"task {task.name!r} matched its pattern{_v(task)}",
                                {"task:" + task.name: 1.0})
        return self._default("no task given or matched")

    def _default(self, why: str) -> Decision:
        if self.default is None:
            raise NoRouteError(f"{why}; known tasks: {', '.join(self.tasks)}",
                               hint=f"set metadata['{self.task_key}'] or add a 'default'")
        task = self.tasks.get(self.default)
        if task is not None:
            return Decision(task.target, f"{why}; default task {task.name!r}{_v(task)}",
                            {"task:" + task.name: 1.0})
        return Decision(self.default, f"{why}; default target")

    def _task(self, decision: Decision) -> Task | None:
        for key in decision.scores:
            if key.startswith("task:"):
                return self.tasks[key[5:]]
        return None

    def prepare(self, decision: Decision, request: Request) -> Request:
        task = self._task(decision)
        if task is None:
            return request
        messages = list(request.messages)
        if task.pre:
            messages = [_map_text(m, task.pre) if m.role == "user" else m for m in messages]
        system = self._system(task)
        if system:
            if messages and messages[0].role == "system":
                messages[0] = Message.system(system + "\n\n" + messages[0].text)
            else:
                messages.insert(0, Message.system(system))
        return request.with_messages(messages)

    def _system(self, task: Task) -> str | None:
        for key in (*self.families.get(task.target, []), task.target):
            if key in task.system:
                return task.system[key]
        return task.system.get("default")

    def finish(self, decision: Decision, text: str) -> str:
        task = self._task(decision)
        if task is None:
            return text
        for step in task.post:
            try:
                text = POST_STEPS[step](text)
            except ValueError as exc:
                raise ResponseError(f"task {task.name!r} post step {step!r} failed: {exc}",
                                    hint="make the task's prompt ask for JSON") from None
        return text

    def candidates(self) -> list[str]:
        names = [t.target for t in self.tasks.values()]
        if self.default and self.default not in self.tasks:
            names.append(self.default)
        return list(dict.fromkeys(names))


def _v(task: Task) -> str:
    return f" (prompt {task.version})" if task.version else ""


def _map_text(message: Message, steps: Sequence[str]) -> Message:
    def apply(text: str) -> str:
        for step in steps:
            text = PRE_STEPS[step](text)
        return text

    parts = tuple(TextPart(apply(p.text)) if isinstance(p, TextPart) else p
                  for p in message.parts)
    return Message(message.role, parts, message.tool_calls, message.tool_call_id, message.name)


class RouteModel(Model):
    """Decides with a selector, then delegates to the chosen target."""

    def __init__(self, name: str, kind: str, selector: Selector,
                 resolve: Callable[[str], Model]) -> None:
        self.name = name
        self.kind = kind
        self.selector = selector
        self._resolve = resolve

    def _select(self, request: Request, tally: Tally) -> tuple[Decision, Request, Model]:
        try:
            decision = self.selector.decide(request)
        except NoRouteError as exc:
            exc.message = f"routes.{self.name}: {exc.message}"
            exc.args = (exc.message,)
            raise tally.fail(exc) from None
        tally.decide(decision.chosen, decision.reason, scores=decision.scores,
                     candidates=self.selector.candidates())
        return decision, self.selector.prepare(decision, request), self._resolve(decision.chosen)

    async def complete(self, request: Request) -> Completion:
        """Route the request and return the target's answer with the decision traced."""
        tally = Tally(self.name, "route", **{"llmswitch.route.by": self.kind})
        decision, routed, model = self._select(request, tally)
        try:
            completion = tally.add(await model.complete(routed))
            text = self.selector.finish(decision, completion.text)
        except LLMSwitchError as exc:
            if exc.trace is not None and exc not in tally.errors:
                tally.failed(exc)
            raise tally.fail(exc) from None
        return tally.result(completion.replace(text=text))

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Stream the chosen target (answers with post steps are buffered)."""
        if isinstance(self.selector, TaskSelector):
            async for event in replay_as_stream(self.complete(request)):
                yield event
            return
        tally = Tally(self.name, "route", **{"llmswitch.route.by": self.kind})
        _, routed, model = self._select(request, tally)
        async for event in stream_through(tally, model, routed):
            yield event

    def describe(self) -> dict[str, Any]:
        """The route, its kind and candidates."""
        return {"name": self.name, "kind": "route", "by": self.kind,
                "candidates": self.selector.candidates()}


OPTIONS = frozenset({
    "by", "default", "optimize", "output_tokens", "providers", "quality", "require", "rules",
    "scorer", "task_key", "tasks", "tiers"
})
"""Option keys this strategy reads beside `strategy` and `targets` (others are rejected)."""


def build(ctx: RouteContext) -> Model:
    """Build a route from its config entry (see the module docstring)."""
    options = ctx.route.options()
    kind = options.get("by") or _infer(options)
    makers: dict[str, Callable[[RouteContext], Selector]] = {
        "task": _task_selector, "rules": _rules_selector,
              "capability": _capability_selector, "complexity": _complexity_selector}
    if kind not in makers:
        raise ctx.fail(f"by: {kind!r} is not a route kind", hint="use one of " + ", ".join(KINDS))
    try:
        selector = makers[kind](ctx)
    except ValueError as exc:
        raise ctx.fail(str(exc)) from None
    for name in selector.candidates() if getattr(selector, "eager", True) else ():
        ctx.resolve(name)  # unknown names and cycles fail now, naming this route
    return RouteModel(ctx.name, kind, selector, ctx.resolve)


def _infer(options: Mapping[str, Any]) -> str:
    for key, kind in (("tasks", "task"), ("rules", "rules"), ("tiers", "complexity")):
        if key in options:
            return kind
    return "capability"


def _task_selector(ctx: RouteContext) -> TaskSelector:
    raw = ctx.option("tasks")
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError("'tasks' must map task names to {target: ..., system: ...}")
    tasks = {str(k): _parse_task(str(k), v) for k, v in raw.items()}
    families = {t.target: _family_keys(t.target, ctx.config, ctx.catalog) for t in tasks.values()}
    default = ctx.option("default")
    return TaskSelector(tasks, None if default is None else str(default),
                        str(ctx.option("task_key", "task")), families)


def _parse_task(name: str, value: Any) -> Task:
    if isinstance(value, str):
        return Task(name, value)
    if not isinstance(value, Mapping) or not isinstance(value.get("target"), str):
        raise ValueError(f"tasks.{name} needs a 'target' (a model or route name)")
    system = value.get("system") or {}
    if isinstance(system, str):
        system = {"default": system}
    for key, steps in (("pre", PRE_STEPS), ("post", POST_STEPS)):
        unknown = [s for s in value.get(key) or () if s not in steps]
        if unknown:
            raise ValueError(f"tasks.{name}.{key}: unknown step(s) {unknown}; "
                             f"known: {', '.join(steps)}")
    try:
        match = tuple(re.compile(str(p)) for p in _listify(value.get("match")))
    except re.error as exc:
        raise ValueError(f"tasks.{name}.match: {exc}") from None
    version = value.get("prompt_version")
    return Task(name, value["target"], {str(k): str(v) for k, v in system.items()},
                None if version is None else str(version), match,
                tuple(value.get("pre") or ()), tuple(value.get("post") or ()))


def _listify(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _family_keys(target: str, config: Config, catalog: Catalog) -> list[str]:
    card = card_for(target, config, catalog)
    return [] if card is None else [card.id, card.family, card.provider]


def _rules_selector(ctx: RouteContext) -> _Plain:
    default = ctx.option("default")
    router = RuleRouter.parse(ctx.option("rules"), None if default is None else str(default))
    return _Plain(router, list(dict.fromkeys(router.targets())), "no rule matched")


def _capability_selector(ctx: RouteContext) -> _Plain:
    names = [str(t) for t in ctx.route.targets]
    if names:
        cands = [Candidate(n, card_for(n, ctx.config, ctx.catalog)) for n in names]
    else:
        providers = set(_listify(ctx.option("providers")))
        cands = [Candidate(c.id, c) for c in ctx.catalog
                 if not providers or c.provider in providers]
    router = CapabilityRouter(
        cands, frozenset(_listify(ctx.option("require"))), ctx.option("optimize", "cost"),
        dict(ctx.option("quality") or {}), int(ctx.option("output_tokens", 512)))
    return _Plain(router, [c.name for c in cands], eager=bool(names))


def _complexity_selector(ctx: RouteContext) -> _Plain:
    scorer = _load_scorer(ctx.option("scorer", "builtin"))
    router = ComplexityRouter.parse(ctx.option("tiers"), scorer)
    return _Plain(router, list(dict.fromkeys(t.target for t in router.tiers)))


def _load_scorer(ref: Any) -> Scorer:
    if ref in (None, "builtin", "heuristic"):
        return HeuristicScorer()
    module_name, _, attr = str(ref).partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr or "scorer")
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"scorer {ref!r} cannot be loaded: {exc}") from None
    scorer = factory() if isinstance(factory, type) or not hasattr(factory, "score") else factory
    if not isinstance(scorer, Scorer):
        raise ValueError(f"scorer {ref!r} has no score(text) -> float method")
    return scorer
