"""README.md cannot drift: every code block it shows is run or checked here, or says why not.

Each fenced block is handled by its language:

- `python`: run as written in a fresh interpreter, offline (the embedded local model answers).
- `bash`: each command is run (`llmswitch ...`, with this interpreter) or, for installs and the
  test/lint commands, checked against what CI runs (`.ci/run`) and what is installed.
- `yaml`: loaded as an llmswitch config, so every key and route in it is valid.
- `json`: parses as JSON.
- no language: a command synopsis; every `--option` shown must be in that command's `--help`.

A block that cannot run that way carries a marker, an HTML comment on the line before it:
`<!-- needs: key -->` (run here against a local server speaking the provider's protocol) or
`<!-- not-run: the reason -->`. A new block with neither a runnable form nor a marker fails
`test_every_block_is_run_or_marked`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
import yaml

from tests.support.mock_upstream import MockUpstream

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(
    r"(?:<!--\s*(?P<marker>[\w-]+):\s*(?P<note>.*?)\s*-->[ \t]*\n)?"
    r"^```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^```[ \t]*$",
    re.S | re.M,
)
RUNNABLE = {"python", "bash", "yaml", "json", ""}
MARKERS = {"needs", "not-run"}
CHECKED_BY_CI = (".venv/bin/pytest", ".venv/bin/ruff", ".venv/bin/mypy")
RUN_TIMEOUT = 600  # a bound for a hung command, not a speed target


@dataclass(frozen=True)
class Block:
    """One fenced code block of the README."""

    line: int
    lang: str
    body: str
    marker: str | None
    note: str

    @property
    def id(self) -> str:
        """`README.md:LINE (lang)` for test ids and messages."""
        return f"README.md:{self.line} ({self.lang or 'text'})"


def blocks(text: str | None = None) -> list[Block]:
    """The README's fenced blocks with their markers."""
    text = README.read_text() if text is None else text
    found = []
    for m in FENCE.finditer(text):
        line = text.count("\n", 0, m.start("lang")) + 1
        found.append(Block(line, m["lang"], m["body"], m["marker"], m["note"] or ""))
    return found


def _of(lang: str, *, marker: str | None = None) -> list[Block]:
    return [b for b in blocks() if b.lang == lang and b.marker == marker]


def _ids(items: list[Block]) -> list[str]:
    return [b.id for b in items]


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k != "LLMSWITCH_CONFIG" and not k.endswith("_API_KEY")}
    env["LLMSWITCH_HOME"] = str(tmp / "home")  # the ledger of runs without a config file
    return env


def _workdir(tmp: Path) -> Path:
    """A fresh folder with the repository's examples, as in a clone (ledgers land here)."""
    work = tmp / "work"
    shutil.copytree(ROOT / "examples", work / "examples")
    return work


def _commands(body: str) -> list[list[str]]:
    """The commands of a shell block: lines joined at `\\`, comments dropped, split at `&&`."""
    commands = []
    for line in body.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        while words:
            end = words.index("&&") if "&&" in words else len(words)
            commands.append(words[:end])
            words = words[end + 1:]
    return commands


