"""End to end on the embedded local model (SmolLM2-135M): structure, not facts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llmswitch import Switch


def _model_missing() -> str | None:
    try:
        from llmswitch.local.paths import default_smollm2_path

        default_smollm2_path()
    except Exception as exc:
        return str(exc)
    return None


MISSING = _model_missing()
pytestmark = [pytest.mark.local_model,
              pytest.mark.skipif(MISSING is not None, reason=f"local model: {MISSING}")]

CONFIG: dict[str, Any] = {
    "models": {
        "tiny": {"model": "local/smollm2-135m", "settings": {"max_tokens": 8, "temperature": 0}},
        "tiny-warm": {"model": "local/smollm2-135m",
                      "settings": {"max_tokens": 8, "temperature": 0.7, "seed": 7}},
    },
    "routes": {
        "route": {"strategy": "route", "rules": [
            {"when": {"keywords": ["poem"]}, "target": "tiny-warm"}], "default": "tiny"},
        "cascade": {"strategy": "cascade", "targets": ["tiny", "tiny-warm"],
                    "checks": [{"kind": "heuristics", "min_chars": 500}]},
        "ensemble": {"strategy": "ensemble", "targets": ["tiny", "tiny-warm"], "quorum": 2},
        "chain": {"strategy": "chain", "steps": [
            {"name": "topic", "target": "tiny", "prompt": "One word for: {input}"},
            {"name": "line", "target": "tiny", "prompt": "One sentence about {topic}"}]},
        "structured": {"strategy": "structured", "targets": ["tiny"], "retries": 1,
                       "schema": {"type": "object", "properties": {
                           "colour": {"type": "string", "enum": ["red", "green", "blue"]}},
                           "required": ["colour"], "additionalProperties": False}},
    },
}


@pytest.fixture
async def switch() -> AsyncIterator[Switch]:
    s = Switch(CONFIG)
    yield s
    await s.aclose()


@pytest.mark.parametrize("route", ["route", "cascade", "ensemble", "chain"])
async def test_pattern_answers_locally(switch: Switch, route: str) -> None:
    out = await switch.complete(route, "Name a colour.", max_tokens=8)
    assert out.provider == "local" and out.text.strip()
    assert out.trace is not None and out.trace.kind == "strategy"
    assert out.trace.attributes["llmswitch.chosen"]
    assert out.usage.output_tokens <= 8 * len(out.trace.attempts())
    if route == "cascade":  # min_chars 500 cannot pass with 8 tokens: both stages ran
        assert len(out.trace.attempts()) == 2 and out.model == "smollm2-135m"


async def test_structured_output_is_valid(switch: Switch) -> None:
    out = await switch.complete("structured", "Pick a colour.", max_tokens=24)
    assert json.loads(out.text)["colour"] in ("red", "green", "blue")
    assert out.trace is not None and out.trace.attributes["llmswitch.structured.mode"] == "native"
