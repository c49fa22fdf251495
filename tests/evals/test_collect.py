"""`router collect`: outcome tables from fake models, graded, resumable, loadable and trainable."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import llmswitch.evals.collect as collect_mod
from llmswitch.cli.router import router as router_cli
from llmswitch.errors import AuthenticationError, OverloadedError
from llmswitch.evals.collect import (
    CollectError,
    collect_outcomes,
    journal_path,
    read_prompts,
)
from llmswitch.evals.graders import (
    CommandGrader,
    ContainsGrader,
    ExactGrader,
    JudgeGrader,
    PromptRow,
    make_grader,
    normalise_answer,
)
from llmswitch.evals.table import load_table
from llmswitch.request import Request
from llmswitch.switch import Switch
from llmswitch.testing import FakeModel

CAPITALS = {
    "Capital of France?": "Paris",
    "Capital of Japan?": "Tokyo",
    "Capital of Italy?": "Rome",
    "Capital of Peru?": "Lima",
    "Capital of Kenya?": "Nairobi",
    "Capital of Chile?": "Santiago",
}


def write_prompts(path: Path, n: int = 4) -> Path:
    lines = [
        {"prompt_id": f"q{i}", "prompt": p, "task": "geo" if i % 2 else "capitals",
         "reference": a, "source": "test"}
        for i, (p, a) in enumerate(list(CAPITALS.items())[:n])
    ]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def oracle(request: Request) -> str:
    return f"{CAPITALS[request.last_user_text]}."


def fakes() -> dict[str, FakeModel]:
    return {
        "strong": FakeModel(name="strong", script=[oracle], cost_per_call=0.01),
        "weak": FakeModel(name="weak", script=["I don't know"], cost_per_call=0.001),
        "broken": FakeModel(
            name="broken", script=[OverloadedError("down", cost_usd=0.0005)], cost_per_call=0.002
        ),
        "judge": FakeModel(name="judge", script=["Score: 0.7"]),
    }


def make_switch(models: dict[str, FakeModel]) -> Switch:
    return Switch({}, models=models, observers=[])


async def test_collect_grades_writes_a_loadable_table_and_resumes(tmp_path: Path) -> None:
    prompts, out = write_prompts(tmp_path / "prompts.jsonl"), tmp_path / "table.jsonl"
    models = fakes()
    switch = make_switch(models)
    summary = await collect_outcomes(
        switch, prompts, ["strong", "weak", "broken"], ExactGrader(), out, concurrency=3
    )
    assert (summary.done, summary.skipped, summary.failed, summary.rows) == (12, 0, 4, 4)
    assert summary.complete and not journal_path(out).exists()
    assert summary.cost_usd == pytest.approx(4 * 0.01 + 4 * 0.001 + 4 * 0.0005)

    table = load_table(out)
    assert table.models == ("strong", "weak", "broken")
    assert table.prompt_ids == ("q0", "q1", "q2", "q3")
    assert table.tasks[:2] == ("capitals", "geo")
    assert table.quality[:, 0].tolist() == [1.0] * 4  # "Paris." matches "Paris"
    assert table.quality[:, 1:].sum() == 0.0
    assert table.cost[:, 2].tolist() == [0.0005] * 4  # failed calls keep what they were billed
    row = json.loads(out.read_text().splitlines()[0])
    assert "down" in row["errors"]["broken"] and set(row["errors"]) == {"broken"}
    assert row["responses"]["strong"] == "Paris." and row["source"] == "test"
    assert row["reference"] == "Paris"

    calls = {m: f.call_count for m, f in models.items()}
    again = await collect_outcomes(switch, prompts, ["strong", "weak", "broken"], ExactGrader(),
                                   out)
    assert (again.done, again.skipped) == (0, 12)
    assert {m: f.call_count for m, f in models.items()} == calls

    # another grader would mix two scales in one table: refused before any call
    with pytest.raises(CollectError, match="graded with --grader exact, not contains"):
        await collect_outcomes(switch, prompts, ["strong", "weak", "broken"], ContainsGrader(),
                               out)
    assert {m: f.call_count for m, f in models.items()} == calls

    # a re-run with more prompts and a new model runs only the missing cells
    write_prompts(prompts, n=6)
    more = await collect_outcomes(
        switch, prompts, ["strong", "weak", "broken", "judge"], ExactGrader(), out
    )
    assert (more.done, more.skipped) == (6 * 4 - 12, 12)
    assert models["strong"].call_count == calls["strong"] + 2
    assert models["judge"].call_count == 6
    table = load_table(out)
    assert len(table) == 6 and table.models[-1] == "judge"
    assert table.prompt_ids == tuple(f"q{i}" for i in range(6))


async def test_retry_errors_reruns_only_failed_cells(tmp_path: Path) -> None:
    prompts, out = write_prompts(tmp_path / "p.jsonl", n=2), tmp_path / "t.jsonl"
    flaky = FakeModel(name="flaky", script=[OverloadedError("busy"), OverloadedError("busy"),
                                            oracle])
    models = {"strong": FakeModel(name="strong", script=[oracle]), "flaky": flaky}
    switch = make_switch(models)
    first = await collect_outcomes(switch, prompts, ["strong", "flaky"], ExactGrader(), out)
    assert first.failed == 2
    retry = await collect_outcomes(switch, prompts, ["strong", "flaky"], ExactGrader(), out,
                                   retry_errors=True)
    assert (retry.done, retry.failed) == (2, 0)
    assert models["strong"].call_count == 2
    table = load_table(out)
    assert table.quality.tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert all(not e for e in table.extras["errors"])


async def test_cancel_keeps_finished_cells_and_resume_finishes(tmp_path: Path) -> None:
    prompts, out = write_prompts(tmp_path / "p.jsonl", n=6), tmp_path / "t.jsonl"
    fast = FakeModel(name="fast", script=[oracle])
    slow = FakeModel(name="slow", script=[oracle], delay=0.05)
    switch = make_switch({"fast": fast, "slow": slow})
    summary = collect_mod.CollectSummary(str(out))
    task = asyncio.create_task(collect_outcomes(
        switch, prompts, ["fast", "slow"], ExactGrader(), out, concurrency=2, summary=summary))
    while summary.done < 5:
        await asyncio.sleep(0.005)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert summary.interrupted and not summary.complete
    kept = [json.loads(x) for x in journal_path(out).read_text().splitlines()]
    assert len(kept) == summary.done >= 5
    assert any("unfinished" in n for n in summary.notes)
    rows_before = len(out.read_text().splitlines()) if out.exists() else 0
    assert rows_before == summary.rows >= 2

    calls = fast.call_count + slow.call_count
    rest = await collect_outcomes(switch, prompts, ["fast", "slow"], ExactGrader(), out)
    assert rest.skipped == len(kept) and rest.done == 12 - len(kept)
    assert fast.call_count + slow.call_count - calls == 12 - len(kept)
    assert rest.complete and not journal_path(out).exists()
    assert load_table(out).quality.min() == 1.0


async def test_torn_last_line_is_dropped_on_resume(tmp_path: Path) -> None:
    prompts, out = write_prompts(tmp_path / "p.jsonl", n=2), tmp_path / "t.jsonl"
    switch = make_switch({"strong": FakeModel(name="strong", script=[oracle])})
    await collect_outcomes(switch, prompts, ["strong"], ExactGrader(), out)
    text = out.read_text()
    out.write_text(text.splitlines(keepends=True)[0] + text.splitlines()[1][:20])  # hard kill
    summary = await collect_outcomes(switch, prompts, ["strong"], ExactGrader(), out)
    assert summary.done == 1 and len(load_table(out)) == 2


async def test_unknown_model_fails_before_any_call(tmp_path: Path) -> None:
    prompts = write_prompts(tmp_path / "p.jsonl")
    models = fakes()
    with pytest.raises(CollectError, match=r"model 'strnog'.*unknown model"):
        await collect_outcomes(make_switch(models), prompts, ["strong", "strnog"], ExactGrader(),
                               tmp_path / "t.jsonl")
    assert models["strong"].call_count == 0 and not (tmp_path / "t.jsonl").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"prompt": "a"}\n{"prompt": "b"\n', r"p\.jsonl:2: invalid JSON"),
        ('{"prompt": ""}\n', r"p\.jsonl:1: 'prompt' must be a non-empty string"),
        ('[1, 2]\n', r"p\.jsonl:1: expected a JSON object"),
        ('{"prompt_id": "a", "prompt": "x"}\n{"prompt_id": "a", "prompt": "y"}\n',
         "prompt_id 'a' already used on line 1"),
        ("\n", "no prompts"),
    ],
)
def test_bad_prompt_files_name_the_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text(content)
    with pytest.raises(CollectError, match=message):
        read_prompts(path)


def test_prompt_ids_default_to_a_stable_hash(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a"}\n{"prompt": "b", "id": 7}\n')
    rows = read_prompts(path)
    assert rows[0].prompt_id.startswith("p-")
    assert rows[0].prompt_id == read_prompts(path)[0].prompt_id
    assert rows[1].prompt_id == "7" and rows[0].task == "default"


async def test_exact_grader_needs_references_before_any_call(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt_id": "a", "prompt": "Capital of France?"}\n')
    models = fakes()
    with pytest.raises(CollectError, match=r"line 1 \('a'\): the exact grader needs a 'reference'"):
        await collect_outcomes(make_switch(models), path, ["strong"], ExactGrader(),
                               tmp_path / "t.jsonl")
    assert models["strong"].call_count == 0


async def test_existing_table_with_other_models_is_bad_input(tmp_path: Path) -> None:
    prompts, out = write_prompts(tmp_path / "p.jsonl", n=2), tmp_path / "t.jsonl"
    switch = make_switch(fakes())
    await collect_outcomes(switch, prompts, ["strong", "weak"], ExactGrader(), out)
    with pytest.raises(CollectError, match="already holds results for weak"):
        await collect_outcomes(switch, prompts, ["strong"], ExactGrader(), out)


async def test_collected_table_trains_a_router(tmp_path: Path) -> None:
    from llmswitch.training.router import train_router

    prompts, out = write_prompts(tmp_path / "p.jsonl", n=6), tmp_path / "t.jsonl"
    await collect_outcomes(make_switch(fakes()), prompts, ["strong", "weak"], ExactGrader(), out)
    router = train_router(load_table(out), "knn", lam=0.0)
    decision = router.decide("Capital of Spain?")
    assert decision.chosen == "strong"
    assert decision.predicted_quality["strong"] > decision.predicted_quality["weak"]


# ---------------------------------------------------------------------------------- graders


def row(**kw: Any) -> PromptRow:
    return PromptRow(**{"prompt_id": "x", "prompt": "q", **kw})


async def test_exact_and_contains_normalise() -> None:
    assert normalise_answer("  **Paris.**\n") == "paris"
    assert (await ExactGrader().grade(row(reference=["Paris", "paris, france"]),
                                      "Paris, France")).quality == 1.0
    assert (await ExactGrader().grade(row(reference=42), " 42. ")).quality == 1.0
    assert (await ExactGrader().grade(row(reference="Paris"), "It is Paris")).quality == 0.0
    assert (await ContainsGrader().grade(row(reference="Paris"), "It is PARIS!")).quality == 1.0
    assert (await ContainsGrader().grade(row(reference="Rome"), "It is Paris")).quality == 0.0


async def test_command_grader_pass_fail_files_and_timeout() -> None:
    py = sys.executable
    check = f"{py} -c \"import sys; sys.exit(0 if sys.stdin.read().strip() == '4' else 1)\""
    grader = CommandGrader(check)
    assert (await grader.grade(row(), "4\n")).quality == 1.0
    assert (await grader.grade(row(), "5")).quality == 0.0
    # the answer and the prompt's test are files; {answer_file}/{test_file} are substituted
    tests = CommandGrader(f"cat {{answer_file}} {{test_file}} | {py} -")
    code = "def add(a, b):\n    return a + b\n"
    good = await tests.grade(row(test="\nassert add(2, 3) == 5\n"), code)
    bad = await tests.grade(row(test="\nassert add(2, 3) == 6\n"), code)
    assert (good.quality, bad.quality, good.error) == (1.0, 0.0, None)
    slow = await CommandGrader(f"{py} -c 'import time; time.sleep(5)'", timeout=0.2).grade(
        row(), "x")
    assert slow.quality == 0.0 and "timed out after 0.2 s" in (slow.error or "")
    missing = await CommandGrader("no-such-grader-command-xyz").grade(row(), "x")
    assert missing.quality == 0.0 and "could not run (exit 127)" in (missing.error or "")


async def test_judge_grader_scores_and_reports_garbage_per_row(tmp_path: Path) -> None:
    judge = FakeModel(name="judge", script=["Score: 0.7", "I like it", "8/10"], cost_per_call=0.001)
    switch = make_switch({"strong": FakeModel(name="strong", script=[oracle]), "judge": judge})
    grader = make_grader("judge", judge="judge", switch=switch)
    prompts, out = write_prompts(tmp_path / "p.jsonl", n=3), tmp_path / "t.jsonl"
    summary = await collect_outcomes(switch, prompts, ["strong"], grader, out, concurrency=1)
    table = load_table(out)
    assert table.quality[:, 0].tolist() == [0.7, 0.0, 0.8]
    assert summary.grade_errors == 1 and summary.failed == 0
    assert summary.grader_cost_usd == pytest.approx(0.003)
    error = table.extras["errors"][1]["strong"]
    assert "judge judge: no score in the reply 'I like it'" in error
    assert "Paris." in judge.calls[0].last_user_text and "Reference answer" in \
        judge.calls[0].last_user_text


async def test_judge_model_is_resolved_before_any_call(tmp_path: Path) -> None:
    models = fakes()
    switch = make_switch(models)
    grader = JudgeGrader(switch, "nobody")
    with pytest.raises(CollectError, match="model 'nobody'"):
        await collect_outcomes(switch, write_prompts(tmp_path / "p.jsonl"), ["strong"], grader,
                               tmp_path / "t.jsonl")
    assert models["strong"].call_count == 0


def test_make_grader_errors() -> None:
    with pytest.raises(ValueError, match="needs --command"):
        make_grader("command")
    with pytest.raises(ValueError, match="needs --judge"):
        make_grader("judge")
    with pytest.raises(ValueError, match="unknown grader 'fuzzy'"):
        make_grader("fuzzy")
    assert isinstance(make_grader("command:true"), CommandGrader)


# ---------------------------------------------------------------------------------- the CLI


@pytest.fixture
def fake_switch(monkeypatch: pytest.MonkeyPatch) -> dict[str, FakeModel]:
    models = fakes()
    monkeypatch.setattr(collect_mod, "open_switch", lambda config_path: make_switch(models))
    return models


def test_cli_collect_end_to_end(tmp_path: Path, fake_switch: dict[str, FakeModel]) -> None:
    prompts, out = write_prompts(tmp_path / "p.jsonl"), tmp_path / "t.jsonl"
    args = ["collect", "--prompts", str(prompts), "--models", "strong,weak,broken",
            "--out", str(out), "--quiet"]
    res = CliRunner().invoke(router_cli, args)
    assert res.exit_code == 0, res.output
    assert "4 rows (complete); 12 calls made, 0 skipped (already done), 4 failed" in res.output
    assert len(load_table(out)) == 4
    res = CliRunner().invoke(router_cli, [*args, "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert (data["done"], data["skipped"], data["complete"]) == (0, 12, True)


def test_cli_trains_on_the_collected_table(
    tmp_path: Path, fake_switch: dict[str, FakeModel]
) -> None:
    prompts, out = write_prompts(tmp_path / "p.jsonl", n=6), tmp_path / "t.jsonl"
    runner = CliRunner()
    res = runner.invoke(router_cli, ["collect", "--prompts", str(prompts), "--models",
                                     "strong,weak", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(router_cli, ["train", "--data", str(out), "--kind", "knn", "--folds", "2",
                                     "--lambda", "0", "--out", str(tmp_path / "r.npz"), "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["models"] == ["strong", "weak"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--models", "strong,nope"], "model 'nope'"),
        (["--models", "strong", "--grader", "command"], "needs --command"),
        (["--models", "strong", "--grader", "judge"], "needs --judge"),
    ],
)
def test_cli_bad_input_is_one_line(tmp_path: Path, fake_switch: dict[str, FakeModel],
                                   extra: list[str], message: str) -> None:
    prompts = write_prompts(tmp_path / "p.jsonl")
    res = CliRunner().invoke(
        router_cli, ["collect", "--prompts", str(prompts), "--out", str(tmp_path / "t.jsonl"),
                     *extra])
    assert res.exit_code == 1 and message in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert fake_switch["strong"].call_count == 0


def test_cli_missing_prompts_file(tmp_path: Path, fake_switch: dict[str, FakeModel]) -> None:
    res = CliRunner().invoke(router_cli, ["collect", "--prompts", str(tmp_path / "none.jsonl"),
                                          "--models", "strong", "--out", str(tmp_path / "t.jsonl")])
    assert res.exit_code == 1 and "does not exist" in res.output


# ------------------------------------------------------- output checks and write failures (QA)


@pytest.mark.parametrize("where", ["under-a-file", "proc"])
async def test_unwritable_out_fails_before_the_first_call(tmp_path: Path, where: str) -> None:
    if where == "proc" and not Path("/proc/self").exists():
        pytest.skip("needs procfs")
    blocker = tmp_path / "file"
    blocker.write_text("a file, not a folder")
    out = blocker / "o.jsonl" if where == "under-a-file" else Path("/proc/o.jsonl")
    models = fakes()
    with pytest.raises(CollectError, match=r"^--out: cannot (create the folder|write in) "):
        await collect_outcomes(make_switch(models), write_prompts(tmp_path / "p.jsonl"),
                               ["strong"], ExactGrader(), out)
    assert models["strong"].call_count == 0


async def test_out_folder_is_created(tmp_path: Path) -> None:
    out = tmp_path / "tables" / "new" / "t.jsonl"
    summary = await collect_outcomes(make_switch(fakes()), write_prompts(tmp_path / "p.jsonl"),
                                     ["strong"], ExactGrader(), out)
    assert summary.complete and len(load_table(out)) == 4


def test_cli_unwritable_out_is_one_error_line(
    tmp_path: Path, fake_switch: dict[str, FakeModel]
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = CliRunner().invoke(router_cli, [
        "collect", "--prompts", str(write_prompts(tmp_path / "p.jsonl")), "--models", "strong",
        "--out", str(blocker / "o.jsonl")])
    assert res.exit_code == 1 and res.stderr.startswith("error: --out: cannot create the folder")
    assert len(res.stderr.strip().splitlines()) == 1 and "Errno" not in res.stderr
    assert fake_switch["strong"].call_count == 0


async def test_a_write_failing_mid_run_is_a_collect_error(tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    out = folder / "t.jsonl"

    def vanish(request: Request) -> str:  # the folder turns into a file while calls run
        if folder.is_dir():
            for child in folder.iterdir():
                child.unlink()
            folder.rmdir()
            folder.write_text("in the way")
        return oracle(request)

    models = {"strong": FakeModel(name="strong", script=[vanish])}
    with pytest.raises(CollectError, match=r"cannot write .*t\.jsonl\.partial"):
        await collect_outcomes(make_switch(models), write_prompts(tmp_path / "p.jsonl"),
                               ["strong"], ExactGrader(), out, concurrency=2)
    assert models["strong"].call_count <= 2  # the other worker stopped too


@pytest.mark.parametrize(("line", "needle"), [
    ({"prompt_id": "q0", "quality": [1]}, "row 1: 'quality' must be an object"),
    ({"prompt_id": "q0", "quality": {"strong": "good"}}, "row 1: quality and cost must be numbers"),
    ({"prompt_id": "q0", "quality": {"strong": 1}, "cost_usd": 3}, "'cost_usd' must be an object"),
])
async def test_an_existing_table_not_written_by_collect(
    tmp_path: Path, line: dict[str, Any], needle: str
) -> None:
    out = tmp_path / "t.jsonl"
    out.write_text(json.dumps(line) + "\n")
    models = fakes()
    with pytest.raises(CollectError, match=needle):
        await collect_outcomes(make_switch(models), write_prompts(tmp_path / "p.jsonl"),
                               ["strong"], ExactGrader(), out)
    assert models["strong"].call_count == 0


async def test_a_journal_not_written_by_collect(tmp_path: Path) -> None:
    out = tmp_path / "t.jsonl"
    journal_path(out).write_text(json.dumps({"prompt_id": "q0", "model": "strong"}) + "\n")
    with pytest.raises(CollectError, match=r"record 1 is not a cell of `router collect`"):
        await collect_outcomes(make_switch(fakes()), write_prompts(tmp_path / "p.jsonl"),
                               ["strong"], ExactGrader(), out)


@pytest.mark.parametrize(("out", "message"), [
    ("t.parquet", "must end in .jsonl"),
    ("p.jsonl", "--out is the --prompts file"),
])
def test_cli_refuses_an_out_that_cannot_be_a_table(
    tmp_path: Path, fake_switch: dict[str, FakeModel], out: str, message: str
) -> None:
    prompts = write_prompts(tmp_path / "p.jsonl", n=2)
    before = prompts.read_text()
    res = CliRunner().invoke(router_cli, ["collect", "--prompts", str(prompts), "--models",
                                          "strong", "--out", str(tmp_path / out)])
    assert res.exit_code == 1 and message in res.output
    assert prompts.read_text() == before and fake_switch["strong"].call_count == 0


def test_cli_prompts_folder_says_so(tmp_path: Path) -> None:
    res = CliRunner().invoke(router_cli, ["collect", "--prompts", str(tmp_path), "--models",
                                          "strong", "--out", str(tmp_path / "t.jsonl")])
    assert res.exit_code == 1 and "is a directory" in res.output


async def test_a_missing_api_key_stops_the_run_instead_of_recording_zeros(
    tmp_path: Path
) -> None:
    prompts, out = write_prompts(tmp_path / "p.jsonl", n=3), tmp_path / "t.jsonl"
    nokey = FakeModel(name="nokey", script=[AuthenticationError("no API key for openai",
                                                                hint="set OPENAI_API_KEY")])
    strong = FakeModel(name="strong", script=["Paris"])
    switch = Switch({}, models={"nokey": nokey, "strong": strong}, observers=[])
    with pytest.raises(CollectError, match=r"model 'nokey': .*no API key for openai \(set "
                                           r"OPENAI_API_KEY\); collection stopped"):
        await collect_outcomes(switch, prompts, ["strong", "nokey"], ExactGrader(), out,
                               concurrency=1)
    assert not out.exists() or "nokey" not in out.read_text()  # no zero rows recorded for it
