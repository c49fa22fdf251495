"""`strategy: learned`: route each request with a router trained by ``llmswitch router train``.

```yaml
routes:
  smart:
    strategy: learned
    router: routers/routerbench.npz      # a versioned .npz router file (loads without pickle)
    targets:                             # table model name -> target (model, alias or route)
      gpt-4-1106-preview: openai/gpt-4o
      mixtral-8x7b-chat: groq/mixtral
      mistral-7b-chat: local
    exclude: [claude-v1]                 # table models to leave out (every other must be mapped)
    lambda: 150                          # quality per USD; default: the λ stored at training
    # min_quality: 0.8                   # or: the cheapest target predicted to reach 0.8
    # strong: gpt-4-1106-preview         # or: RouteLLM-style call budget — the strong model only
    # margin: 0.05                       #   where its predicted quality beats the rest by > 0.05
```

``targets`` may also be a list: names (the table model name is the target) or
``{model: TARGET, key: TABLE_MODEL}`` entries. The router's predictions decide one target per
request, then the request goes to it unchanged (streaming streams the chosen target). The trace is
a ``llmswitch.strategy: learned`` span with ``llmswitch.chosen`` (the target), ``.reason``,
``.router_model`` (the table model), ``.predicted_quality`` and ``.predicted_cost_usd`` (per table
model), the policy (``.lambda``, or ``.min_quality``, or ``.strong`` and ``.margin``), ``.scores``
(``q:<model>`` and ``usd:<model>``) and ``.candidates``. The three policies exclude each other. A
cascade router file with the λ policy probes cheap models live and decides on their answers
(`strategies.learned_cascade`); with ``probes: false``, ``min_quality`` or ``strong`` it routes
with its base router (one call per request).
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmswitch.errors import LLMSwitchError, ModelNotFoundError
from llmswitch.models import Model
from llmswitch.request import Request
from llmswitch.results import Completion, StreamEvent
from llmswitch.routing.decision import Decision
from llmswitch.strategies._tally import Tally, stream_through
from llmswitch.strategies.registry import RouteContext

OPTIONS = frozenset({"router", "candidates", "exclude", "lambda", "min_quality", "target_cost",
                     "strong", "margin", "probes"})
"""Options beside `strategy` and `targets` (the registry rejects others, with a suggestion)."""


@dataclass
class LearnedSelector:
    """Decides with a `LearnedRouter` among the mapped table models (a pure decision).

    With ``min_quality`` the cheapest model predicted to reach it wins (else the best predicted).
    With ``strong`` (a call budget, as RouteLLM's routers and ``router eval``'s
    ``best_single_call_share_at_95`` use): the strong model where its predicted quality beats
    every other's by more than ``margin``, else the other predicted best. Otherwise the router's
    policy: maximise predicted quality − ``lam`` × predicted cost.
    """

    router: Any
    targets: dict[str, str]
    """Table model name → target name."""
    lam: float
    min_quality: float | None = None
    strong: str | None = None
    margin: float = 0.0

    def decide(self, request: Request) -> Decision:
        """Choose a target for the request's last user message."""
        _, labels = request_labels(request)
        d = self.router.decide(request.last_user_text, candidates=list(self.targets),
                               lam=self.lam, task=labels or None)
        chosen, reason = d.chosen, d.reason
        if self.min_quality is not None:
            chosen, reason = _cheapest_good(d.predicted_quality, d.predicted_cost,
                                            self.min_quality)
        elif self.strong is not None:
            chosen, reason = _strong_if_gain(d.predicted_quality, d.predicted_cost,
                                             self.strong, self.margin)
        scores = {f"q:{m}": q for m, q in d.predicted_quality.items()}
        scores.update({f"usd:{m}": c for m, c in d.predicted_cost.items()})
        return _Learned(self.targets[chosen], f"{reason} → {self.targets[chosen]}", scores,
                        chosen, dict(d.predicted_quality), dict(d.predicted_cost))

    def prepare(self, decision: Decision, request: Request) -> Request:
        """Send the request unchanged."""
        return request

    def finish(self, decision: Decision, text: str) -> str:
        """Return the answer unchanged."""
        return text

    def candidates(self) -> list[str]:
        """Every configured target."""
        return list(dict.fromkeys(self.targets.values()))


def request_labels(request: Request) -> tuple[str | None, list[str]]:
    """The request's task (``metadata["task"]``) and its router labels: the task, then
    ``key=value`` for every other string metadata entry, which matches a table's categorical
    column of that name (e.g. ``subtask=anatomy``); labels the router never saw are ignored."""
    task = request.metadata.get("task")
    task = task if isinstance(task, str) else None
    extra = [f"{k}={v}" for k, v in sorted(request.metadata.items())
             if k != "task" and isinstance(v, str)]
    return task, ([task] if task is not None else []) + extra


@dataclass(frozen=True, slots=True)
class _Learned(Decision):
    table_model: str = ""
    quality: Mapping[str, float] | None = None
    cost: Mapping[str, float] | None = None


