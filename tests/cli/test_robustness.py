"""Bad input at the command line: a clear one-line error and a non-zero exit, never a traceback.

Most cases run in-process through click's `CliRunner` (fast); a few run the real `llmswitch`
process, which is what a user sees. Cases marked `xfail(strict=True)` are known defects in
files this suite's owner may not edit; each names the fix. When one is fixed, its test passes,
strict xfail fails the run, and the mark must go.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from llmswitch.cli.main import cli
from tests.support.fixtures import load
from tests.support.replay import Scripted, serving

ERROR_KEYS = {"type", "message", "provider", "model", "status"}
BIG_PROMPT = "word " * 20_000  # ~22k tokens: over the local model's 2,048-token window


def invoke(*args: str, stdin: str | None = None, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process; a Python exception escaping it fails the test."""
    result = CliRunner().invoke(cli, list(args), input=stdin, env=env, catch_exceptions=True,
                                prog_name="llmswitch")
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"llmswitch {' '.join(args)} raised") from result.exception
    return result


def run(*args: str, stdin: str = "", env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """Run the real `llmswitch` process."""
    return subprocess.run(
        [sys.executable, "-m", "llmswitch.cli.main", *args], capture_output=True, text=True,
        input=stdin, env={**os.environ, **(env or {})}, timeout=60, check=False)


def one_line_error(result: Result, *needles: str) -> str:
    """Exit 1, one `error:` line on stderr holding every needle, nothing on stdout."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].lower().startswith("error:"), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert "Traceback" not in result.output
    return lines[0]


def json_error(result: Result, error_type: str, *needles: str) -> dict[str, Any]:
    """Exit 1 and exactly the public `{"error": {...}}` object on stdout."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, result.stdout
    error: dict[str, Any] = json.loads(lines[0])["error"]
    assert set(error) >= ERROR_KEYS
    assert error["type"] == error_type, error
    for needle in needles:
        assert needle in error["message"], error["message"]
    return error


def usage_error(result: Result, *needles: str) -> None:
    """Click's usage error: exit 2 and a short `Error:` line."""
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert "Error:" in result.stderr and "Traceback" not in result.output
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.fixture
def unreadable(tmp_path: Path) -> Path:
    """A file this process cannot read (root reads chmod-000 files, so use sysfs then)."""
    path = tmp_path / "secret.yaml"
    path.write_text("{}")
    path.chmod(0)
    if not os.access(path, os.R_OK):
        return path
    for candidate in (Path("/sys/bus/cpu/uevent"), Path("/sys/bus/pci/rescan")):
        try:
            candidate.read_bytes()
        except PermissionError:
            return candidate
        except OSError:
            continue
    pytest.skip("no unreadable file available to this user")


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


# -- chat ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "needle"), [
    ((), "Missing argument 'MODEL'"),
    (("local/smollm2-135m",), "Missing argument 'PROMPT'"),
    (("m", "p", "extra"), "unexpected extra argument"),
    (("m", "p", "--max-tokens", "abc"), "--max-tokens"),
    (("m", "p", "--temperature", "5"), "--temperature"),
    (("m", "p", "--timeout", "-1"), "--timeout"),
    (("m", "p", "--seed", "x"), "--seed"),
    (("m", "p", "--nope"), "No such option"),
])
def test_chat_usage_errors(args: tuple[str, ...], needle: str) -> None:
    usage_error(invoke("chat", *args), needle)


def test_chat_unknown_model_text_and_json() -> None:
    one_line_error(invoke("chat", "gpt4o-mni", "hi"), "did you mean", "gpt-4o-mini")
    json_error(invoke("chat", "nosuchmodel", "hi", "--json"), "model_not_found", "nosuchmodel")


def test_chat_unknown_provider() -> None:
    result = invoke("chat", "nosuch/m", "hi", "--config", "/dev/null")
    one_line_error(result, "nosuch")


