"""The run folder: outputs, traces, approvals and the `run.json` manifest.

Layout of `RUN_DIR` (the folder given with `--out`, default `runs/<run id>`):

    run.json              the manifest (rewritten atomically on every change)
    plan.yaml             an exact copy of the plan that ran (resume reads it)
    outputs/<id>.txt      each stream's output (`.json` for JSON streams, or its `file`)
    traces/<id>.json      each stream's trace: every call, fallback and agent step
    approvals/<id>.json   written by `llmswitch plan approve`
    .lock                 the pid of the process running the plan

Every file is written to a temporary name, flushed to disk and renamed, so a crash leaves
either the old or the new version. A stream's output and trace are written before its
manifest entry says `done`: the manifest is the commit point, and resume trusts only it.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from llmswitch.plans.errors import PlanError
from llmswitch.plans.model import Plan

MANIFEST = "run.json"
PLAN_COPY = "plan.yaml"
VERSION = 1
FINISHED = "done"


def new_run_id(plan_name: str) -> str:
    """`<plan>-<YYYYmmdd-HHMMSS>-<4 hex>`: sortable, readable and unique."""
    safe = "".join(ch if ch.isalnum() or ch in "-_" else "-" for ch in plan_name)[:40] or "plan"
    return f"{safe}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def atomic_write(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file, fsync and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


class RunFolder:
    """One run's folder and its manifest (a plain dict, saved with `save`)."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest

    # -- creating and opening -----------------------------------------------------------
    @classmethod
    def create(cls, path: Path, plan: Plan, manifest: dict[str, Any]) -> RunFolder:
        """A new, empty run folder (checked writable before anything is spent)."""
        path = path.expanduser()
        if (path / MANIFEST).exists():
            raise PlanError(f"--out {path}: already holds a run",
                            hint=f"continue it with `llmswitch plan resume {path}`, or choose "
                            "another folder")
        if path.exists() and not path.is_dir():
            raise PlanError(f"--out {path}: exists and is not a folder")
        if path.is_dir() and any(path.iterdir()):
            raise PlanError(f"--out {path}: the folder is not empty",
                            hint="give a new or empty folder (it becomes the run folder)")
        try:
            path.mkdir(parents=True, exist_ok=True)
            probe = path / f".probe.{os.getpid()}"
            probe.write_text("ok", encoding="utf-8")
            probe.unlink()
        except OSError as exc:
            raise PlanError(f"--out {path}: cannot write there ({exc.strerror or exc})",
                            hint="choose a folder you can write to") from None
        folder = cls(path.resolve(), manifest)
        folder.manifest["run_dir"] = str(folder.path)
        atomic_write(folder.path / PLAN_COPY,
                     yaml.safe_dump(dict(plan.data), sort_keys=False, allow_unicode=True))
        folder.save()
        return folder

    @classmethod
    def open(cls, path: Path) -> RunFolder:
        """An existing run folder (for resume, approve and report)."""
        path = path.expanduser()
        file = path / MANIFEST
        try:
            manifest = json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PlanError(f"{path}: not a run folder (no {MANIFEST})",
                            hint="give the folder `plan run` wrote (its --out)") from None
        except (OSError, ValueError) as exc:
            raise PlanError(f"{file}: cannot read the manifest: {exc}") from None
        if not isinstance(manifest, dict) or "streams" not in manifest:
            raise PlanError(f"{file}: not a plan run manifest")
        folder = cls(path.resolve(), manifest)
        folder.manifest["run_dir"] = str(folder.path)
        return folder

    def load_plan(self) -> Plan:
        """The plan copy saved with the run."""
        file = self.path / PLAN_COPY
        try:
            data = yaml.safe_load(file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            raise PlanError(f"{file}: cannot read the run's plan copy: {exc}") from None
        info = self.manifest.get("plan") or {}
        base = Path(info["base"]) if info.get("base") else self.path
        return Plan.from_dict(data, source=str(info.get("source") or file), base=base,
                              default_name=str(info.get("name") or "plan"))

    # -- writing --------------------------------------------------------------------------
    def save(self) -> None:
        """Write the manifest atomically."""
        atomic_write(self.path / MANIFEST, json.dumps(self.manifest, indent=2,
                                                      ensure_ascii=False, default=str) + "\n")

    def write(self, relative: str, text: str) -> Path:
        """Write a file inside the run folder atomically; returns its absolute path."""
        target = (self.path / relative).resolve()
        if self.path not in target.parents:
            raise PlanError(f"{relative}: outside the run folder")
        atomic_write(target, text)
        return target

    def output_path(self, relative: str) -> Path:
        """Where a relative output path lives."""
        return self.path / relative

    # -- approvals ------------------------------------------------------------------------
    def approval(self, stream: str) -> dict[str, Any] | None:
        """The approval record of a stream (`{"approved": bool, "note", "at"}`), if any."""
        file = self.path / "approvals" / f"{stream}.json"
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def record_approval(self, stream: str, approved: bool, note: str = "") -> None:
        """Write an approval (or a rejection) for a stream."""
        self.write(f"approvals/{stream}.json", json.dumps(
            {"approved": approved, "note": note, "at": time.time()}) + "\n")

    def clear_approval(self, stream: str) -> None:
        """Forget an approval (a rejected stream runs again and needs a new one)."""
        with contextlib.suppress(FileNotFoundError):
            (self.path / "approvals" / f"{stream}.json").unlink()

    # -- the lock -------------------------------------------------------------------------
    def lock(self) -> None:
        """Claim the folder for this process; another live process holding it is an error."""
        file = self.path / ".lock"
        with contextlib.suppress(FileNotFoundError, ValueError):
            pid = int(file.read_text(encoding="utf-8").strip() or 0)
            if pid and pid != os.getpid() and _alive(pid):
                raise PlanError(f"{self.path}: the run is in progress in process {pid}",
                                hint="wait for it, or stop it first")
        atomic_write(file, f"{os.getpid()}\n")

    def unlock(self) -> None:
        """Release the folder."""
        with contextlib.suppress(FileNotFoundError):
            (self.path / ".lock").unlink()

    def holder(self) -> int | None:
        """The pid of a live process running this folder, if any."""
        try:
            pid = int((self.path / ".lock").read_text(encoding="utf-8").strip() or 0)
        except (FileNotFoundError, ValueError):
            return None
        return pid if pid and _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stream_entry(requested: str, depends_on: list[str], fallback: list[str],
                 extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A stream's manifest entry before it runs."""
    return {
        "status": "pending", "model": None, "provider": None, "requested_model": requested,
        "fallback": fallback, "moved_from": None, "depends_on": depends_on,
        "input_tokens": 0, "output_tokens": 0, "cost_usd": None, "latency_ms": None,
        "attempts": 0, "calls": [], "output_file": None, "trace_file": None, "trace_id": None,
        "trace_ids": [], "started_at": None, "finished_at": None, "error": None,
        **dict(extra or {}),
    }