def _cheapest_good(
    quality: Mapping[str, float], cost: Mapping[str, float], bar: float
) -> tuple[str, str]:
    good = [m for m in quality if quality[m] >= bar]
    if good:
        best = min(good, key=lambda m: (cost[m], -quality[m]))
        return best, (f"cheapest predicted to reach quality {bar:g}: {best} "
                      f"q={quality[best]:.3f} cost=${cost[best]:.6f}")
    best = max(quality, key=lambda m: (quality[m], -cost[m]))
    return best, (f"none predicted to reach quality {bar:g}; best predicted: {best} "
                  f"q={quality[best]:.3f} cost=${cost[best]:.6f}")


def _strong_if_gain(
    quality: Mapping[str, float], cost: Mapping[str, float], strong: str, margin: float
) -> tuple[str, str]:
    others = [m for m in quality if m != strong]
    other = max(others, key=lambda m: (quality[m], -cost[m]))
    gain = quality[strong] - quality[other]
    if gain > margin:
        return strong, f"{strong} predicted {gain:+.3f} over {other} (> margin {margin:g})"
    return other, f"{strong} predicted {gain:+.3f} over {other} (<= margin {margin:g})"


class LearnedModel(Model):
    """Decides with a `LearnedSelector`, then delegates to the chosen target."""

    def __init__(self, name: str, selector: LearnedSelector, resolve: Callable[[str], Model],
                 attributes: Mapping[str, Any]) -> None:
        self.name = name
        self.selector = selector
        self._resolve = resolve
        self._attributes = dict(attributes)

    def _select(self, request: Request) -> tuple[Tally, Model]:
        tally = Tally(self.name, "learned", **self._attributes)
        decision = self.selector.decide(request)
        extra: dict[str, Any] = {"scores": decision.scores,
                                 "candidates": self.selector.candidates()}
        if isinstance(decision, _Learned):
            extra.update({"router_model": decision.table_model,
                          "predicted_quality": dict(decision.quality or {}),
                          "predicted_cost_usd": dict(decision.cost or {})})
        tally.decide(decision.chosen, decision.reason, **extra)
        return tally, self._resolve(decision.chosen)

    async def complete(self, request: Request) -> Completion:
        """Route the request and return the chosen target's answer, the decision traced."""
        tally, model = self._select(request)
        try:
            completion = tally.add(await model.complete(request))
        except LLMSwitchError as exc:
            tally.failed(exc)
            raise tally.fail(exc) from None
        return tally.result(completion)

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Stream the chosen target; the final `StreamEnd` carries the decision's trace."""
        tally, model = self._select(request)
        async for event in stream_through(tally, model, request):
            yield event

    def describe(self) -> dict[str, Any]:
        """The route, its router and candidates."""
        return {"name": self.name, "kind": "learned", "candidates": self.selector.candidates(),
                "targets": dict(self.selector.targets), **self._attributes}


def _mapping(ctx: RouteContext, models: tuple[str, ...]) -> dict[str, str]:
    """Table model → target, from `targets` (mapping or list) or the older `candidates` key."""
    legacy = ctx.option("candidates")
    if legacy is not None and ctx.route.targets:
        raise ctx.fail("give 'targets' (table model → target), not both it and 'candidates'")
    if legacy is not None:
        if not isinstance(legacy, Mapping):
            raise ctx.fail("'candidates' must map the router's model names to targets")
        entries: list[Any] = [{"model": v, "key": k} for k, v in legacy.items()]
    else:
        entries = list(ctx.route.targets)
    if not entries:
        raise ctx.fail("'targets' must map the router's models to targets",
                       hint="e.g. targets: {" + f"{models[0]}: openai/gpt-4o" + ", ...}")
    out: dict[str, str] = {}
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            key, target = entry, entry
        elif isinstance(entry, Mapping) and isinstance(entry.get("model"), str):
            key, target = str(entry.get("key", entry["model"])), str(entry["model"])
        else:
            where = (f"targets.{entry['key']}" if isinstance(entry, Mapping)
                     and isinstance(entry.get("key"), str) else f"targets[{i}]")
            raise ctx.fail(f"{where} must be a name or {{model: TARGET, key: TABLE_MODEL}}")
        if key in out:
            raise ctx.fail(f"table model {key!r} is mapped twice")
        out[key] = target
    return out


def _check_mapping(ctx: RouteContext, path: str, models: tuple[str, ...],
                   mapping: dict[str, str]) -> None:
    unknown = [m for m in mapping if m not in models]
    if unknown:
        raise ctx.fail(f"router {path} has no model {', '.join(map(repr, unknown))}",
                       hint="its models: " + ", ".join(models))
    exclude = ctx.option("exclude") or []
    if not isinstance(exclude, list) or any(m not in models for m in exclude):
        raise ctx.fail("'exclude' must list models of the router",
                       hint="its models: " + ", ".join(models))
    both = [m for m in exclude if m in mapping]
    if both:
        raise ctx.fail(f"table model(s) {', '.join(map(repr, both))} both mapped under 'targets' "
                       "and listed under 'exclude'", hint="keep each in one of them")
    unmapped = [m for m in models if m not in mapping and m not in exclude]
    if unmapped:
        raise ctx.fail(f"no target for table model(s) {', '.join(map(repr, unmapped))} "
                       f"of router {path}",
                       hint="map each to a model or route under 'targets', or list it under "
                            "'exclude' to route without it")


