"""The cost report of a run: what the multi-model run cost beside the same plan on one model.

The baseline is re-priced from the run's own token counts at the baseline model's catalog
prices (an estimate: another model would have written answers of other lengths), per stream
and in total. The default baseline is the most expensive model the run used (the one that
prices this run's tokens highest). `execute_baseline` really runs the plan on the baseline
model (in `RUN_DIR/baseline/`) and reports both measured costs and both check pass rates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmswitch import ConfigError, ModelCard, Switch, Usage, cost_usd
from llmswitch.plans.check import Prepared, check_model
from llmswitch.plans.errors import PlanError
from llmswitch.plans.estimate import Estimate, estimate_plan, price_card, total
from llmswitch.plans.model import Plan
from llmswitch.plans.rundir import RunFolder
from llmswitch.plans.runner import PlanRun, resume_plan, start_run
from llmswitch.plans.tools import Toolbox

BASELINE_DIR = "baseline"


@dataclass
class StreamCost:
    """One stream's line of the report."""

    stream: str
    status: str
    model: str | None
    provider: str | None
    moved_from: str | None
    input_tokens: int
    output_tokens: int
    actual_cost_usd: float
    baseline_cost_usd: float | None
    checks_passed: int = 0
    checks_total: int = 0

    @property
    def saving_share(self) -> float | None:
        """`1 - actual / baseline` (`None` when the baseline is unknown or zero)."""
        return share(self.actual_cost_usd, self.baseline_cost_usd)

    def to_dict(self) -> dict[str, Any]:
        """JSON shape of `plan report --json` (`streams.<id>`)."""
        actual, baseline = round(self.actual_cost_usd, 10), _round(self.baseline_cost_usd)
        return {"status": self.status, "model": self.model, "provider": self.provider,
                "moved_from": self.moved_from, "moved": self.moved_from is not None,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "actual_cost_usd": actual, "baseline_cost_usd": baseline,
                "saving_share": share(actual, baseline),
                "checks_passed": self.checks_passed, "checks_total": self.checks_total}


@dataclass
class CostReport:
    """A run beside its single-model baseline."""

    run_id: str
    run_dir: str
    status: str
    baseline_model: str
    baseline_estimated: bool
    streams: list[StreamCost]
    executed: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def actual_cost_usd(self) -> float:
        """What the run spent."""
        return sum(s.actual_cost_usd for s in self.streams)

    @property
    def baseline_cost_usd(self) -> float | None:
        """What the baseline cost (re-priced, or measured when executed)."""
        if self.executed is not None:
            return float(self.executed["cost_usd"])
        known = [s.baseline_cost_usd for s in self.streams if s.baseline_cost_usd is not None]
        return sum(known) if known else None

    @property
    def saving_share(self) -> float | None:
        """`1 - actual / baseline`."""
        return share(self.actual_cost_usd, self.baseline_cost_usd)

    @property
    def moved(self) -> list[str]:
        """Streams that finished on a fallback model."""
        return [s.stream for s in self.streams if s.moved_from is not None]

    def to_dict(self) -> dict[str, Any]:
        """The `plan report --json` object."""
        passed = sum(s.checks_passed for s in self.streams)
        total = sum(s.checks_total for s in self.streams)
        actual, baseline = round(self.actual_cost_usd, 10), _round(self.baseline_cost_usd)
        return {
            "run_id": self.run_id, "run_dir": self.run_dir, "status": self.status,
            "actual_cost_usd": actual,
            "baseline_model": self.baseline_model,
            "baseline_cost_usd": baseline,
            "baseline_estimated": self.baseline_estimated,
            "saving_share": share(actual, baseline),
            "moved": self.moved,
            "check_pass_rate": passed / total if total else None,
            "baseline_run": self.executed,
            "streams": {s.stream: {**s.to_dict(), "baseline_model": self.baseline_model}
                        for s in self.streams},
            "notes": self.notes,
        }


def share(actual: float, baseline: float | None) -> float | None:
    """`1 - actual / baseline`, or `None` when there is nothing to compare with. Not rounded:
    the JSON outputs compute it from the (rounded) figures they print beside it."""
    if baseline is None or baseline <= 0:
        return None
    return 1 - actual / baseline


def _round(value: float | None, digits: int = 10) -> float | None:
    return None if value is None else round(value, digits)