def test_chat_config_problems(tmp_path: Path, unreadable: Path) -> None:
    json_error(invoke("chat", "m", "hi", "--config", str(tmp_path / "none.yaml"), "--json"),
               "config", "does not exist")
    usage_error(invoke("chat", "m", "hi", "--config", str(tmp_path)), "is a directory")
    bad = write(tmp_path, "bad.yaml", "routes:\n  a: [\n")
    json_error(invoke("chat", "a", "hi", "--config", str(bad), "--json"), "config",
               "bad.yaml", "not valid YAML at line 3")
    top = write(tmp_path, "list.yaml", "- 1\n")
    one_line_error(invoke("chat", "a", "hi", "--config", str(top)), "top level must be a mapping")
    one_line_error(invoke("chat", "a", "hi", "--config", str(unreadable)), "cannot read")


@pytest.mark.parametrize(("yaml_text", "needles"), [
    ("routes:\n  x: {strategy: fallback, targets: [y]}\n"
     "  y: {strategy: fallback, targets: [x]}\n", ("routes.x", "cycle", "x -> y -> x")),
    ("routes:\n  x: {strategy: fallback, targets: [x]}\n", ("cycle", "x -> x")),
    ("routes:\n  x: {strategy: nosuch, targets: [local/smollm2-135m]}\n",
     ("unknown strategy 'nosuch'",)),
    ("routes:\n  x: {strategy: fallback, targets: [local/smollm2-135m], retries: many}\n",
     ("routes.x", "retries")),
    ("routes:\n  x: {strategy: fallback, targets: [gpt4o-mni]}\n", ("did you mean",)),
    ("providers:\n  openai: {timeout: abc}\n", ("providers.openai.timeout",)),
    ("providers:\n  openai:\n    api_key_env: ${NOT_SET_ANYWHERE}\n", ("NOT_SET_ANYWHERE",)),
    ("observe:\n  ledger: 5\n", ("observe.ledger",)),
])
def test_chat_bad_config_content(tmp_path: Path, yaml_text: str, needles: tuple[str, ...]
                                 ) -> None:
    path = write(tmp_path, "c.yaml", yaml_text)
    json_error(invoke("chat", "x", "hi", "--config", str(path), "--json"), "config", *needles)
    one_line_error(invoke("chat", "x", "hi", "--config", str(path)), *needles)


@pytest.mark.parametrize(("schema", "needle"), [
    ("{bad", "not valid JSON"),
    ("missing-file.json", "no such file"),
])
def test_chat_invalid_schema(schema: str, needle: str) -> None:
    json_error(invoke("chat", "local/smollm2-135m", "hi", "--schema", schema, "--json"),
               "bad_request", "--schema", needle)
    one_line_error(invoke("chat", "local/smollm2-135m", "hi", "--schema", schema), needle)


def test_chat_schema_file_empty_or_not_an_object(tmp_path: Path) -> None:
    empty = write(tmp_path, "empty.json", "")
    one_line_error(invoke("chat", "m", "hi", "--schema", str(empty)), "not valid JSON")
    array = write(tmp_path, "array.json", "[1, 2]")
    one_line_error(invoke("chat", "m", "hi", "--schema", str(array)), "must be an object")


def test_chat_bad_meta() -> None:
    json_error(invoke("chat", "m", "hi", "--meta", "novalue", "--json"), "bad_request", "--meta")


def test_chat_prompt_too_long_for_the_local_window() -> None:
    result = invoke("chat", "local/smollm2-135m", "-", "--json", stdin=BIG_PROMPT)
    error = json_error(result, "context_too_long", "2,048-token context window")
    assert error["provider"] == "local"
    one_line_error(invoke("chat", "local/smollm2-135m", "-", stdin=BIG_PROMPT),
                   "context window")


def test_chat_max_tokens_over_the_window() -> None:
    one_line_error(invoke("chat", "local/smollm2-135m", "hi", "--max-tokens", "100000"),
                   "max_tokens 100,000")


