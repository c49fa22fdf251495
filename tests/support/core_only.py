"""Pytest plugin for the lowest-versions CI job, where only the core dependencies are installed.

`pytest -p tests.support.core_only` turns a failure to import a package that is not installed
(at collection or inside a test) into a skip naming its extra: in this run only the core
dependencies are installed. It also skips tests marked `@pytest.mark.extra("name")` (they check
an extra's results without importing it) when that extra is missing. Every other failure still
fails. Without this plugin the marker does nothing.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Generator
from typing import Any

import pytest

# Top-level module -> the extra that installs it (see pyproject.toml).
EXTRA_MODULES = {
    "numpy": "router", "scipy": "router", "sklearn": "router", "pyarrow": "router",
    "botocore": "bedrock", "tiktoken": "tokens", "quicktok_v1": "tokens", "xllamacpp": "local",
    "matplotlib": "plot", "opentelemetry": "otel", "psycopg": "postgres", "redis": "gateway",
}
# Tests that reach an extra only inside a subprocess or a server, where no import error gets to
# the test: (node-id fragments that must all match, extra).
NEEDS_EXTRA: list[tuple[tuple[str, ...], str]] = [
    (("bedrock",), "bedrock"),  # Bedrock calls are signed (SigV4) by botocore
    (("tests/test_readme.py::",), "local"),  # the README's commands: the full install, local model
]
_MISSING = re.compile(r"No module named '([\w.]+)'")
_INSTALL_HINT = re.compile(r"llmswitch\[(\w+)\]")


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def missing_extra(text: str) -> str | None:
    """The extra that `text` (an error report) says is missing and really is, or `None`."""
    for name in _MISSING.findall(text):
        root = name.split(".")[0]
        if root == "llmswitch" or _installed(root):
            continue  # our own module, or a real import error inside an installed package
        if root in EXTRA_MODULES:
            return f"needs the {EXTRA_MODULES[root]!r} extra ({name})"
        return f"needs {name}, which no core dependency installs (an extra or the dev tools)"
    for extra in _INSTALL_HINT.findall(text):
        modules = [m for m, e in EXTRA_MODULES.items() if e == extra]
        if modules and not all(_installed(m) for m in modules):
            return f"needs the {extra!r} extra"
    return None


def _chain(error: BaseException | None) -> list[BaseException]:
    """The error and the errors it was raised from (a CLI test re-raises the command's)."""
    out: list[BaseException] = []
    while error is not None and len(out) < 20:
        out.append(error)
        error = error.__cause__ or error.__context__
    return out


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Skip a test marked `extra(name)` or listed in `NEEDS_EXTRA` when that extra is missing."""
    extras = [mark.args[0] for mark in item.iter_markers("extra")]
    extras += [extra for parts, extra in NEEDS_EXTRA if all(p in item.nodeid for p in parts)]
    for extra in extras:
        modules = [m for m, e in EXTRA_MODULES.items() if e == extra]
        if modules and not all(_installed(m) for m in modules):
            pytest.skip(f"needs the {extra!r} extra")


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, Any]:
    """A test module that cannot import an extra's package is skipped, not an error."""
    report = yield
    if report.failed:
        reason = missing_extra(str(report.longrepr))
        if reason is not None:
            report.outcome = "skipped"
            report.longrepr = (str(collector.path), 0, f"Skipped: {reason}")
    return report


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[
        None, Any, Any]:
    """A test that fails only because an extra's package is missing is skipped."""
    report = yield
    if report.failed and call.excinfo is not None:
        reason = missing_extra(" | ".join(str(e) for e in _chain(call.excinfo.value)))
        if reason is not None:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), 0, f"Skipped: {reason}")
    return report