def build_report(switch: Switch, run_dir: str | Path, baseline: str | None = None) -> CostReport:
    """The report of a run folder (re-priced baseline; see `execute_baseline`)."""
    folder = RunFolder.open(Path(run_dir))
    manifest = folder.manifest
    entries: Mapping[str, Mapping[str, Any]] = manifest["streams"]
    name, card = _baseline(switch, entries, baseline)
    lines = []
    for sid, entry in entries.items():
        usage = Usage(int(entry.get("input_tokens") or 0), int(entry.get("output_tokens") or 0))
        checks = entry.get("checks") or []
        lines.append(StreamCost(
            stream=sid, status=str(entry["status"]), model=entry.get("model"),
            provider=entry.get("provider"), moved_from=entry.get("moved_from"),
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens,
            actual_cost_usd=float(entry.get("cost_usd") or 0.0)
            + float(entry.get("earlier_cost_usd") or 0.0),
            baseline_cost_usd=cost_usd(card, usage),
            checks_passed=sum(1 for c in checks if c.get("passed")), checks_total=len(checks),
        ))
    notes = [f"baseline: every stream on {name}, re-priced from this run's token counts "
             "(an estimate)"]
    unpriced = [s.stream for s in lines if s.status == "done" and _served_card(
        switch, entries[s.stream]) is None and s.actual_cost_usd == 0]
    if unpriced:
        notes.append(f"no catalog price for the model of {', '.join(unpriced)}: counted as $0")
    return CostReport(str(manifest["run_id"]), str(folder.path), str(manifest["status"]),
                      name, True, lines, notes=notes)


def _served_card(switch: Switch, entry: Mapping[str, Any]) -> ModelCard | None:
    provider, model = entry.get("provider"), entry.get("model")
    if provider and model:
        card = switch.catalog.get(f"{provider}/{model}")
        if card is not None:
            return card
    served = entry.get("served_by") or entry.get("requested_model")
    return price_card(switch, str(served)) if served else None


def _baseline(switch: Switch, entries: Mapping[str, Mapping[str, Any]],
              name: str | None) -> tuple[str, ModelCard]:
    if name is not None:
        check_model(switch, name, "--baseline")
        card = price_card(switch, name)
        if card is None or not card.priced:
            raise PlanError(f"--baseline {name}: the catalog has no price for it",
                            hint="pick a catalog model, or give its prices in the config")
        return name, card
    usages = [Usage(int(e.get("input_tokens") or 0), int(e.get("output_tokens") or 0))
              for e in entries.values()]
    best: tuple[float, str, ModelCard] | None = None
    for entry in entries.values():
        card = _served_card(switch, entry)
        if card is None or not card.priced:
            continue
        total = sum(cost_usd(card, u) or 0.0 for u in usages)
        if best is None or total > best[0]:
            best = (total, card.id, card)
    if best is None:
        raise PlanError("the run used no model with a catalog price to compare with",
                        hint="give one with --baseline MODEL")
    return best[1], best[2]


def dry_run(switch: Switch, prepared: Prepared, baseline: str | None = None
            ) -> dict[str, Any]:
    """Estimates per stream on its model and on one baseline model (default: the plan's most
    expensive model for these estimates), before anything is spent."""
    plan = prepared.plan
    names = list(dict.fromkeys(prepared.models.values()))
    if baseline is not None:
        check_model(switch, baseline, "--baseline")
        names = [baseline]
    best: tuple[float, str, dict[str, Estimate]] | None = None
    for name in names:
        est = estimate_plan(switch, plan, dict.fromkeys(plan.streams, name), prepared.inputs)
        cost = total(est)
        if cost is not None and (best is None or cost > best[0]):
            best = (cost, name, est)
    actual = _round(total(prepared.estimates))
    baseline_cost = _round(best[0] if best else None)
    streams = {}
    for sid, estimate in prepared.estimates.items():
        row = estimate.to_dict()
        row["baseline_model"] = best[1] if best else None
        row["baseline_cost_usd"] = best[2][sid].cost_usd if best else None
        row["auto_reason"] = prepared.auto[sid].reason if sid in prepared.auto else None
        streams[sid] = row
    return {"dry_run": True, "plan": plan.name, "inputs": dict(prepared.inputs),
            "total_cost_usd": actual, "baseline_model": best[1] if best else None,
            "baseline_cost_usd": baseline_cost,
            "saving_share": share(actual or 0.0, baseline_cost),
            "streams": streams}


def single_model_plan(plan: Plan, model: str) -> Plan:
    """The same plan with every stream on `model` (no fallbacks, no auto choice)."""
    streams = {sid: dataclasses.replace(spec, model=model, fallback=(), router=None,
                                        candidates=())
               for sid, spec in plan.streams.items()}
    return plan.with_streams(streams)