def _load(ctx: RouteContext) -> tuple[Any, str]:
    path = ctx.option("router")
    if not isinstance(path, str) or not path:
        raise ctx.fail("'router' (a file from `llmswitch router train`) is required")
    source = Path(ctx.config.source)
    if not Path(path).is_absolute() and source.is_file():
        if (source.parent / path).exists():
            path = str(source.parent / path)  # relative to the config file (else to the cwd)
        elif not Path(path).exists():
            raise ctx.fail(f"router file {path!r} found neither next to the config "
                           f"({source.parent.resolve()}) nor in the current directory "
                           f"({Path.cwd()})", hint="train one with `llmswitch router train`")
    try:
        from llmswitch.routing.learned.io import RouterFileError, load_router
    except ImportError:
        raise ctx.fail("strategy 'learned' needs the router extra",
                       hint="pip install 'llmswitch[router]'") from None
    try:
        return load_router(path), path
    except RouterFileError as exc:
        raise ctx.fail(str(exc), hint="train one with `llmswitch router train`") from None
    except (ValueError, KeyError, TypeError, IndexError, OSError) as exc:
        raise ctx.fail(f"{path}: not a valid router file ({type(exc).__name__}: {exc})",
                       hint="train one with `llmswitch router train`") from None


def _number(ctx: RouteContext, key: str, default: Any, upper: float | None = None) -> Any:
    value = ctx.option(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or value < 0 or (upper is not None and value > upper):
        limit = f"in [0, {upper:g}]" if upper is not None else ">= 0"
        raise ctx.fail(f"'{key}' must be a number {limit}, not {value!r}")
    return float(value)


def _call_budget(ctx: RouteContext, mapping: Mapping[str, str]) -> tuple[str | None, float]:
    """``strong`` (a mapped table model) and ``margin`` (0–1, default 0)."""
    strong = ctx.option("strong")
    margin = _number(ctx, "margin", None, upper=1.0)
    if strong is None:
        if margin is not None:
            raise ctx.fail("'margin' needs 'strong' (the table model it guards)")
        return None, 0.0
    if not isinstance(strong, str) or strong not in mapping:
        raise ctx.fail(f"'strong' must be one of the routed table models, not {strong!r}",
                       hint=", ".join(mapping))
    if len(mapping) < 2:
        raise ctx.fail("'strong' needs at least one other routed table model")
    return strong, 0.0 if margin is None else margin


def build(ctx: RouteContext) -> Model:
    """Build the learned route from its config entry (see the module docstring)."""
    if ctx.option("target_cost") is not None:
        raise ctx.fail("'target_cost' (an average cost per request) cannot be met per request",
                       hint="calibrate it at training: `llmswitch router train --target-cost USD` "
                            "stores the λ that meets it; or set 'lambda' or 'min_quality'")
    router, path = _load(ctx)
    base = getattr(router, "base", router)
    models = tuple(base.models)
    mapping = _mapping(ctx, models)
    _check_mapping(ctx, path, models, mapping)
    lam = _number(ctx, "lambda", router.lam)
    min_quality = _number(ctx, "min_quality", None, upper=1.0)
    strong, margin = _call_budget(ctx, mapping)
    given = [k for k in ("lambda", "min_quality", "strong") if ctx.option(k) is not None]
    if len(given) > 1:
        raise ctx.fail(f"give one policy, not {' and '.join(map(repr, given))}",
                       hint="'lambda' (quality per USD), 'min_quality', or 'strong' with 'margin'")
    for key, target in mapping.items():
        try:
            ctx.resolve(target)
        except ModelNotFoundError as exc:
            raise ctx.fail(f"targets.{key}: {exc.message}", hint=exc.hint) from None
    probes = ctx.option("probes", True)
    if not isinstance(probes, bool):
        raise ctx.fail(f"'probes' must be true or false, not {probes!r}")
    if router.kind == "cascade" and probes and min_quality is None and strong is None:
        from llmswitch.strategies.learned_cascade import LearnedCascadeModel

        return LearnedCascadeModel(ctx.name, router, mapping, lam, ctx.resolve, {
            "llmswitch.router": path, "llmswitch.router_kind": "cascade", "llmswitch.lambda": lam})
    selector = LearnedSelector(base, mapping, lam, min_quality, strong, margin)
    attributes: dict[str, Any] = {"llmswitch.router": path,
                                  "llmswitch.router_kind": str(router.kind)}
    if min_quality is not None:
        attributes["llmswitch.min_quality"] = min_quality
    elif strong is not None:
        attributes.update({"llmswitch.strong": strong, "llmswitch.margin": margin})
    else:
        attributes["llmswitch.lambda"] = lam
    return LearnedModel(ctx.name, selector, ctx.resolve, attributes)
