"""Running plans on fake models: parallelism, order, limits, failures, fallbacks, budgets,
deadlines, JSON outputs, agent tools, checkpoints and resume."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from llmswitch import Completion, OverloadedError, Span, Switch, ToolCall, Usage
from llmswitch.plans import Plan, PlanError, Toolbox, resume_plan, run_plan, start_run
from llmswitch.testing import FakeModel
from tests.plans.support import TimedModel, max_overlap

NO_LEDGER = {"observe": {"ledger": False}}


def make_plan(streams: dict[str, Any], **top: Any) -> Plan:
    return Plan.from_dict({"streams": streams, **top}, "test.yaml")


def switch(**models: Any) -> Switch:
    return Switch(NO_LEDGER, models=models)


async def test_five_independent_streams_run_at_once(tmp_path: Path) -> None:
    model = TimedModel(delay=1.0)
    plan = make_plan({f"s{i}": {"model": "slow", "prompt": f"task {i}"} for i in range(5)})
    async with switch(slow=model) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run")
    assert run.status == "done"
    assert len(model.spans) == 5
    # Every call was in flight at the same moment: the last start precedes the first end.
    assert max(s for s, _ in model.spans) < min(e for _, e in model.spans)
    assert max_overlap(model.spans) == 5


async def test_concurrency_limit_is_honoured(tmp_path: Path) -> None:
    model = TimedModel(delay=0.2)
    plan = make_plan({f"s{i}": {"model": "m", "prompt": f"task {i}"} for i in range(6)})
    async with switch(m=model) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run", concurrency=2)
    assert run.status == "done" and len(model.spans) == 6
    assert max_overlap(model.spans) == 2
    assert run.manifest["concurrency"] == 2


async def test_dependencies_run_in_order_with_outputs(tmp_path: Path) -> None:
    a = TimedModel(name="a", delay=0.1, answer="SCHEMA")
    b = TimedModel(name="b", delay=0.1, answer="CODE")
    plan = make_plan({
        "tests": {"model": "a", "prompt": "test {{ streams.code.output }}"},
        "code": {"model": "b", "prompt": "code for {{ streams.schema.output }}"},
        "schema": {"model": "a", "prompt": "schema for {{ inputs.x }}"},
    }, inputs={"x": {"default": "orders"}})
    async with switch(a=a, b=b) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run")
    streams = run.streams
    assert streams["schema"]["finished_at"] <= streams["code"]["started_at"]
    assert streams["code"]["finished_at"] <= streams["tests"]["started_at"]
    assert a.prompts == ["schema for orders", "test CODE"] and b.prompts == ["code for SCHEMA"]
    assert Path(streams["code"]["output_file"]).read_text() == "CODE"


async def test_a_failed_stream_skips_its_dependents_and_keeps_the_rest(tmp_path: Path) -> None:
    bad = FakeModel(name="bad", script=[OverloadedError("down")])
    good = FakeModel(name="good", script=["fine"])
    plan = make_plan({
        "broken": {"model": "bad", "prompt": "x"},
        "after": {"model": "good", "prompt": "{{ streams.broken.output }}"},
        "free": {"model": "good", "prompt": "y"},
    })
    async with switch(bad=bad, good=good) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run")
    s = run.streams
    assert run.status == "failed"
    assert s["broken"]["status"] == "failed" and s["broken"]["error"]["type"] == "overloaded"
    assert s["after"]["status"] == "skipped" and "broken" in s["after"]["error"]["message"]
    assert s["free"]["status"] == "done" and run.output("free") == "fine"
    assert good.call_count == 1
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "failed"


async def test_outage_moves_a_stream_to_its_fallback(tmp_path: Path) -> None:
    primary = FakeModel(name="primary", provider="p1", script=[OverloadedError("503")],
                        cost_per_call=0.0)
    backup = FakeModel(name="backup", provider="p2", script=["saved"], cost_per_call=0.002)
    plan = make_plan({
        "moved": {"model": "primary", "fallback": ["backup"], "prompt": "x"},
        "stayed": {"model": "backup", "prompt": "y"},
    })
    async with switch(primary=primary, backup=backup) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run")
    moved = run.streams["moved"]
    assert run.status == "done"
    assert (moved["model"], moved["provider"], moved["moved_from"]) == ("backup", "p2", "primary")
    assert moved["attempts"] == 2 and [c["status"] for c in moved["calls"]] == ["error", "ok"]
    assert run.streams["stayed"]["moved_from"] is None
    trace = json.loads(Path(moved["trace_file"]).read_text())
    assert trace["attributes"]["llmswitch.plan.moved_to"] == "backup"


async def test_budget_stops_a_stream_before_it_overspends(tmp_path: Path) -> None:
    model = FakeModel(name="openai/gpt-4o", script=["never"])
    plan = make_plan({"big": {"model": "pricey", "prompt": "write " * 50, "max_tokens": 4000,
                              "budget_usd": 0.01}})
    async with Switch({**NO_LEDGER, "models": {"pricey": {"model": "openai/gpt-4o"}}},
                      models={"pricey": model}) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run")
    entry = run.streams["big"]
    assert entry["status"] == "failed" and entry["error"]["type"] == "budget_exceeded"
    assert model.call_count == 0


async def test_deadline_ends_a_slow_stream(tmp_path: Path) -> None:
    plan = make_plan({"slow": {"model": "m", "prompt": "x", "deadline": 0.2},
                      "quick": {"model": "q", "prompt": "y"}})
    async with switch(m=TimedModel(delay=5), q=TimedModel(delay=0)) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run")
    assert run.streams["slow"]["status"] == "failed"
    assert run.streams["slow"]["error"]["type"] == "timeout"
    assert "deadline of 0.2 s" in run.streams["slow"]["error"]["message"]
    assert run.streams["quick"]["status"] == "done"


async def test_json_output_is_parsed_checked_and_retried(tmp_path: Path) -> None:
    model = FakeModel(name="m", script=["not json at all", '```json\n{"table": "orders"}\n```'])
    schema = {"type": "object", "properties": {"table": {"type": "string"}},
              "required": ["table"]}
    plan = make_plan({"schema": {"model": "m", "prompt": "x", "output": {"schema": schema}},
                      "use": {"model": "m", "prompt": "{{ streams.schema.json.table }}"}})
    async with switch(m=model) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run")
    assert run.status == "done"
    assert json.loads(Path(run.streams["schema"]["output_file"]).read_text()) == {
        "table": "orders"}
    assert model.calls[0].settings.response_format is not None
    assert "JSON" in model.calls[1].messages[-1].text  # a corrective retry
    assert model.calls[-1].messages[-1].text == "orders"


async def test_agent_stream_calls_tools_within_max_steps(tmp_path: Path) -> None:
    tools = Toolbox()
    seen: list[str] = []

    @tools.register
    def lookup(table: str, limit: int = 5) -> dict[str, Any]:
        """Look up a table's columns."""
        seen.append(table)
        return {"table": table, "columns": ["id", "status"][:limit]}

    call = Completion("", "tool_calls", Usage(5, 5), 0.0, "fake", "agent",
                      tool_calls=(ToolCall("c1", "lookup", '{"table": "orders"}'),),
                      trace=Span("chat agent", "attempt"))
    agent = FakeModel(name="agent", script=[call, "orders has id and status"])
    plan = make_plan({"a": {"model": "agent", "prompt": "describe orders",
                            "tools": ["lookup"], "max_steps": 3}})
    async with switch(agent=agent) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run", tools=tools)
    assert run.status == "done" and seen == ["orders"]
    assert run.output("a") == "orders has id and status"
    spec = agent.calls[0].settings.tools[0]
    assert spec.name == "lookup" and spec.parameters["required"] == ["table"]
    assert spec.parameters["properties"]["limit"] == {"type": "integer", "default": 5}
    tool_message = agent.calls[1].messages[-1]
    assert tool_message.role == "tool" and '"columns"' in tool_message.text
    trace = json.loads(Path(run.streams["a"]["trace_file"]).read_text())
    assert [c["name"] for c in trace["children"]] == ["chat agent", "tool lookup", "chat agent"]


