"""Everything checked against the models before a plan spends anything: names (with "did you
mean"), capabilities, `auto` choices, tools and budgets. The result, `Prepared`, is what the
runner, the dry run and the report work from."""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from llmswitch import (
    ConfigError,
    ContextTooLongError,
    LLMSwitchError,
    ModelNotFoundError,
    Switch,
    Usage,
    check_context,
    cost_usd,
)
from llmswitch.plans.auto import AutoChoice, choose
from llmswitch.plans.cards import cards_behind, missing, with_needs
from llmswitch.plans.errors import PlanError
from llmswitch.plans.estimate import Estimate, estimate_stream, price_card
from llmswitch.plans.model import Plan, StreamSpec
from llmswitch.plans.templates import render
from llmswitch.plans.tools import Toolbox


@dataclass(frozen=True)
class Prepared:
    """A plan checked against a switch: the model each stream calls and the estimates."""

    plan: Plan
    inputs: Mapping[str, str]
    models: Mapping[str, str]
    """Stream id -> the model, alias or route it calls (an `auto` stream's choice)."""
    estimates: Mapping[str, Estimate]
    auto: Mapping[str, AutoChoice] = field(default_factory=dict)


def prepare(switch: Switch, plan: Plan, inputs: Mapping[str, str] | None = None, *,
            tools: Toolbox | None = None, chosen: Mapping[str, str] | None = None) -> Prepared:
    """Check `plan` against `switch` and resolve `auto` models (`chosen` replays earlier
    choices, e.g. on resume). Raises `PlanError` naming the stream and key."""
    values = plan.resolve_inputs(inputs)
    models: dict[str, str] = {}
    auto: dict[str, AutoChoice] = {}
    estimates: dict[str, Estimate] = {}
    sizes: dict[str, int] = {}
    for sid in plan.order():
        spec = plan.streams[sid]
        where = f"{plan.source}: streams.{sid}"
        if spec.auto and chosen and sid in chosen:
            models[sid] = chosen[sid]
        elif spec.auto:
            choice = choose(switch, plan, spec, values, sizes)
            auto[sid] = choice
            models[sid] = choice.model
        else:
            models[sid] = spec.model
        check_model(switch, models[sid], f"{where}.model")
        for i, target in enumerate(spec.fallback):
            check_model(switch, target, f"{where}.fallback[{i}]")
        _check_needs(switch, spec, models[sid], where)
        _check_fits(switch, spec, models[sid], values, where)
        _check_tools(spec, tools, where)
        est = estimate_stream(switch, spec, models[sid], values, sizes)
        _check_budget(switch, spec, models[sid], est, where)
        estimates[sid] = est
        sizes[sid] = est.output_tokens
    _check_plan_budget(switch, plan, models, estimates)
    return Prepared(plan, values, models, estimates, auto)


def check_model(switch: Switch, name: str, where: str) -> None:
    """`name` resolves to a model, alias or route of `switch` (no call is made)."""
    try:
        switch.model(name)
    except ModelNotFoundError as exc:
        hint = exc.hint or "run `llmswitch models` to list known models"
        raise PlanError(f"{where}: unknown model {name!r}", hint=hint) from None
    except ConfigError as exc:
        raise PlanError(f"{where}: {name!r}: {exc}") from None
    except LLMSwitchError as exc:
        raise PlanError(f"{where}: {name!r} cannot be used: {exc}") from None


def _check_needs(switch: Switch, spec: StreamSpec, model: str, where: str) -> None:
    needs = spec.required()
    if not needs:
        return
    for key, name in (("model", model), *((f"fallback[{i}]", t)
                                          for i, t in enumerate(spec.fallback))):
        lacking = missing(switch, name, needs)
        if lacking:
            why = _why(spec, lacking)
            others = with_needs(switch, needs)
            raise PlanError(
                f"{where}.{key}: {name} lacks {', '.join(lacking)}, which this stream needs "
                f"({why})",
                hint=("models that have it: " + ", ".join(others)) if others else None)


def _check_fits(switch: Switch, spec: StreamSpec, model: str, inputs: Mapping[str, str],
                where: str) -> None:
    """A prompt made of inputs alone must fit the context window of the stream's model or of
    a fallback (any target of a route), as the call itself checks; prompts that carry an
    earlier stream's output are checked by the call."""
    templates = [t for t in (spec.prompt, spec.system) if t is not None]
    if any(t.streams() for t in templates):
        return
    system = render(spec.system, inputs, {}) if spec.system else None
    settings: dict[str, Any] = {"max_tokens": spec.max_tokens} if spec.max_tokens else {}
    request = switch.request(render(spec.prompt, inputs, {}), system=system, **settings)
    refusal: ContextTooLongError | None = None
    for name in (model, *spec.fallback):
        for card in cards_behind(switch, name):
            if card is None:
                return  # nothing known about its window: the call will tell
            try:
                check_context(request, card)
            except ContextTooLongError as exc:
                refusal = refusal or exc
            else:
                return
    if refusal is not None:
        raise PlanError(f"{where}.prompt: can never run: {refusal.message}"
                        + (" (and too long for its fallbacks)" if spec.fallback else ""),
                        hint="shorten the inputs, or give the stream (or a fallback) a model "
                        "with a larger context window")


def _why(spec: StreamSpec, lacking: list[str]) -> str:
    reasons = []
    for need in lacking:
        if need == "json" and spec.output.kind == "json" and "json" not in spec.needs:
            reasons.append("its output is JSON")
        elif need == "tools" and spec.tools and "tools" not in spec.needs:
            reasons.append("it has tools")
        else:
            reasons.append(f"needs: [{need}]")
    return "; ".join(reasons)


def _check_tools(spec: StreamSpec, tools: Toolbox | None, where: str) -> None:
    for name in spec.tools:
        if tools is None:
            raise PlanError(f"{where}.tools: the stream uses tool {name!r} but no tools are "
                            "registered", hint="pass tools=Toolbox(...) or --tools MODULE:NAME")
        if name not in tools:
            close = difflib.get_close_matches(name, tools.names(), n=1, cutoff=0.6)
            hint = f'did you mean "{close[0]}"?' if close else (
                "registered: " + (", ".join(tools.names()) or "none"))
            raise PlanError(f"{where}.tools: unknown tool {name!r}", hint=hint)


def _input_cost(switch: Switch, model: str, est: Estimate) -> float | None:
    card = price_card(switch, model)
    if card is None or not card.priced:
        return None
    return cost_usd(card, Usage(est.input_tokens, 0))


def _check_budget(switch: Switch, spec: StreamSpec, model: str, est: Estimate,
                  where: str) -> None:
    if spec.budget_usd is None:
        return
    floor = _input_cost(switch, model, est)
    if floor is not None and floor > spec.budget_usd:
        raise PlanError(f"{where}: can never run: its budget_usd {spec.budget_usd} is below "
                        f"the cost of its prompt alone on {model} (~${floor:.6f})",
                        hint="raise budget_usd or pick a cheaper model")


def _check_plan_budget(switch: Switch, plan: Plan, models: Mapping[str, str],
                       estimates: Mapping[str, Estimate]) -> None:
    if plan.budget_usd is None:
        return
    floors = [_input_cost(switch, models[s], e) for s, e in estimates.items()]
    floor = sum(f for f in floors if f is not None)
    if floor > plan.budget_usd:
        raise PlanError(f"{plan.source}: budget_usd {plan.budget_usd} is below the cost of "
                        f"the prompts alone (~${floor:.6f}); the plan can never finish",
                        hint="raise budget_usd or pick cheaper models")