def _llmswitch(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmswitch.cli.main", *argv], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)


# -- every block is accounted for ---------------------------------------------------------------


def test_every_block_is_run_or_marked() -> None:
    found = blocks()
    assert len(found) >= 5, "README.md lost its code blocks (or the pattern stopped matching)"
    for block in found:
        if block.marker is not None:
            assert block.marker in MARKERS, f"{block.id}: unknown marker {block.marker!r}"
            assert block.note.strip(), f"{block.id}: a {block.marker} marker needs a reason"
            continue
        assert block.lang in RUNNABLE, (
            f"{block.id}: a ```{block.lang} block is not run by tests/test_readme.py; "
            "make it runnable or mark it <!-- not-run: why --> or <!-- needs: key -->")
        if block.lang == "":
            assert any(line.startswith("llmswitch ") for line in block.body.splitlines()), (
                f"{block.id}: a plain block is checked as an `llmswitch ...` synopsis and this "
                "one has none; give it a language or a marker")


def test_the_block_finder_sees_markers() -> None:
    text = ("a\n<!-- not-run: needs a file -->\n```bash\nls\n```\n\n```json\n{}\n```\n"
            "<!-- needs: key -->\n```python\nprint(1)\n```\n")
    found = blocks(text)
    assert [(b.lang, b.marker, b.line) for b in found] == [
        ("bash", "not-run", 3), ("json", None, 7), ("python", "needs", 11)]
    assert found[0].note == "needs a file"


# -- python ---------------------------------------------------------------------------------------


@pytest.mark.local_model
@pytest.mark.parametrize("block", _of("python"), ids=_ids(_of("python")))
def test_python_block_runs_offline(block: Block, tmp_path: Path) -> None:
    script = tmp_path / "example.py"
    script.write_text(block.body)
    work = tmp_path / "empty"
    work.mkdir()
    done = subprocess.run([sys.executable, str(script)], cwd=work, env=_env(tmp_path),
                          capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False)
    assert done.returncode == 0, f"{block.id} failed:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("block", _of("python", marker="needs"),
                         ids=_ids(_of("python", marker="needs")))
async def test_python_block_needing_a_key_runs_against_a_local_server(
    block: Block, tmp_path: Path
) -> None:
    assert block.note == "key", f"{block.id}: only `needs: key` blocks can be run here"
    script = tmp_path / "example.py"
    script.write_text(block.body)
    work = tmp_path / "empty"
    work.mkdir()
    env = _env(tmp_path)
    async with MockUpstream() as upstream:
        for provider in ("OPENAI", "ANTHROPIC", "GEMINI", "DEEPSEEK", "OPENROUTER"):
            env[f"{provider}_API_KEY"] = "test-key"
        env["LLMSWITCH_OPENAI_BASE_URL"] = upstream.base_url
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(script), cwd=work, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), RUN_TIMEOUT)
        assert proc.returncode == 0, f"{block.id} failed:\n{out.decode()}\n{err.decode()}"
        assert upstream.seen, f"{block.id} never called the provider"


# -- bash -----------------------------------------------------------------------------------------