async def test_agent_stops_at_max_steps(tmp_path: Path) -> None:
    tools = Toolbox()
    tools.register(lambda: "again", name="spin")
    call = Completion("", "tool_calls", Usage(1, 1), 0.0, "fake", "agent",
                      tool_calls=(ToolCall("c", "spin", "{}"),))
    agent = FakeModel(name="agent", script=[call])
    plan = make_plan({"a": {"model": "agent", "prompt": "x", "tools": ["spin"],
                            "max_steps": 2}})
    async with switch(agent=agent) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run", tools=tools)
    assert run.streams["a"]["error"]["type"] == "max_steps" and agent.call_count == 2


async def test_unknown_tool_is_a_plan_error() -> None:
    plan = make_plan({"a": {"model": "m", "prompt": "x", "tools": ["serch"]}})
    tools = Toolbox()
    tools.register(lambda q: q, name="search")
    async with switch(m=FakeModel()) as sw:
        with pytest.raises(PlanError, match=r'streams\.a\.tools: unknown tool .serch.*"search"'):
            await run_plan(sw, plan, tools=tools)


async def test_checkpoint_waits_for_approval(tmp_path: Path) -> None:
    model = FakeModel(name="m", script=["draft", "final"])
    plan = make_plan({"draft": {"model": "m", "prompt": "x", "checkpoint": "approve"},
                      "build": {"model": "m", "prompt": "{{ streams.draft.output }}"}})
    async with switch(m=model) as sw:
        runner = start_run(sw, plan, run_dir=tmp_path / "run")
        task = asyncio.create_task(runner.run())
        for _ in range(200):
            if runner.entries["draft"]["status"] == "awaiting_approval":
                break
            await asyncio.sleep(0.02)
        assert runner.entries["draft"]["status"] == "awaiting_approval"
        assert model.call_count == 1  # `build` waits for the person
        runner.folder.record_approval("draft", True, "looks right")
        run = await asyncio.wait_for(task, 10)
    assert run.status == "done" and run.output("build") == "final"
    assert run.streams["draft"]["approval"]["note"] == "looks right"


