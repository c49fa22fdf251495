"""`llmswitch ui`: refuses to start without the admin key; serves the dashboard with it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from llmswitch.cli.main import cli


def test_ui_needs_the_admin_key(tmp_path: Path) -> None:
    env = {"LLMSWITCH_ADMIN_KEY": "", "LLMSWITCH_LEDGER": str(tmp_path / "l.sqlite")}
    result = CliRunner().invoke(cli, ["ui", "--port", "0"], env=env)
    assert result.exit_code == 1
    assert "admin key" in result.stderr and "LLMSWITCH_ADMIN_KEY" in result.stderr
    assert "Traceback" not in result.output


def test_ui_serves_the_dashboard_over_a_ledger(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn", reason="llmswitch ui runs on uvicorn (extra gateway)")
    env = {**os.environ, "LLMSWITCH_ADMIN_KEY": "cli-admin-key-0123456789",
           "LLMSWITCH_LEDGER": str(tmp_path / "l.sqlite")}
    proc = subprocess.Popen([sys.executable, "-m", "llmswitch.cli.main", "ui", "--port", "0"],
                            env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+)/ui", line)
        assert match, line
        deadline = time.monotonic() + 20
        with httpx.Client(base_url=match.group(1), timeout=10) as http:
            while True:
                try:
                    root = http.get("/")
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline
                    time.sleep(0.1)
            assert root.status_code == 303 and root.headers["location"] == "/ui"
            assert http.get("/ui").headers["location"].startswith("/ui/login")
            signed = http.post("/ui/login", data={"key": "cli-admin-key-0123456789"})
            assert signed.status_code == 303
            page = http.get("/ui")
            assert page.status_code == 200 and "No calls recorded" in page.text
    finally:
        proc.terminate()
        proc.wait(20)
