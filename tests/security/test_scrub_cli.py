"""A key echoed by a provider never reaches the CLI's output: `chat --json`, stderr, `--trace`,
and `llmswitch traces` (list and tree) over the ledger the chat wrote. Real processes, real
loopback server."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.fixtures import load
from tests.support.replay import Scripted, serving

KEY = "sk-proj-Qm4Xr8Tz1Vb6Nc3Lp9Ws2Ek7Hj5Gd0Fa8Sy4Ui1Oo6Pq3Lm9Kn2Bv7Cx5Zz"


def run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmswitch.cli.main", *args],
                          capture_output=True, text=True, env={**os.environ, **env},
                          timeout=60, check=False)


def echo_401(kind: str) -> Scripted:
    if kind == "json":
        body = json.dumps({"error": {"message": f"Incorrect API key: Authorization: Bearer {KEY}",
                                     "type": "invalid_request_error"}})
        return Scripted(401, {"content-type": "application/json"}, body.encode())
    page = f"<html><body><h1>401</h1><pre>Authorization: Bearer {KEY}</pre></body></html>"
    return Scripted(401, {"content-type": "text/html"}, page.encode())


def assert_clean(where: str, text: str) -> None:
    assert KEY not in text and KEY[:16] not in text, f"key in {where}: {text[:500]}"


def all_traces(config: Path, env: dict[str, str]) -> str:
    listed = run("traces", "--config", str(config), "--json", env=env)
    assert listed.returncode == 0, listed.stderr
    out = [listed.stdout, listed.stderr]
    for row in json.loads(listed.stdout):
        for extra in ((), ("--json",)):
            shown = run("traces", row["request_id"], "--config", str(config), *extra, env=env)
            assert shown.returncode == 0, shown.stderr
            out += [shown.stdout, shown.stderr]
    assert len(out) > 2, "no trace was stored"
    return "\n".join(out)


def ledger_rows(config: Path) -> str:
    db = config.parent / ".llmswitch" / "ledger.sqlite"
    conn = sqlite3.connect(db)
    try:
        return json.dumps([*conn.execute("SELECT * FROM attempts"),
                           *conn.execute("SELECT * FROM traces")], default=str)
    finally:
        conn.close()


@pytest.mark.parametrize("kind", ["json", "html"])
def test_chat_error_output_and_stored_traces_hold_no_key(kind: str, tmp_path: Path) -> None:
    config = tmp_path / "llmswitch.yaml"
    config.write_text("observe: {flush_interval: 0.05}\n", encoding="utf-8")
    with serving(echo_401(kind)) as server:
        env = {"LLMSWITCH_OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": KEY}
        as_json = run("chat", "openai/gpt-4o-mini", "hi", "--json", "--trace",
                      "--config", str(config), env=env)
        plain = run("chat", "openai/gpt-4o-mini", "hi", "--trace", "--stream",
                    "--config", str(config), env=env)
    assert as_json.returncode == 1 and plain.returncode == 1
    assert json.loads(as_json.stdout)["error"]["type"] == "authentication"
    assert "error: " in plain.stderr, plain.stderr
    for where, text in {"--json stdout": as_json.stdout, "--json stderr": as_json.stderr,
                        "stderr": plain.stderr, "stdout": plain.stdout,
                        "traces": all_traces(config, env), "ledger": ledger_rows(config)}.items():
        assert_clean(where, text)


def test_fallback_trace_after_an_echoing_first_target_holds_no_key(tmp_path: Path) -> None:
    config = tmp_path / "llmswitch.yaml"
    config.write_text(
        "observe: {flush_interval: 0.05}\n"
        "routes:\n  r:\n    strategy: fallback\n    retries: 0\n"
        "    targets: [openai/gpt-4o-mini, openai/gpt-4o]\n"
        "    fallback_on: [authentication]\n", encoding="utf-8")
    ok = Scripted.from_fixture(load("openai/chat_plain_gpt4o"))
    with serving(echo_401("json"), ok) as server:
        env = {"LLMSWITCH_OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": KEY}
        proc = run("chat", "r", "hi", "--json", "--trace", "--config", str(config), env=env)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [c["status"] for c in data["trace"]["children"]] == ["error", "ok"]
    for where, text in {"stdout": proc.stdout, "stderr (--trace)": proc.stderr,
                        "traces": all_traces(config, env), "ledger": ledger_rows(config)}.items():
        assert_clean(where, text)
