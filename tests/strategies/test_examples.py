"""Every example config loads and every route in it builds (no model calls)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmswitch import Switch

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_builds(path: Path) -> None:
    switch = Switch(path)
    assert switch.config.routes
    for name in switch.config.routes:
        model = switch.model(name)
        assert model.name == name


def test_examples_cover_every_pattern() -> None:
    assert {p.stem for p in EXAMPLES} >= {"route", "cascade", "ensemble", "chain", "structured",
                                          "privacy"}
