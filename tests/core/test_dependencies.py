"""Ranges in pyproject.toml, the exact tested set in constraints.txt, and one test command."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]


def _requirements() -> list[Requirement]:
    reqs = [Requirement(r) for r in PROJECT["dependencies"]]
    for specs in PROJECT["optional-dependencies"].values():
        reqs += [Requirement(s) for s in specs if not s.startswith("llmswitch[")]
    return reqs


def _pins() -> dict[str, str]:
    pins = {}
    for raw in (ROOT / "constraints.txt").read_text("utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_every_dependency_is_a_range_with_a_lower_bound() -> None:
    for req in _requirements():
        ops = {spec.operator for spec in req.specifier}
        assert "==" not in ops and "===" not in ops, f"{req}: pin it in constraints.txt instead"
        assert ">=" in ops, f"{req}: needs a lower bound (the oldest version CI tests)"


def test_constraints_pin_every_dependency_inside_its_range() -> None:
    pins = _pins()
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} is not pinned in constraints.txt"
        assert req.specifier.contains(pins[name], prereleases=True), (req, pins[name])


def test_constraints_name_no_host() -> None:
    """Only `name==version` lines: no pip options (which could name a package source), no URL,
    no host; installs use the machine's own client settings."""
    text = (ROOT / "constraints.txt").read_text("utf-8")
    lines = [line.strip() for line in text.splitlines()]
    assert not [line for line in lines if line.startswith("-")], "pip options in constraints.txt"
    assert not re.search(r"://|\.org\b|\.com\b", text)


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text("utf-8")
    block = readme.split("**Test it**", 1)[1].split("```bash\n", 1)[1].split("\n```", 1)[0]
    return block.strip()


def test_readme_and_ci_run_the_same_test_command_with_the_constraints() -> None:
    command = _readme_test_command()
    assert "-c constraints.txt" in command and command.endswith("pytest -q")
    ci = (ROOT / ".ci" / "run").read_text("utf-8").splitlines()
    assert command in ci


def test_lowest_pins_are_the_lower_bounds() -> None:
    done = subprocess.run([sys.executable, str(ROOT / ".ci" / "lowest.py")], capture_output=True,
                          text=True, check=True, timeout=60)
    pins = dict(line.split("==") for line in done.stdout.split())
    for spec in PROJECT["dependencies"]:
        req = Requirement(spec)
        lower = next(s.version for s in req.specifier if s.operator == ">=")
        assert pins[req.name] == lower
    assert "pytest" in pins


@pytest.mark.parametrize("spec", ["httpx", "httpx<1", "httpx==0.28.1"])
def test_lowest_refuses_a_core_dependency_without_a_lower_bound(tmp_path: Path,
                                                                spec: str) -> None:
    (tmp_path / ".ci").mkdir()
    (tmp_path / ".ci" / "lowest.py").write_text((ROOT / ".ci" / "lowest.py").read_text())
    (tmp_path / "constraints.txt").write_text("pytest==9.2.0\n")
    (tmp_path / "pyproject.toml").write_text(f'[project]\ndependencies = ["{spec}"]\n')
    done = subprocess.run([sys.executable, str(tmp_path / ".ci" / "lowest.py")],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0 and "no lower bound" in done.stderr