def _check_install(argv: list[str], where: str) -> None:
    """An install step: the extras exist, pinned packages are installed at that version."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for i, word in enumerate(argv):
        if argv[i - 1] in ("-c", "--constraint"):
            assert (ROOT / word).is_file(), f"{where}: constraints file {word} is missing"
        elif m := re.fullmatch(r"\.\[([\w,-]+)\]", word):
            for extra in m[1].split(","):
                assert extra in extras, f"{where}: no extra [{extra}] in pyproject.toml"
        elif m := re.fullmatch(r"([\w.-]+)==([\w.]+)", word):
            assert metadata.version(m[1]) == m[2], f"{where}: {word} is not what is installed"


def _shell_commands() -> list[tuple[Block, list[str]]]:
    return [(b, argv) for b in _of("bash") for argv in _commands(b.body)]


def test_install_and_check_commands_are_what_ci_runs() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    for block, argv in _shell_commands():
        where = f"{block.id}: {shlex.join(argv)}"
        if argv[:3] == ["python3", "-m", "venv"]:
            continue
        if argv[0].endswith("/pip") or argv[0] == "pip":
            _check_install(argv, where)
        elif argv[0].startswith(CHECKED_BY_CI):
            assert shlex.join(argv) in ci or " ".join(argv) in ci, f"{where}: not in .ci/run"
        else:
            assert Path(argv[0]).name == "llmswitch", (
                f"{where}: tests/test_readme.py does not know how to run this; "
                "teach it or mark the block <!-- not-run: why -->")
    test_command = next(b.body.strip() for b in _of("bash") if ".venv/bin/pytest -q" in b.body
                        and "pip install" in b.body)
    assert test_command in ci, "the README's test command is not the one .ci/run runs"


LLMSWITCH_BLOCKS = [b for b in _of("bash")
                    if any(Path(argv[0]).name == "llmswitch" for argv in _commands(b.body))]


@pytest.mark.local_model
@pytest.mark.parametrize("block", LLMSWITCH_BLOCKS, ids=_ids(LLMSWITCH_BLOCKS))
def test_llmswitch_commands_run(block: Block, tmp_path: Path) -> None:
    """A block's `llmswitch` commands, in order, in one fresh folder (later ones may read what
    earlier ones wrote); installs and checks are covered by the test above."""
    work, env = _workdir(tmp_path), _env(tmp_path)
    for argv in _commands(block.body):
        if Path(argv[0]).name != "llmswitch":
            continue
        done = _llmswitch(argv[1:], work, env)
        shown = f"{block.id}: {shlex.join(argv)}\n{done.stdout}\n{done.stderr}"
        assert done.returncode == 0, shown
        assert done.stdout.strip(), f"{shown}: printed nothing"


def test_run_it_uses_the_venv_llmswitch() -> None:
    run_it = next(b for b in _of("bash") if "pip install" in b.body and "chat" in b.body)
    chat = [argv for argv in _commands(run_it.body) if "chat" in argv]
    assert chat and chat[0][0] == ".venv/bin/llmswitch", "Run it must work without activating"
    assert "activate" in README.read_text(), "the README must say to activate the venv"


# -- the ledger that chat writes is the one report reads ----------------------------------------


@pytest.mark.local_model
@pytest.mark.parametrize("with_config", [False, True], ids=["no-config", "llmswitch.yaml"])
def test_report_finds_what_chat_just_wrote(tmp_path: Path, with_config: bool) -> None:
    work = _workdir(tmp_path)
    env = _env(tmp_path)
    if with_config:
        (work / "llmswitch.yaml").write_text("default_model: local/smollm2-135m\n")
    chat = _llmswitch(["chat", "local/smollm2-135m", "Say hi.", "--max-tokens", "3"], work, env)
    assert chat.returncode == 0, chat.stderr
    report = _llmswitch(["report", "--json"], work, env)
    assert report.returncode == 0, report.stderr
    assert "local/smollm2-135m" in report.stdout and '"calls": 1' in report.stdout.replace(
        '"calls":1', '"calls": 1'), report.stdout
    ledger = (work / ".llmswitch" / "ledger.sqlite") if with_config else (
        tmp_path / "home" / "ledger.sqlite")
    assert ledger.is_file(), f"the ledger is not where the README says: {ledger}"


# -- yaml and synopses ----------------------------------------------------------------------------


@pytest.mark.parametrize("block", _of("yaml"), ids=_ids(_of("yaml")))
def test_yaml_block_is_a_valid_config(block: Block) -> None:
    from llmswitch import Switch
    from llmswitch.config.loader import config_from_dict

    config = config_from_dict(yaml.safe_load(block.body), source=block.id, env={})
    with Switch(config, observers=[], env={}) as switch:  # builds every route: no I/O
        for name in (*config.routes, *config.models):
            switch.model(name)  # every route and alias resolves


def _synopses() -> list[tuple[Block, str]]:
    found = []
    for block in _of(""):
        current: list[str] = []
        for line in block.body.splitlines():
            if line.startswith("llmswitch "):
                if current:
                    found.append((block, " ".join(current)))
                current = [line]
            elif line.startswith(" ") and current:
                current.append(line.strip())
        if current:
            found.append((block, " ".join(current)))
    return found


@pytest.mark.parametrize(("block", "synopsis"), _synopses(),
                         ids=[f"{b.id}:{s.split()[1]}" for b, s in _synopses()])
def test_synopsis_options_exist(block: Block, synopsis: str, tmp_path: Path) -> None:
    words = synopsis.split()[1:]
    command = [w for w in words[:2] if re.fullmatch(r"[a-z][a-z-]*", w)]
    done = _llmswitch([*command, "--help"], tmp_path, _env(tmp_path))
    assert done.returncode == 0, f"{block.id}: `llmswitch {' '.join(command)}` is not a command"
    for option in sorted(set(re.findall(r"(?<![\w-])--[a-z][\w-]*", synopsis))):
        assert option in done.stdout, f"{block.id}: {option} is not an option of {command}"


def test_json_blocks_parse_or_are_marked() -> None:
    for block in _of("json"):
        json.loads(block.body)
