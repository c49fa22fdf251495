"""The scheduler: every stream is a task that waits for its dependencies, then runs under a
shared concurrency limit. Independent streams run in parallel; a failed stream's dependents
are skipped while the rest finish. Each finished stream's output, trace and manifest entry
are written at once (see `rundir.py`), so an interrupted or killed run resumes exactly where
it stopped: finished streams are never run, or paid for, again.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmswitch import LLMSwitchError, Span, Switch
from llmswitch import TimeoutError as CallTimeoutError
from llmswitch.plans.check import Prepared, prepare
from llmswitch.plans.errors import PlanError, RejectedError
from llmswitch.plans.execute import Result, RunBudget, StreamRun
from llmswitch.plans.model import Plan
from llmswitch.plans.rundir import RunFolder, new_run_id, stream_entry
from llmswitch.plans.templates import Output, render
from llmswitch.plans.tools import Toolbox

DEFAULT_CONCURRENCY = 8
APPROVAL_TIMEOUT = 3600.0
"""Seconds a run waits for `plan approve` before it stops (resumable) with the stream
`awaiting_approval`."""
APPROVAL_POLL = 0.25
TERMINAL = ("done", "failed", "skipped")


@dataclass
class PlanRun:
    """A finished (or stopped) run: its folder, manifest and the streams' outputs."""

    folder: RunFolder
    outputs: Mapping[str, Output]

    @property
    def manifest(self) -> dict[str, Any]:
        """The run manifest (the same object as `run.json`)."""
        return self.folder.manifest

    @property
    def run_id(self) -> str:
        """The run's id (also its tag in the spend ledger)."""
        return str(self.manifest["run_id"])

    @property
    def run_dir(self) -> Path:
        """The run folder."""
        return self.folder.path

    @property
    def status(self) -> str:
        """`done`, `failed`, `awaiting_approval` or `interrupted`."""
        return str(self.manifest["status"])

    @property
    def streams(self) -> dict[str, dict[str, Any]]:
        """Per-stream manifest entries."""
        streams: dict[str, dict[str, Any]] = self.manifest["streams"]
        return streams

    @property
    def total_cost_usd(self) -> float:
        """USD spent by every call of the run (failed calls and earlier sessions included)."""
        return float(self.manifest["total_cost_usd"])

    def output(self, stream: str) -> str:
        """A finished stream's output text."""
        return self.outputs[stream].text