def test_chat_all_targets_failing_lists_every_cause(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "routes:\n  answer:\n    strategy: fallback\n"
                 "    targets: [openai/gpt-4o-mini, openai/gpt-4o]\n    retries: 0\n")
    busy = Scripted(503, {"content-type": "application/json"}, b'{"error": {"message": "busy"}}')
    with serving(busy) as server:
        proc = run("chat", "answer", "hi", "--config", str(path), "--json",
                   env={"LLMSWITCH_OPENAI_BASE_URL": server.url + "/v1"})
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["type"] == "all_failed"
    assert [e["type"] for e in error["errors"]] == ["overloaded", "overloaded"]
    assert [e["model"] for e in error["errors"]] == ["gpt-4o-mini", "gpt-4o"]


def test_chat_real_process_errors_are_one_line() -> None:
    proc = run("chat", "gpt4o-mni", "hi")
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("error: ")


# Defects found by the QA pass (fixed; kept as regression tests). Any left marked xfail are open.


def test_chat_empty_prompt_from_stdin_is_refused() -> None:
    json_error(invoke("chat", "nosuch-model-at-all", "-", "--json", stdin=""), "bad_request",
               "empty")


def test_chat_unreadable_schema_file_is_a_json_error(tmp_path: Path) -> None:
    binary = write(tmp_path, "bin.json", b"\xff\xfe{}")
    json_error(invoke("chat", "m", "hi", "--schema", str(binary), "--json"), "bad_request",
               "--schema")


def test_chat_usage_error_with_json_prints_the_error_object() -> None:
    json_error(invoke("chat", "m", "hi", "--max-tokens", "0", "--json"), "bad_request",
               "--max-tokens")


def test_chat_config_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", b"a: 1\n\xff\xfe")
    json_error(invoke("chat", "m", "hi", "--config", str(path), "--json"), "config", "c.yaml")


def test_readme_azure_api_version_date(tmp_path: Path) -> None:
    path = write(tmp_path, "c.yaml", "providers:\n  azure:\n    api_version: 2024-10-21\n")
    result = invoke("models", "--config", str(path), "--json")
    assert result.exit_code == 0, result.output


# -- models ----------------------------------------------------------------------------------


def test_models_unknown_provider_suggests() -> None:
    one_line_error(invoke("models", "--provider", "antropic"), "unknown provider 'antropic'",
                   "did you mean 'anthropic'")
    json_error(invoke("models", "--provider", "", "--json"), "config", "unknown provider")
    usage_error(invoke("models", "extra"), "unexpected extra argument")


def test_models_table_keeps_every_capability() -> None:
    result = invoke("models", "--provider", "openai")
    assert result.exit_code == 0
    assert "…" not in result.stdout and "reasoning" in result.stdout