async def test_checkpoint_timeout_stops_resumably_then_approve_and_resume(
        tmp_path: Path) -> None:
    model = FakeModel(name="m", script=["draft", "final"])
    plan = make_plan({"draft": {"model": "m", "prompt": "x", "checkpoint": "approve"},
                      "build": {"model": "m", "prompt": "{{ streams.draft.output }}"}})
    async with switch(m=model) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run", approval_timeout=0)
        assert run.status == "awaiting_approval"
        assert run.streams["build"]["status"] == "pending"
        run.folder.record_approval("draft", True)
        again = await resume_plan(sw, tmp_path / "run")
    assert again.status == "done" and model.call_count == 2


async def test_resume_reruns_only_unfinished_streams(tmp_path: Path) -> None:
    flaky = FakeModel(name="flaky", script=[OverloadedError("down"), "recovered"])
    steady = FakeModel(name="steady", script=["stable"])
    plan = make_plan({"ok": {"model": "steady", "prompt": "x"},
                      "bad": {"model": "flaky", "prompt": "y"},
                      "next": {"model": "steady", "prompt": "{{ streams.bad.output }}"}})
    async with switch(flaky=flaky, steady=steady) as sw:
        first = await run_plan(sw, plan, run_dir=tmp_path / "run")
        assert first.status == "failed" and steady.call_count == 1
        second = await resume_plan(sw, tmp_path / "run")
    assert second.status == "done"
    assert steady.call_count == 2  # `ok` was not run again; `next` ran once
    assert flaky.call_count == 2
    assert second.output("ok") == "stable" and len(second.manifest["sessions"]) == 2


async def test_auto_model_choice_is_recorded(tmp_path: Path) -> None:
    cheap = FakeModel(name="gpt-4.1-nano", provider="openai", script=["ok"])
    plan = make_plan({"a": {"model": "auto", "prompt": "x", "needs": ["tools"],
                            "candidates": ["openai/gpt-4o", "openai/gpt-4.1-nano"]}})
    async with switch(**{"openai/gpt-4.1-nano": cheap}) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run")
    auto = run.streams["a"]["auto"]
    assert auto["model"] == "openai/gpt-4.1-nano" and "cheapest of 2 candidates" in auto["reason"]
    trace = json.loads(Path(run.streams["a"]["trace_file"]).read_text())
    assert trace["attributes"]["llmswitch.chosen"] == "openai/gpt-4.1-nano"


async def test_switch_run_plan_delegates(tmp_path: Path) -> None:
    plan = make_plan({"a": {"model": "m", "prompt": "hi"}})
    async with switch(m=FakeModel(script=["hello"])) as sw:
        run = await sw.run_plan(plan, run_dir=tmp_path / "run")
    assert run.output("a") == "hello"


async def test_auto_through_a_route_records_what_it_chose(tmp_path: Path) -> None:
    config = {**NO_LEDGER, "routes": {"by-task": {
        "strategy": "route", "by": "task", "targets": ["small", "big"],
        "tasks": {"code": "big"}, "default": "small"}}}
    small, big = FakeModel(name="small", script=["s"]), FakeModel(name="big", script=["b"])
    plan = make_plan({"a": {"model": "auto", "router": "by-task", "task": "code",
                            "prompt": "x"}})
    async with Switch(config, models={"small": small, "big": big}) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run")
    assert run.output("a") == "b" and big.calls[0].metadata == {"task": "code"}
    assert run.streams["a"]["auto"]["router"] == "by-task"
    assert run.streams["a"]["auto"]["router_chose"] == "big"


async def test_an_unexpected_exception_fails_only_its_stream(tmp_path: Path) -> None:
    def explode(request: Any) -> str:
        raise RuntimeError("bug in a custom model")

    plan = make_plan({"bad": {"model": "bad", "prompt": "x"},
                      "good": {"model": "good", "prompt": "y"}})
    async with switch(bad=FakeModel(script=[explode]), good=FakeModel(script=["ok"])) as sw:
        run = await run_plan(sw, plan, run_dir=tmp_path / "run")
    assert run.status == "failed" and run.output("good") == "ok"
    assert "RuntimeError: bug in a custom model" in run.streams["bad"]["error"]["message"]
