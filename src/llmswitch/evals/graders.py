"""Graders for ``router collect``: turn a model's answer to a prompt into a quality in [0, 1].

* `ExactGrader` — 1 if the normalised answer equals the normalised ``reference`` (or one of a list).
* `ContainsGrader` — 1 if the normalised answer contains the normalised ``reference``.
* `CommandGrader` — runs a shell command; exit status 0 means pass. The answer is on stdin and in
  the file ``$LLMSWITCH_ANSWER_FILE``; the prompt's ``test`` and ``reference`` fields are in
  ``$LLMSWITCH_TEST_FILE`` / ``$LLMSWITCH_REFERENCE_FILE``. ``{answer_file}``, ``{test_file}`` and
  ``{reference_file}`` in the command are replaced by those (shell-quoted) paths. The command runs
  model-written code, so it gets a minimal environment (``PATH``, ``LANG``, a temporary ``HOME``,
  ``TMPDIR`` and working directory, the ``LLMSWITCH_*`` file variables), never the provider keys
  or other secrets of the parent process, plus only the variables passed explicitly
  (``--grader-env NAME`` or ``NAME=VALUE``). That is not a sandbox: see docs/router-collect.md.
* `JudgeGrader` — asks a judge model (through the same `Switch`) for a score from 0 to 1.

A grade that could not be made (a timeout, a judge reply without a score) is a `Grade` with
quality 0 and an ``error``; it never raises. Input problems found before any call (a prompt
without a reference for the exact grader) raise `GraderInputError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import re
import shlex
import signal
import tempfile
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from llmswitch.errors import LLMSwitchError

if TYPE_CHECKING:
    from llmswitch.switch import Switch

GRADER_NAMES = ("exact", "contains", "command", "judge")


class GraderInputError(ValueError):
    """The grader cannot grade this input (e.g. a prompt without a reference)."""


@dataclass(frozen=True)
class PromptRow:
    """One prompt to collect outcomes for (a line of the prompts file)."""

    prompt_id: str
    prompt: str
    task: str = "default"
    reference: Any = None
    """Expected answer (a string or a list of acceptable strings) for exact/contains/judge."""
    test: str | None = None
    """Test code or data for the command grader."""
    line: int = 0
    """Line number in the prompts file (for error messages)."""
    extras: Mapping[str, Any] = field(default_factory=dict)
    """Other fields of the line, copied into the outcome table."""


@dataclass(frozen=True)
class Grade:
    """A grade: quality in [0, 1], what grading itself cost (a judge call), and any error."""

    quality: float
    error: str | None = None
    cost_usd: float = 0.0


class Grader(Protocol):
    """Grades answers; `check` validates a prompt before any model is called."""

    name: str

    def check(self, row: PromptRow) -> None:
        """Raise `GraderInputError` if ``row`` cannot be graded."""
        ...

    async def grade(self, row: PromptRow, answer: str) -> Grade:
        """Grade ``answer`` to ``row`` (never raises for a bad answer)."""
        ...


_PUNCT_EDGES = " \t\n\r.,;:!?\"'`*_()[]{}"


def normalise_answer(text: str) -> str:
    """Case-folded, NFKC, whitespace-collapsed text without surrounding punctuation/markup."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = re.sub(r"\s+", " ", text)
    return text.strip(_PUNCT_EDGES)


def _references(row: PromptRow) -> list[str]:
    ref = row.reference
    if isinstance(ref, (str, int, float)) and not isinstance(ref, bool):
        return [str(ref)]
    if isinstance(ref, list) and ref and all(isinstance(r, (str, int, float)) for r in ref):
        return [str(r) for r in ref]
    return []


def _need_reference(row: PromptRow, grader: str) -> None:
    if not _references(row):
        raise GraderInputError(
            f"line {row.line} ({row.prompt_id!r}): the {grader} grader needs a 'reference' "
            "(a string or a list of acceptable strings)"
        )


@dataclass
class ExactGrader:
    """Normalised exact match against ``reference`` (any of a list)."""

    name: str = "exact"

    def check(self, row: PromptRow) -> None:
        """Every prompt needs a reference."""
        _need_reference(row, self.name)

    async def grade(self, row: PromptRow, answer: str) -> Grade:
        """1.0 on a match, else 0.0."""
        got = normalise_answer(answer)
        return Grade(float(any(got == normalise_answer(r) for r in _references(row))))


@dataclass
class ContainsGrader:
    """The normalised answer contains the normalised ``reference`` (any of a list)."""

    name: str = "contains"

    def check(self, row: PromptRow) -> None:
        """Every prompt needs a reference."""
        _need_reference(row, self.name)

    async def grade(self, row: PromptRow, answer: str) -> Grade:
        """1.0 if any reference occurs in the answer, else 0.0."""
        got = normalise_answer(answer)
        return Grade(float(any(normalise_answer(r) in got for r in _references(row))))