class Runner:
    """Runs a prepared plan in a run folder. `snapshot()` is safe to call while it runs."""

    def __init__(self, switch: Switch, prepared: Prepared, folder: RunFolder, *,
                 concurrency: int = DEFAULT_CONCURRENCY, tools: Toolbox | None = None,
                 approve: bool = False, approval_timeout: float = APPROVAL_TIMEOUT) -> None:
        self.switch = switch
        self.prepared = prepared
        self.plan = prepared.plan
        self.folder = folder
        self.concurrency = max(1, concurrency)
        self.tools = tools
        self.approve = approve
        self.approval_timeout = approval_timeout
        self.outputs: dict[str, Output] = {}
        self.live: dict[str, StreamRun] = {}
        self.entries: dict[str, dict[str, Any]] = folder.manifest["streams"]
        self._events: dict[str, asyncio.Event] = {}
        self._sem: asyncio.Semaphore | None = None
        self._run_budget: RunBudget | None = None

    @property
    def run_id(self) -> str:
        """The run id."""
        return str(self.folder.manifest["run_id"])

    # -- the whole run --------------------------------------------------------------------
    async def run(self) -> PlanRun:
        """Run every stream that is not done yet; returns when all have ended or stopped."""
        self.folder.lock()
        manifest = self.folder.manifest
        manifest["status"] = "running"
        manifest["started_at"] = manifest.get("started_at") or time.time()
        manifest["sessions"] = [*manifest.get("sessions", []), {"started_at": time.time()}]
        self._load_finished()
        if self.plan.budget_usd is not None:  # what earlier sessions spent counts too
            self._run_budget = RunBudget(self.plan.budget_usd, spent=sum(
                (e.get("cost_usd") or 0.0) + e.get("earlier_cost_usd", 0.0)
                for e in self.entries.values()))
        self._sem = asyncio.Semaphore(self.concurrency)
        self._events = {sid: asyncio.Event() for sid in self.plan.streams}
        self.folder.save()
        status = "interrupted"
        try:
            await self._run_all()
            status = self._final_status()
        finally:
            if status == "interrupted":
                for entry in self.entries.values():
                    if entry["status"] == "running":
                        entry["status"] = "interrupted"
            manifest["status"] = status
            manifest["finished_at"] = time.time()
            manifest["sessions"][-1].update(finished_at=time.time(), status=status)
            self._totals()
            self.folder.save()
            self.folder.unlock()
        return PlanRun(self.folder, self.outputs)

    async def _run_all(self) -> None:
        tasks = [asyncio.create_task(self._stream(sid), name=f"plan stream {sid}")
                 for sid in self.plan.order()]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks, timeout=10)
            raise

    def _final_status(self) -> str:
        states = [e["status"] for e in self.entries.values()]
        if all(s == "done" for s in states):
            return "done"
        if any(s in ("failed", "skipped") for s in states):
            return "failed"
        return "awaiting_approval"

    def _totals(self) -> None:
        cost = tokens_in = tokens_out = 0.0
        for entry in self.entries.values():
            cost += (entry.get("cost_usd") or 0.0) + entry.get("earlier_cost_usd", 0.0)
            tokens_in += (entry.get("input_tokens") or 0) + entry.get("earlier_input_tokens", 0)
            tokens_out += (entry.get("output_tokens") or 0) + entry.get("earlier_output_tokens",
                                                                        0)
        manifest = self.folder.manifest
        manifest["total_cost_usd"] = round(cost, 10)
        manifest["total_input_tokens"] = int(tokens_in)
        manifest["total_output_tokens"] = int(tokens_out)
        first = manifest.get("started_at") or time.time()
        manifest["elapsed_ms"] = round((time.time() - first) * 1000, 1)

    def _load_finished(self) -> None:
        """Outputs of streams finished in an earlier session (resume)."""
        for sid, entry in self.entries.items():
            if entry["status"] not in ("done", "awaiting_approval"):
                continue
            spec = self.plan.streams[sid]
            path = self.folder.output_path(spec.output.filename(sid))
            try:
                text = path.read_text(encoding="utf-8")
                value = json.loads(text) if spec.output.kind == "json" else None
            except (OSError, ValueError):
                entry["status"] = "pending"  # the output is gone: run the stream again
                continue
            self.outputs[sid] = Output(text, value)
            entry["output_file"] = str(path)

    # -- one stream -----------------------------------------------------------------------
    async def _stream(self, sid: str) -> None:
        entry = self.entries[sid]
        try:
            if entry["status"] == "done":
                return
            spec = self.plan.streams[sid]
            for dep in spec.depends_on:
                await self._events[dep].wait()
            if not self._ready(sid):
                return
            if entry["status"] == "awaiting_approval":
                await self._approval(sid)
                return
            assert self._sem is not None
            async with self._sem:
                result = await self._execute(sid)
            if result is not None:
                self._finish(sid, result)
                if spec.checkpoint == "approve":
                    await self._approval(sid)
        finally:
            self._events[sid].set()

    def _ready(self, sid: str) -> bool:
        entry = self.entries[sid]
        deps = self.plan.streams[sid].depends_on
        failed = [d for d in deps if self.entries[d]["status"] in ("failed", "skipped")]
        if failed:
            entry.update(status="skipped", error={
                "type": "skipped", "message": f"not run: {', '.join(failed)} did not finish"})
            self._save()
            return False
        waiting = [d for d in deps if self.entries[d]["status"] != "done"]
        if waiting:
            entry["error"] = {"type": "waiting",
                              "message": f"waits for approval of {', '.join(waiting)}"}
            self._save()
            return False
        return True

    async def _execute(self, sid: str) -> Result | None:
        spec = self.plan.streams[sid]
        entry = self.entries[sid]
        for key in ("cost_usd", "input_tokens", "output_tokens"):  # an earlier session's
            entry[f"earlier_{key}"] = entry.get(f"earlier_{key}", 0) + (entry.get(key) or 0)
        model = self.prepared.models[sid]
        entry.update(status="running", started_at=time.time(), finished_at=None, error=None,
                     requested_model=model, cost_usd=None, model=None, provider=None,
                     input_tokens=0, output_tokens=0)
        self._save()
        started = time.monotonic()
        deadline_at = started + spec.deadline if spec.deadline else None
        run = StreamRun(self.switch, spec, model, run_id=self.run_id,
                        budget_usd=spec.budget_usd, tools=self.tools,
                        deadline_at=deadline_at, run_budget=self._run_budget)
        self.live[sid] = run
        error: LLMSwitchError | None = None
        result: Result | None = None
        try:
            prompt = render(spec.prompt, self.prepared.inputs, self.outputs,
                            f"streams.{sid}.prompt")
            system = (render(spec.system, self.prepared.inputs, self.outputs,
                             f"streams.{sid}.system") if spec.system else None)
            async with asyncio.timeout(spec.deadline):
                result = await run.run(prompt, system)
        except LLMSwitchError as exc:
            error = exc
        except TimeoutError:
            error = CallTimeoutError(f"stream {sid}: its deadline of {spec.deadline:g} s passed",
                                     model=run.target, hint="raise the stream's deadline")
        except asyncio.CancelledError:
            entry["status"] = "interrupted"
            raise
        except Exception as exc:  # a fault in a custom model or tool ends this stream only
            if os.environ.get("LLMSWITCH_DEBUG"):
                raise
            error = LLMSwitchError(f"stream {sid}: internal error: {type(exc).__name__}: {exc}")
        finally:
            self._record(sid, run, started, result)
        if error is not None:
            entry.update(status="failed", error=error.to_dict(), finished_at=time.time())
            self._save()
            return None
        return result

    def _record(self, sid: str, run: StreamRun, started: float, result: Result | None) -> None:
        """Copy a stream's tally (and trace) into its manifest entry."""
        entry = self.entries[sid]
        tally = run.tally
        entry.update(
            input_tokens=tally.usage.input_tokens, output_tokens=tally.usage.output_tokens,
            cost_usd=round(tally.cost_usd, 10) if tally.cost_known or tally.cost_usd else None,
            latency_ms=round((time.monotonic() - started) * 1000, 1),
            attempts=tally.attempts, calls=tally.calls, trace_ids=tally.trace_ids,
            trace_id=tally.trace_ids[-1] if tally.trace_ids else None,
            moved_from=run.targets[0] if run.index > 0 else None, moves=run.moves,
        )
        if result is not None:
            entry.update(model=result.completion.model, provider=result.completion.provider,
                         served_by=result.served_model)
            chosen = _route_choice(result.completion.trace)
            if entry.get("auto") and entry["auto"].get("router") and chosen:
                entry["auto"]["router_chose"] = chosen
        elif tally.calls:
            entry.update(model=None, provider=None)
        span = self._trace(sid, run)
        path = self.folder.write(f"traces/{sid}.json",
                                 json.dumps(span.to_dict(), indent=1, default=str) + "\n")
        entry["trace_file"] = str(path)

    def _trace(self, sid: str, run: StreamRun) -> Span:
        attrs: dict[str, Any] = {"llmswitch.plan.run_id": self.run_id,
                                 "llmswitch.plan.stream_id": sid,
                                 "gen_ai.request.model": run.targets[0]}
        choice = self.prepared.auto.get(sid)
        if choice is not None:
            attrs.update({"llmswitch.chosen": choice.model, "llmswitch.reason": choice.reason})
        elif self.entries[sid].get("auto"):
            auto = self.entries[sid]["auto"]
            attrs.update({"llmswitch.chosen": auto["model"], "llmswitch.reason": auto["reason"]})
        if run.moves:
            attrs["llmswitch.plan.moved_to"] = run.target
        children = sorted([*run.tally.spans, *run.tool_spans], key=lambda s: s.start_time)
        return Span(f"plan stream {sid}", "step", attrs, children)

    def _finish(self, sid: str, result: Result) -> None:
        """Write the output, then mark the entry done (the manifest is the commit point)."""
        spec = self.plan.streams[sid]
        path = self.folder.write(spec.output.filename(sid), result.output.text)
        self.outputs[sid] = result.output
        entry = self.entries[sid]
        entry.update(output_file=str(path), checks=result.checks, finished_at=time.time(),
                     status="awaiting_approval" if spec.checkpoint == "approve" else "done")
        self._save()

    async def _approval(self, sid: str) -> None:
        entry = self.entries[sid]
        if self.approve:
            self.folder.record_approval(sid, True, "--yes")
        entry["status"] = "awaiting_approval"
        self._save()
        until = time.monotonic() + self.approval_timeout
        record = self.folder.approval(sid)
        while record is None and time.monotonic() < until:
            await asyncio.sleep(APPROVAL_POLL)
            record = self.folder.approval(sid)
        if record is None:
            return
        entry["approval"] = record
        if record.get("approved"):
            entry["status"] = "done"
        else:
            self.folder.clear_approval(sid)
            error = RejectedError(f"stream {sid}: output rejected"
                                  + (f": {record['note']}" if record.get("note") else ""),
                                  hint="`llmswitch plan resume` runs it again")
            entry.update(status="failed", error=error.to_dict())
        self._save()

    def _save(self) -> None:
        self._totals()
        self.folder.save()

    # -- for live views -------------------------------------------------------------------
    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Per stream: status, model, tokens, cost, elapsed seconds, fallback, agent step."""
        now = time.time()
        out = {}
        for sid in self.plan.streams:
            entry = self.entries[sid]
            run = self.live.get(sid)
            row = {"status": entry["status"], "model": entry.get("model")
                   or (run.target if run else self.prepared.models[sid]),
                   "input_tokens": entry.get("input_tokens") or 0,
                   "output_tokens": entry.get("output_tokens") or 0,
                   "cost_usd": entry.get("cost_usd"), "moved_from": entry.get("moved_from"),
                   "step": run.step if run else 0, "elapsed_s": None}
            if run is not None and entry["status"] == "running":
                row.update(input_tokens=run.tally.usage.input_tokens,
                           output_tokens=run.tally.usage.output_tokens,
                           cost_usd=run.tally.cost_usd, model=run.target,
                           moved_from=run.targets[0] if run.index else None)
            if entry.get("started_at"):
                row["elapsed_s"] = (entry.get("finished_at") or now) - entry["started_at"]
            out[sid] = row
        return out


def _route_choice(trace: Span | None) -> str | None:
    """What a route decided for this call (`llmswitch.chosen` in its trace), if anything."""
    for span in trace.walk() if trace is not None else ():
        chosen = span.attributes.get("llmswitch.chosen")
        if chosen:
            return str(chosen)
    return None


def config_file(switch: Switch) -> str:
    """The switch's config file as an absolute path (so `plan resume` and `plan report` find
    it from any folder), or its label when it did not come from a file."""
    source = switch.config.source
    path = Path(source)
    return str(path.resolve()) if path.is_file() else source


def new_manifest(switch: Switch, prepared: Prepared, run_id: str, concurrency: int
                 ) -> dict[str, Any]:
    """The manifest of a run that has not started."""
    plan = prepared.plan
    streams = {}
    for sid in plan.order():
        spec = plan.streams[sid]
        choice = prepared.auto.get(sid)
        est = prepared.estimates[sid]
        streams[sid] = stream_entry(prepared.models[sid], list(spec.depends_on),
                                    list(spec.fallback), {
                                        "auto": choice.to_dict() if choice else None,
                                        "checkpoint": spec.checkpoint,
                                        "estimate": est.to_dict(),
                                        "earlier_cost_usd": 0.0})
    return {
        "version": 1, "run_id": run_id, "run_dir": None, "status": "pending",
        "plan": {"name": plan.name, "source": plan.source,
                 "base": str(plan.base) if plan.base else None},
        "config": config_file(switch), "inputs": dict(prepared.inputs),
        "concurrency": concurrency,
        "started_at": None, "finished_at": None, "elapsed_ms": None,
        "total_cost_usd": 0.0, "total_input_tokens": 0, "total_output_tokens": 0,
        "streams": streams,
    }


def _check_concurrency(value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                              or value < 1):
        raise PlanError(f"concurrency must be a whole number of streams >= 1, not {value!r}",
                        hint="leave it out for the plan's own (default 8)")


def start_run(switch: Switch, plan: Plan, inputs: Mapping[str, str] | None = None, *,
              run_dir: str | Path | None = None, concurrency: int | None = None,
              tools: Toolbox | None = None, approve: bool = False,
              approval_timeout: float = APPROVAL_TIMEOUT, run_id: str | None = None,
              prepared: Prepared | None = None) -> Runner:
    """Check the plan, create its run folder and return the runner (nothing spent yet)."""
    _check_concurrency(concurrency)
    prepared = prepared or prepare(switch, plan, inputs, tools=tools)
    run_id = run_id or new_run_id(plan.name)
    limit = concurrency or plan.concurrency or DEFAULT_CONCURRENCY
    path = Path(run_dir) if run_dir is not None else Path("runs") / run_id
    folder = RunFolder.create(path, plan, new_manifest(switch, prepared, run_id, limit))
    return Runner(switch, prepared, folder, concurrency=limit, tools=tools, approve=approve,
                  approval_timeout=approval_timeout)


def open_run(switch: Switch, run_dir: str | Path, *, concurrency: int | None = None,
             tools: Toolbox | None = None, approve: bool = False,
             approval_timeout: float = APPROVAL_TIMEOUT) -> Runner:
    """A runner that finishes a stopped or crashed run (finished streams are kept)."""
    _check_concurrency(concurrency)
    folder = RunFolder.open(Path(run_dir))
    holder = folder.holder()
    if holder is not None:
        raise PlanError(f"{folder.path}: the run is in progress in process {holder}",
                        hint="wait for it to finish, or stop it first")
    plan = folder.load_plan()
    manifest = folder.manifest
    if set(manifest["streams"]) != set(plan.streams):
        raise PlanError(f"{folder.path}: the manifest and the plan copy name different streams")
    chosen = {sid: e["auto"]["model"] for sid, e in manifest["streams"].items()
              if e.get("auto")}
    prepared = prepare(switch, plan, manifest.get("inputs") or {}, tools=tools, chosen=chosen)
    limit = concurrency or int(manifest.get("concurrency") or DEFAULT_CONCURRENCY)
    manifest["concurrency"] = limit
    return Runner(switch, prepared, folder, concurrency=limit, tools=tools, approve=approve,
                  approval_timeout=approval_timeout)


async def run_plan(switch: Switch, plan: Plan | str | os.PathLike[str],
                   inputs: Mapping[str, str] | None = None, **kw: Any) -> PlanRun:
    """Run a plan (a `Plan` or a path to one) and return the finished run.

    Keyword options: `run_dir` (default `runs/<run id>`), `concurrency` (default 8),
    `tools` (a `Toolbox`), `approve` (approve checkpoints automatically),
    `approval_timeout` (seconds), `run_id`.
    """
    if not isinstance(plan, Plan):
        plan = Plan.load(plan)
    return await start_run(switch, plan, inputs, **kw).run()


async def resume_plan(switch: Switch, run_dir: str | Path, **kw: Any) -> PlanRun:
    """Finish a stopped or crashed run without re-running its finished streams."""
    return await open_run(switch, run_dir, **kw).run()