# -- report and traces -----------------------------------------------------------------------


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real ledger with one recorded call (a loopback server answers)."""
    home = tmp_path / "home"
    monkeypatch.setenv("LLMSWITCH_HOME", str(home))
    with serving(Scripted.from_fixture(load("openai/chat_plain_raw"))) as server:
        result = invoke("chat", "openai/gpt-4o-mini", "hi",
                        env={"LLMSWITCH_OPENAI_BASE_URL": server.url + "/v1"})
    assert result.exit_code == 0, result.output
    path = home / "ledger.sqlite"
    assert path.is_file()
    return path


@pytest.mark.parametrize("since", ["garbage", "-5d", "7D", "2026-13-45", ""])
def test_report_since_garbage(since: str) -> None:
    one_line_error(invoke("report", "--since", since), "--since")
    json_error(invoke("report", "--since", since, "--json"), "config", "--since")


def test_report_bad_chart_paths(ledger: Path, tmp_path: Path) -> None:
    one_line_error(invoke("report", "--chart", str(tmp_path / "no" / "c.png")),
                   "does not exist")
    one_line_error(invoke("report", "--chart", str(tmp_path / "c.txt")), "--chart")
    usage_error(invoke("report", "--chart", str(tmp_path)), "is a directory")


def test_report_and_traces_without_a_usable_ledger(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMSWITCH_HOME", str(tmp_path))
    one_line_error(invoke("report"), "no ledger at")
    (tmp_path / "ledger.sqlite").write_text("this is not a database")
    for command in ("report", "traces"):
        one_line_error(invoke(command), "cannot read the ledger", "not a database")
        json_error(invoke(command, "--json"), "config", "cannot read the ledger")
    monkeypatch.setenv("LLMSWITCH_LEDGER", "off")
    one_line_error(invoke("report"), "turned off")


def test_report_with_data(ledger: Path) -> None:
    result = invoke("report", "--json", "--since", "1d")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["rows"][0]["calls"] == 1
    assert "no calls recorded in that period" in invoke("report", "--since", "2999-01-01").stdout


@pytest.mark.parametrize("request_id", ["", "%", "_", "a b"])
def test_traces_rejects_patterns(ledger: Path, request_id: str) -> None:
    one_line_error(invoke("traces", request_id), "not a request id")


def test_traces_unknown_and_known_ids(ledger: Path) -> None:
    json_error(invoke("traces", "ffffffffff", "--json"), "config", "no single stored trace")
    listed = json.loads(invoke("traces", "--json").stdout)
    assert len(listed) == 1
    tree = invoke("traces", listed[0]["request_id"][:8])
    assert tree.exit_code == 0 and "[attempt] ok" in tree.stdout
    usage_error(invoke("traces", "--limit", "0"), "--limit")


def test_traces_tolerates_rows_without_duration(ledger: Path) -> None:
    with sqlite3.connect(ledger) as conn:  # the column is nullable
        conn.execute("UPDATE traces SET duration_ms = NULL")
    result = invoke("traces")
    assert result.exit_code == 0 and result.stdout.count("\n") == 1


# -- router ----------------------------------------------------------------------------------


def _table(tmp_path: Path, rows: int) -> Path:
    lines = [json.dumps({"prompt_id": str(i), "task": f"t{i % 2}", "prompt": f"question {i}",
                         "quality": {"a": i % 2, "b": 1}, "cost_usd": {"a": 0.001, "b": 0.01}})
             for i in range(rows)]
    return write(tmp_path, "table.jsonl", "\n".join(lines) + "\n")


def router_error(result: Result, *needles: str) -> None:
    """`router` commands report errors like every command: exit 1, `error: ...` on one line."""
    assert result.exit_code == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.mark.parametrize(("content", "needle"), [
    ("", "no rows"),
    ("{bad\n", ":1: invalid JSON"),
    ('{"prompt": "x"}\n', "prompt_id"),
    ('{"prompt_id": "a", "task": "t", "prompt": 5, "quality": {"a": 1}, "cost_usd": {"a": 1}}\n',
     "'prompt' must hold strings"),
    ('{"prompt_id": "a", "task": "t", "prompt": "x", "quality": {"a": "hi"}, '
     '"cost_usd": {"a": 1}}\n', "numeric quality/cost"),
])
def test_router_train_bad_tables(tmp_path: Path, content: str, needle: str) -> None:
    data = write(tmp_path, "t.jsonl", content)
    router_error(invoke("router", "train", "--data", str(data), "--out",
                        str(tmp_path / "r.npz")), needle)


def test_router_missing_and_wrong_files(tmp_path: Path) -> None:
    out = str(tmp_path / "r.npz")
    router_error(invoke("router", "train", "--data", str(tmp_path / "x.parquet"), "--out", out),
                 "does not exist")
    router_error(invoke("router", "train", "--data", str(tmp_path), "--out", out), "folder")
    fake = write(tmp_path, "x.parquet", "not parquet")
    router_error(invoke("router", "train", "--data", str(fake), "--out", out), "Parquet")
    gz = write(tmp_path, "x.jsonl.gz", "not gzip")
    router_error(invoke("router", "eval", "--data", str(gz), "--kind", "knn"), "cannot read")
    usage_error(invoke("router", "train", "--data", str(fake), "--out", str(tmp_path)),
                "is a directory")
    usage_error(invoke("router", "train", "--data", str(fake)), "--out")
    usage_error(invoke("router", "train", "--data", str(fake), "--out", out, "--folds", "1"),
                "--folds")


def test_router_eval_argument_checks(tmp_path: Path) -> None:
    data = _table(tmp_path, 3)
    router_error(invoke("router", "eval", "--data", str(data)), "--router FILE or --kind")
    router_error(invoke("router", "eval", "--data", str(data), "--router", "x.npz",
                        "--kind", "knn"), "--router FILE or --kind")
    router_error(invoke("router", "eval", "--data", str(data), "--router",
                        str(tmp_path / "none.npz")), "does not exist")
    router_error(invoke("router", "eval", "--data", str(data), "--router", str(data)),
                 "not a router file")
    router_error(invoke("router", "eval", "--data", str(data), "--kind", "knn", "--task", "zz"),
                 "task 'zz' not in table")
    router_error(invoke("router", "train", "--data", str(data), "--out", "r.npz",
                        "--lambda", "1", "--target-cost", "1"), "at most one")
    router_error(invoke("router", "train", "--data", str(data), "--out", "r.npz"),
                 "need at least 10")


def test_router_table_with_a_list_for_quality(tmp_path: Path) -> None:
    data = write(tmp_path, "t.jsonl", '{"prompt_id": "a", "task": "t", "prompt": "x", '
                 '"quality": [1], "cost_usd": {"a": 1}}\n')
    router_error(invoke("router", "eval", "--data", str(data), "--kind", "knn"), "quality")


def test_router_train_rejects_a_negative_lambda(tmp_path: Path) -> None:
    data = _table(tmp_path, 24)
    usage_error(invoke("router", "train", "--data", str(data), "--out", str(tmp_path / "r.npz"),
                       "--kind", "knn", "--folds", "2", "--lambda", "-5"), "--lambda")


def test_router_collect_bad_input(tmp_path: Path) -> None:
    prompts = write(tmp_path, "p.jsonl", '{"prompt": "2+2?", "reference": "4"}\n')
    out = str(tmp_path / "o.jsonl")
    base = ("router", "collect", "--out", out)
    router_error(invoke(*base, "--prompts", str(prompts), "--models", "nosuch"), "nosuch")
    router_error(invoke(*base, "--prompts", str(prompts), "--models", ",,"), "at least one")
    router_error(invoke(*base, "--prompts", str(tmp_path / "none.jsonl"), "--models", "m"),
                 "does not exist")
    bad = write(tmp_path, "bad.jsonl", "{bad\n")
    router_error(invoke(*base, "--prompts", str(bad), "--models", "local/smollm2-135m"),
                 "bad.jsonl:1: invalid JSON")
    array = write(tmp_path, "arr.jsonl", "[1]\n")
    router_error(invoke(*base, "--prompts", str(array), "--models", "local/smollm2-135m"),
                 "expected a JSON object")
    noref = write(tmp_path, "noref.jsonl", '{"prompt": "hi"}\n')
    router_error(invoke(*base, "--prompts", str(noref), "--models", "local/smollm2-135m"),
                 "needs a 'reference'")
    for extra, needle in ((("--grader", "bogus"), "unknown grader"),
                          (("--grader", "command"), "--command"),
                          (("--grader", "judge"), "--judge"),
                          (("--grader", "judge", "--judge", "nosuch"), "nosuch")):
        router_error(invoke(*base, "--prompts", str(prompts), "--models", "local/smollm2-135m",
                            *extra), needle)
    cycle = write(tmp_path, "c.yaml", "routes:\n  x: {strategy: fallback, targets: [x]}\n")
    router_error(invoke(*base, "--prompts", str(prompts), "--models", "local/smollm2-135m",
                        "--config", str(cycle)), "cycle")
    usage_error(invoke(*base, "--prompts", str(prompts), "--models", "m", "--concurrency", "0"),
                "--concurrency")


# -- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", [
    (), ("chat",), ("models",), ("report",), ("traces",), ("router",), ("router", "train"),
    ("router", "eval"), ("router", "collect"),
])
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    for flag in ("--help", "-h"):
        result = invoke(*command, flag)
        assert result.exit_code == 0 and result.stdout.startswith("Usage: llmswitch"), (
            result.output, result.exception)


def test_unknown_command() -> None:
    usage_error(invoke("chta"), "No such command 'chta'")


def test_router_collect_unwritable_out_fails_before_any_call(tmp_path: Path) -> None:
    prompts = write(tmp_path, "p.jsonl", '{"prompt_id": "a", "prompt": "2+2?", "reference": "4"}\n')
    blocker = write(tmp_path, "file", "not a folder")
    result = invoke("router", "collect", "--prompts", str(prompts), "--models",
                    "local/smollm2-135m", "--grader", "exact", "--out", str(blocker / "o.jsonl"))
    router_error(result, "--out")


def test_router_train_creates_the_out_folder_first(tmp_path: Path) -> None:
    data = _table(tmp_path, 24)
    out = tmp_path / "routers" / "r.npz"
    result = invoke("router", "train", "--data", str(data), "--out", str(out), "--kind", "knn",
                    "--folds", "2", "--quiet")
    assert result.exit_code == 0, result.stderr
    assert out.is_file()


@pytest.mark.parametrize("stored", ["{not json", '{"name": "x", "children": 5}', "[1, 2]",
                                    '{"status": "ok", "duration_ms": "slow"}'])
def test_traces_with_a_damaged_stored_tree_is_a_config_error(ledger: Path, stored: str) -> None:
    with sqlite3.connect(ledger) as conn:
        conn.execute("UPDATE traces SET trace_json = ?", (stored,))
        request_id = conn.execute("SELECT request_id FROM traces").fetchone()[0]
    one_line_error(invoke("traces", request_id[:8]), "not a readable trace tree")
    if stored.startswith("{") and stored != "{not json":
        return  # JSON objects are printed as stored with --json
    json_error(invoke("traces", request_id[:8], "--json"), "config", "not a readable trace")


@pytest.mark.parametrize("update", ["cost_usd = 'abc'", "input_tokens = 'many'"])
def test_report_over_a_damaged_ledger_row_is_a_config_error(ledger: Path, update: str) -> None:
    with sqlite3.connect(ledger) as conn:
        conn.execute(f"UPDATE attempts SET {update}")
    one_line_error(invoke("report"), "holds a row it cannot read")
    json_error(invoke("report", "--json"), "config", "holds a row it cannot read")


def test_chat_schema_file_with_a_byte_order_mark_is_read(tmp_path: Path) -> None:
    schema = write(tmp_path, "bom.json", b'\xef\xbb\xbf{"type": "object"}')
    # The schema is accepted: the next problem found is the (unknown) model.
    json_error(invoke("chat", "nosuch/model", "hi", "--schema", str(schema), "--json"),
               "model_not_found", "nosuch/model")


def test_an_output_that_cannot_be_written_is_an_error_not_a_silent_success() -> None:
    if not os.path.exists("/dev/full"):
        pytest.skip("needs /dev/full")
    with open("/dev/full", "w") as full:
        done = subprocess.run([sys.executable, "-m", "llmswitch.cli.main", "models", "--json"],
                              check=False, stdout=full, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    assert done.returncode == 1
    assert "could not write the output" in done.stderr and "Traceback" not in done.stderr
    closed = subprocess.run([sys.executable, "-m", "llmswitch.cli.main", "models", "--json"],
                            check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, timeout=120, preexec_fn=lambda: os.close(1))
    assert closed.returncode == 1 and "standard output is closed" in closed.stderr