DEFAULT_LANG = "C.UTF-8"


def grader_env(specs: Sequence[str], parent: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables a command grader is given explicitly: ``NAME`` copies the parent's value,
    ``NAME=VALUE`` sets one. Raise `GraderInputError` for a bad item or an unset ``NAME``."""
    parent = os.environ if parent is None else parent
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise GraderInputError(f"--grader-env {spec!r}: give NAME or NAME=VALUE")
        if not sep:
            if name not in parent:
                raise GraderInputError(f"--grader-env {name}: {name} is not set in this "
                                       "environment (give NAME=VALUE to set it)")
            value = parent[name]
        out[name] = value
    return out


def minimal_env(home: str, parent: Mapping[str, str] | None = None) -> dict[str, str]:
    """What every grader command gets: the parent's ``PATH`` and ``LANG`` (``C.UTF-8`` when
    unset), and ``HOME`` / ``TMPDIR`` in the grade's temporary folder. Nothing else."""
    parent = os.environ if parent is None else parent
    return {"PATH": parent.get("PATH") or os.defpath,
            "LANG": parent.get("LANG") or DEFAULT_LANG, "HOME": home, "TMPDIR": home}


@dataclass
class CommandGrader:
    """A shell command judges the answer: exit status 0 is a pass (quality 1), else 0.

    It runs in a fresh temporary folder with `minimal_env` plus ``env`` (the variables the
    user passed explicitly): no provider keys or other secrets of this process.
    """

    command: str
    timeout: float = 30.0
    name: str = "command"
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    """Variables passed explicitly (``--grader-env``); they may hold secrets."""

    def check(self, row: PromptRow) -> None:
        """Any prompt can be graded by a command."""

    async def grade(self, row: PromptRow, answer: str) -> Grade:
        """Run the command with the answer on stdin and in a temporary file."""
        with tempfile.TemporaryDirectory(prefix="llmswitch-grade-") as tmp:
            home = Path(tmp, "home")
            home.mkdir()
            files = {
                "answer_file": _write(Path(tmp, "answer.txt"), answer),
                "test_file": _write(Path(tmp, "test.txt"), row.test or ""),
                "reference_file": _write(Path(tmp, "reference.txt"), "\n".join(_references(row))),
            }
            command = self.command
            for key, path in files.items():
                command = command.replace("{" + key + "}", shlex.quote(path))
            env = {**minimal_env(str(home)), **self.env,
                   "LLMSWITCH_PROMPT_ID": row.prompt_id, "LLMSWITCH_TASK": row.task}
            env.update({f"LLMSWITCH_{k.upper()}": v for k, v in files.items()})
            return await self._run(command, answer, env, tmp)

    async def _run(self, command: str, answer: str, env: dict[str, str], cwd: str) -> Grade:
        proc = await asyncio.create_subprocess_shell(
            command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env=env, cwd=cwd, start_new_session=True,
        )
        try:
            _, err = await asyncio.wait_for(proc.communicate(answer.encode()), self.timeout)
        except TimeoutError:
            _kill(proc)
            await proc.wait()
            return Grade(0.0, f"grader command timed out after {self.timeout:g} s")
        except BaseException:
            _kill(proc)
            raise
        if proc.returncode in (126, 127):  # the shell could not run the command at all
            tail = err.decode(errors="replace").strip().splitlines()[-1:] or [""]
            return Grade(0.0, f"grader command could not run (exit {proc.returncode}): {tail[0]}")
        return Grade(1.0 if proc.returncode == 0 else 0.0)


def _write(path: Path, text: str) -> str:
    path.write_text(text, encoding="utf-8")
    return str(path)


def _kill(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)


JUDGE_PROMPT = """You are grading an answer to a question.

Question:
{prompt}
{reference_block}
Answer to grade:
{answer}

How good is the answer (correct, complete, following the question)? Reply with only a score
from 0 (wrong or useless) to 1 (fully correct), for example: 0.8"""