async def execute_baseline(switch: Switch, report: CostReport, *,
                           tools: Toolbox | None = None) -> PlanRun:
    """Run (or finish) the baseline plan in `RUN_DIR/baseline/` and add it to `report`."""
    folder = RunFolder.open(Path(report.run_dir))
    target = folder.path / BASELINE_DIR
    if (target / "run.json").exists():
        existing = RunFolder.open(target)
        if existing.manifest.get("baseline_model") != report.baseline_model:
            raise PlanError(f"{target}: holds a baseline run on "
                            f"{existing.manifest.get('baseline_model')}, not "
                            f"{report.baseline_model}", hint="remove that folder to rerun")
        run = (await resume_plan(switch, target, tools=tools, approve=True)
               if existing.manifest["status"] != "done" else PlanRun(existing, {}))
    else:
        plan = single_model_plan(folder.load_plan(), report.baseline_model)
        runner = start_run(switch, plan, folder.manifest.get("inputs") or {}, run_dir=target,
                           tools=tools, approve=True,
                           concurrency=int(folder.manifest.get("concurrency") or 8))
        runner.folder.manifest["baseline_model"] = report.baseline_model
        runner.folder.manifest["baseline_of"] = report.run_id
        run = await runner.run()
    _add_measured(report, run)
    return run


def _add_measured(report: CostReport, run: PlanRun) -> None:
    passed = total = 0
    per_stream = {}
    for sid, entry in run.streams.items():
        checks = entry.get("checks") or []
        passed += sum(1 for c in checks if c.get("passed"))
        total += len(checks)
        per_stream[sid] = float(entry.get("cost_usd") or 0.0) + float(
            entry.get("earlier_cost_usd") or 0.0)
    for line in report.streams:
        if line.stream in per_stream:
            line.baseline_cost_usd = per_stream[line.stream]
    report.baseline_estimated = False
    report.executed = {"run_id": run.run_id, "run_dir": str(run.run_dir),
                       "status": run.status, "cost_usd": run.total_cost_usd,
                       "check_pass_rate": passed / total if total else None}
    report.notes = [f"baseline: every stream really run on {report.baseline_model} "
                    f"({run.run_dir}); both costs measured"]


def save_chart(report: CostReport, path: str | Path) -> None:
    """A bar chart of actual vs baseline cost per stream and in total (extra `plot`)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("--png needs matplotlib, which is in the 'plot' extra",
                          hint="pip install 'llmswitch[plot]'") from None
    labels = [s.stream + (" *" if s.moved_from else "") for s in report.streams] + ["total"]
    actual = [s.actual_cost_usd for s in report.streams] + [report.actual_cost_usd]
    base = [s.baseline_cost_usd or 0.0 for s in report.streams] + [
        report.baseline_cost_usd or 0.0]
    fig, (ax, tot) = plt.subplots(1, 2, figsize=(10, 4),
                                  gridspec_kw={"width_ratios": [len(labels) - 1, 1.2]})
    kind = "estimated" if report.baseline_estimated else "measured"
    for axis, xs, a, b in ((ax, labels[:-1], actual[:-1], base[:-1]),
                           (tot, labels[-1:], actual[-1:], base[-1:])):
        pos = range(len(xs))
        axis.bar([p - 0.2 for p in pos], a, 0.4, label="this run (multi-model)",
                 color="#4c72b0")
        axis.bar([p + 0.2 for p in pos], b, 0.4,
                 label=f"all on {report.baseline_model} ({kind})", color="#dd8452")
        axis.set_xticks(list(pos), xs, rotation=20, fontsize=8)
        axis.set_ylabel("USD")
    saving = report.saving_share
    title = f"plan run {report.run_id}: ${report.actual_cost_usd:.4f}"
    if report.baseline_cost_usd is not None:
        title += f" vs ${report.baseline_cost_usd:.4f}"
    if saving is not None:
        title += f" ({saving:.0%} saved)"
    fig.suptitle(title.replace("$", r"\$"), fontsize=10)  # `$` would start mathtext
    ax.legend(fontsize=8)
    if report.moved:
        ax.set_xlabel("* finished on a fallback model", fontsize=8)
    fig.tight_layout()
    try:
        fig.savefig(str(path), dpi=120)
    except (OSError, ValueError) as exc:
        raise PlanError(f"--png {path}: cannot write the chart: {exc}") from None
    finally:
        plt.close(fig)
