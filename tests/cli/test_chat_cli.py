"""`llmswitch chat` and `llmswitch models` as a user runs them: real process, real socket."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.fixtures import load
from tests.support.replay import Scripted, serving

CONTRACT = {"text", "model", "provider", "finish_reason", "tool_calls", "usage", "cost_usd",
            "latency_ms", "ttft_ms"}
USAGE = {"input_tokens", "output_tokens", "cached_input_tokens", "reasoning_tokens"}
ERROR = {"type", "message", "provider", "model", "status"}


def run(
    *args: str, env: dict[str, str] | None = None, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "llmswitch.cli.main", *args],
        capture_output=True, text=True, env=full_env, input=stdin, timeout=60, check=False,
    )


def as_json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(lines[0])
    return data


@pytest.mark.parametrize("stream", [False, True])
def test_chat_json_contract(stream: bool) -> None:
    name = "openai/chat_stream_gpt35" if stream else "openai/chat_plain_raw"
    with serving(Scripted.from_fixture(load(name), chunk_size=50)) as server:
        proc = run("chat", "openai/gpt-3.5-turbo", "Count from 1 to 5", "--json",
                   *(["--stream"] if stream else []),
                   env={"LLMSWITCH_OPENAI_BASE_URL": server.url + "/v1",
                        "OPENAI_API_KEY": "test"})
    assert proc.returncode == 0, proc.stderr
    data = as_json(proc)
    assert set(data) >= CONTRACT
    assert set(data["usage"]) == USAGE
    assert data["provider"] == "openai" and data["model"] == "gpt-3.5-turbo"
    assert data["finish_reason"] == "stop"
    assert data["text"]
    assert data["cost_usd"] is not None and data["cost_usd"] > 0
    assert data["trace"]["kind"] == "attempt"


def test_chat_json_tool_calls() -> None:
    with serving(Scripted.from_fixture(load("openai/chat_tools_parallel"))) as server:
        proc = run("chat", "openai/gpt-4o", "x", "--json",
                   env={"LLMSWITCH_OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "t"})
    data = as_json(proc)
    assert data["finish_reason"] == "tool_calls"
    assert [c["name"] for c in data["tool_calls"]] == ["secret_retrieval_tool"] * 2
    assert json.loads(data["tool_calls"][0]["arguments"]) == {"password": "mellon"}


@pytest.mark.parametrize(("fixture", "error_type", "status"), [
    ("openai/chat_err_404_model_not_found", "model_not_found", 404),
    ("openrouter/err_429_rate_limit_headers", "rate_limited", 429),
    ("openrouter/err_401", "authentication", 401),
])
def test_chat_json_error_contract(fixture: str, error_type: str, status: int) -> None:
    with serving(Scripted.from_fixture(load(fixture))) as server:
        proc = run("chat", "openai/gpt-4o", "x", "--json",
                   env={"LLMSWITCH_OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "t"})
    assert proc.returncode == 1
    error = as_json(proc)["error"]
    assert set(error) >= ERROR
    assert (error["type"], error["status"], error["provider"]) == (error_type, status, "openai")
    assert "Traceback" not in proc.stderr


def test_stream_cut_mid_way_fails_loudly() -> None:
    fixture = load("openai/chat_stream_gpt35")
    size = len(Scripted.from_fixture(fixture).body)
    with serving(Scripted.from_fixture(fixture, chunk_size=64, cut_after=size // 2)) as server:
        proc = run("chat", "openai/gpt-4o", "x", "--stream",
                   env={"LLMSWITCH_OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "t"})
    assert proc.returncode == 1
    assert "error:" in proc.stderr and "Traceback" not in proc.stderr


def test_unknown_bare_model_suggests() -> None:
    proc = run("chat", "gpt4o-mini", "hi", "--json")
    error = as_json(proc)["error"]
    assert proc.returncode == 1
    assert error["type"] == "model_not_found"
    assert "did you mean" in error["message"] and "gpt-4o-mini" in error["message"]


def test_missing_key_names_env_var() -> None:
    proc = run("chat", "deepseek/deepseek-chat", "hi")
    assert proc.returncode == 1
    assert "DEEPSEEK_API_KEY" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unreachable_base_url() -> None:
    proc = run("chat", "openai/gpt-4o", "hi", "--json",
               env={"LLMSWITCH_OPENAI_BASE_URL": "http://127.0.0.1:9/v1", "OPENAI_API_KEY": "t"})
    error = as_json(proc)["error"]
    assert error["type"] == "connection"


def test_non_json_response() -> None:
    with serving(Scripted(200, {"content-type": "text/plain"}, b"upstream exploded")) as server:
        proc = run("chat", "openai/gpt-4o", "hi", "--json",
                   env={"LLMSWITCH_OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "t"})
    assert as_json(proc)["error"]["type"] == "bad_response"


@pytest.mark.parametrize(("content", "needle"), [
    ("providers: [unclosed", "not valid YAML at line 1"),
    ("providers:\n  openai:\n    timeout: -3\n", "providers.openai.timeout"),
    ("routes:\n  r:\n    targets: [a]\n", "routes.r.strategy"),
    ("bogus_section: 1\n", "bogus_section: unknown key"),
    ("models:\n  x:\n    provider: openai\n    contxt_window: 5\n", "contxt_window"),
    ("providers:\n  openai:\n    api_key: ${NOT_SET_ANYWHERE}\n", "NOT_SET_ANYWHERE is not set"),
])
def test_bad_config_is_explained(tmp_path: Path, content: str, needle: str) -> None:
    path = tmp_path / "llmswitch.yaml"
    path.write_text(content)
    proc = run("chat", "openai/gpt-4o", "hi", "--config", str(path))
    assert proc.returncode == 1
    assert needle in proc.stderr and str(path) in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_config_file() -> None:
    proc = run("chat", "openai/gpt-4o", "hi", "--config", "/nonexistent/llmswitch.yaml", "--json")
    assert as_json(proc)["error"]["type"] == "config"


def test_alias_from_config_and_stdin_prompt(tmp_path: Path) -> None:
    with serving(Scripted.from_fixture(load("openai/chat_plain_raw"))) as server:
        path = tmp_path / "c.yaml"
        path.write_text(
            "providers:\n  openai:\n    base_url: ${BASE}\n    api_key_env: MY_KEY\n"
            "models:\n  fast:\n    model: openai/gpt-4o-mini\n    settings: {temperature: 0}\n"
        )
        proc = run("chat", "fast", "-", "--config", str(path), "--json",
                   env={"BASE": server.url + "/v1", "MY_KEY": "k"}, stdin="Hello from stdin")
        body = json.loads(server.received[0].body)
    assert proc.returncode == 0, proc.stderr
    assert body["messages"][0]["content"] == "Hello from stdin"
    assert body["temperature"] == 0 and body["model"] == "gpt-4o-mini"


def test_models_lists_catalog_json() -> None:
    proc = run("models", "--json")
    data = as_json(proc)
    providers = {m["provider"] for m in data["models"]}
    assert {"openai", "anthropic", "gemini", "deepseek", "bedrock", "openrouter", "ollama",
            "local", "azure"} <= providers
    assert len(data["models"]) >= 40


def test_models_filter_and_unknown_provider() -> None:
    only = as_json(run("models", "--provider", "anthropic", "--json"))
    assert {m["provider"] for m in only["models"]} == {"anthropic"}
    bad = run("models", "--provider", "nope")
    assert bad.returncode == 1 and "unknown provider" in bad.stderr


def test_help_lists_commands() -> None:
    proc = run("--help")
    assert "chat" in proc.stdout and "models" in proc.stdout


def test_meta_reaches_the_request_metadata(tmp_path: Path) -> None:
    with serving(Scripted.from_fixture(load("openai/chat_plain_raw"))) as server:
        path = tmp_path / "c.yaml"
        path.write_text(
            "providers:\n  openai:\n    base_url: ${BASE}\n"
            "routes:\n  by-task:\n    strategy: route\n    by: task\n"
            "    tasks:\n      sql: {target: openai/gpt-4o}\n"
            "      chat: {target: openai/gpt-4o-mini}\n"
        )
        proc = run("chat", "by-task", "count users", "--config", str(path), "--json",
                   "--meta", "task=sql", env={"BASE": server.url + "/v1", "OPENAI_API_KEY": "k"})
        body = json.loads(server.received[0].body)
    assert proc.returncode == 0, proc.stderr
    assert body["model"] == "gpt-4o"
    assert as_json(proc)["trace"]["attributes"]["llmswitch.chosen"] == "openai/gpt-4o"