@dataclass
class JudgeGrader:
    """Asks ``model`` (through ``switch``, so the call is priced and in the ledger) for a score."""

    switch: Switch
    model: str
    settings: Mapping[str, Any] = field(
        default_factory=lambda: {"temperature": 0.0, "max_tokens": 64}
    )
    template: str = JUDGE_PROMPT
    name: str = "judge"

    def check(self, row: PromptRow) -> None:
        """Any prompt can be judged (a reference, if present, is shown to the judge)."""

    async def grade(self, row: PromptRow, answer: str) -> Grade:
        """The judge's score; a failed call or an unreadable reply is an error grade."""
        refs = _references(row)
        block = "\nReference answer:\n" + "\n".join(refs) + "\n" if refs else ""
        text = self.template.format(prompt=row.prompt, reference_block=block, answer=answer)
        try:
            reply = await self.switch.complete(
                self.model, text, metadata={"llmswitch.collect": "judge"}, **self.settings
            )
        except LLMSwitchError as exc:
            return Grade(0.0, f"judge {self.model} failed: {exc}", exc.cost_usd or 0.0)
        cost = reply.cost_usd or 0.0
        try:
            return Grade(parse_score(reply.text), None, cost)
        except ValueError as exc:
            return Grade(0.0, f"judge {self.model}: {exc}", cost)


_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)"
_KEYED = re.compile(rf"(?:score|rating|grade)\W{{0,4}}({_NUMBER})\s*(%|/\s*{_NUMBER})?", re.I)
_ANY = re.compile(rf"({_NUMBER})\s*(%|/\s*{_NUMBER})?")
_LEADING = re.compile(rf"^[\W_]*?({_NUMBER})\s*(%|/\s*{_NUMBER})?(?![\w.])")


def parse_score(text: str) -> float:
    """A 0–1 score from a judge reply: ``0.8``, ``Score: 0.8``, ``{"score": 0.8}``, ``8/10``,
    ``80%``, ``0.8 — the answer is right``. Raise `ValueError` (quoting the reply's start) if
    there is no score, several different ones, or one outside 0–1."""
    shown = text.strip().replace("\n", " ")[:80]
    found = _from_json(text)
    if found is None:
        leading = _LEADING.match(text.strip())
        numbers = _KEYED.findall(text) or ([leading.groups()] if leading else _ANY.findall(text))
        if not numbers:
            raise ValueError(f"no score in the reply {shown!r}")
        values = {_scale(n, suffix) for n, suffix in numbers}
        if len(values) > 1:
            raise ValueError(f"ambiguous score in the reply {shown!r}")
        found = values.pop()
    if not math.isfinite(found) or not 0.0 <= found <= 1.0:
        raise ValueError(f"score {found:g} is outside 0–1 in the reply {shown!r}")
    return found


def _from_json(text: str) -> float | None:
    match = re.search(r"\{.*\}", text, re.S)
    if not match:
        return None
    try:
        data = json.loads(match.group(0))
    except json.JSONDecodeError:
        return None
    if isinstance(data, dict):
        for key in ("score", "rating", "grade", "quality"):
            value = data.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
    return None


def _scale(number: str, suffix: str | None) -> float:
    value = float(number)
    suffix = (suffix or "").replace(" ", "")
    if suffix == "%":
        return value / 100.0
    if suffix.startswith("/"):
        denominator = float(suffix[1:])
        return value / denominator if denominator else math.nan
    return value


def make_grader(
    kind: str,
    *,
    command: str | None = None,
    judge: str | None = None,
    switch: Switch | None = None,
    timeout: float = 30.0,
    env: Sequence[str] = (),
) -> Grader:
    """A grader by name; ``command:CMD`` and ``judge:MODEL`` are accepted shorthands.
    ``env``: ``NAME`` / ``NAME=VALUE`` items passed to a command grader (see `grader_env`).

    Raise `GraderInputError` for an unknown name, a missing command/judge model, or ``env``
    given to a grader that runs no command.
    """
    if kind.startswith("command:"):
        kind, command = "command", kind.split(":", 1)[1]
    elif kind.startswith("judge:"):
        kind, judge = "judge", kind.split(":", 1)[1]
    if env and kind != "command":
        raise GraderInputError("--grader-env is for the command grader")
    if kind == "exact":
        return ExactGrader()
    if kind == "contains":
        return ContainsGrader()
    if kind == "command":
        if not command or not command.strip():
            raise GraderInputError("the command grader needs --command 'CMD' (exit 0 = pass)")
        if timeout <= 0:
            raise GraderInputError("--timeout must be positive")
        return CommandGrader(command, timeout, env=grader_env(env))
    if kind == "judge":
        if not judge:
            raise GraderInputError("the judge grader needs --judge MODEL")
        if switch is None:
            raise GraderInputError("the judge grader needs a Switch to call the judge through")
        return JudgeGrader(switch, judge)
    raise GraderInputError(f"unknown grader {kind!r}; use one of {', '.join(GRADER_NAMES)}")


def grader_models(grader: Grader) -> Sequence[str]:
    """Models a grader will call (resolved before collection starts)."""
    return [grader.model] if isinstance(grader, JudgeGrader) else []
