"""Odd but legal plans, found by trying the contract as a demanding user would: unicode
names, bad arguments through the Python API, prompts no model can hold, resumed totals and
the report's exact saving share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from llmswitch import Switch
from llmswitch.plans import Plan, PlanError, run_plan
from llmswitch.plans.templates import Output, parse, render
from llmswitch.testing import FakeModel

NO_LEDGER = {"observe": {"ledger": False}}


def make_plan(streams: dict[str, Any], **top: Any) -> Plan:
    return Plan.from_dict({"streams": streams, **top}, "edges.yaml")


def test_unicode_names_of_streams_inputs_and_json_fields() -> None:
    tpl = parse("{{ inputs.thème }} {{ streams.données.output }} {{ streams.数据.json.名前 }}",
                "t")
    outputs = {"données": Output("D"), "数据": Output("{}", {"名前": "ünï"})}
    assert render(tpl, {"thème": "café"}, outputs) == "café D ünï"
    plan = make_plan({"données": {"model": "m", "prompt": "x {{ inputs.thème }}"},
                      "数据-2": {"model": "m", "prompt": "{{ streams.données.output }}"}},
                     inputs={"thème": {"default": "café"}})
    assert plan.streams["数据-2"].depends_on == ("données",)
    # Still no way out of the sandbox: ids are words, never paths or expressions.
    for bad in ("a/b", "a.b", "1a", "a b"):
        with pytest.raises(PlanError, match="stream ids"):
            make_plan({bad: {"model": "m", "prompt": "x"}})


async def test_unicode_stream_ids_run_and_write_their_outputs(tmp_path: Path) -> None:
    model = FakeModel("m", ["première", "zweite"])
    plan = make_plan({"données": {"model": "m", "prompt": "x {{ inputs.thème }}"},
                      "数据": {"model": "m", "prompt": "y {{ streams.données.output }}"}},
                     inputs={"thème": {"default": "café"}})
    async with Switch(NO_LEDGER, models={"m": model}) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run")
    assert run.status == "done"
    assert [r.messages[-1].text for r in model.calls] == ["x café", "y première"]
    assert (tmp_path / "run" / "outputs" / "数据.txt").read_text(encoding="utf-8") == "zweite"
