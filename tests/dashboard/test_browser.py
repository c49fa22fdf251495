"""The dashboard in a real headless Chromium (Debian's `chromium`, driven by Playwright with the
system browser: nothing is downloaded), over a real `llmswitch serve` process with a seeded
ledger, the fault-injecting mock upstream behind it and the admin key set.

Every page loads without console errors; charts and tables show the seeded numbers; a request
made through the gateway opens by the trace id of its `x-llmswitch-trace-id` header and shows
each attempt's model, provider and error type; a key created and revoked on the page is
refused by the API within 5 s; a wrong admin key sees nothing. Screenshots of every page go to
`docs/img/dashboard/latest/` (or `$LLMSWITCH_SCREENSHOTS`); docs/dashboard.md shows copies.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.ledger_seed import Seeded, seed_ledger
from tests.support.mock_upstream import MockUpstream

CHROMIUM = os.environ.get("LLMSWITCH_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ADMIN = "admin-browser-test-key-0123456789abcdef"
ROOT = Path(__file__).resolve().parents[2]
SHOTS = Path(os.environ.get("LLMSWITCH_SCREENSHOTS") or ROOT / "docs/img/dashboard/latest")
PRICES = {"context_window": 8000, "max_output_tokens": 1000, "input_per_mtok": 2.5,
          "output_per_mtok": 10.0}

if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install chromium (.ci/run installs it)",
                allow_module_level=True)
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="the playwright package drives the browser (dev extra)")


class Upstream:
    """The mock OpenAI-compatible upstream on its own event loop thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.server = MockUpstream()
        asyncio.run_coroutine_threadsafe(self.server.__aenter__(), self.loop).result(10)
        self.server.script("primary", ["503"])  # overloaded: the route falls back

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.__aexit__(None, None, None),
                                         self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class Site:
    """A running gateway with a seeded ledger."""

    def __init__(self, base: str, seeded: Seeded, trace_id: str) -> None:
        self.base = base
        self.seeded = seeded
        self.trace_id = trace_id


def _start_gateway(folder: Path, upstream: Upstream) -> tuple[subprocess.Popen[str], str]:
    config = folder / "llmswitch.yaml"
    ledger = folder / "ledger.sqlite"
    models = "\n".join(f"  {n}: {{provider: openai, name: {n}, context_window: 8000, "
                       "max_output_tokens: 1000, input_per_mtok: 2.5, output_per_mtok: 10}"
                       for n in ("primary", "backup"))
    config.write_text(
        f"providers:\n  openai: {{base_url: '{upstream.server.base_url}', timeout: 30}}\n"
        f"models:\n{models}\n"
        "routes:\n  answer: {strategy: fallback, targets: [primary, backup], retries: 0}\n"
        f"observe: {{ledger: '{ledger}', flush_interval: 0.05}}\n"
        "gateway: {access_log: false}\n", encoding="utf-8")
    env = {**os.environ, "LLMSWITCH_ADMIN_KEY": ADMIN, "OPENAI_API_KEY": "sk-upstream-test"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "llmswitch.cli.main", "serve", "--config", str(config),
         "--port", "0"], env=env, cwd=folder, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        match = re.search(r"listening on (http://\S+?:\d+)", line)
        if match:
            threading.Thread(target=proc.stderr.read, daemon=True).start()  # keep it drained
            return proc, match.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError("llmswitch serve did not start")


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    folder = Path(tempfile.mkdtemp(prefix="llmswitch-dash-"))
    seeded = seed_ledger(str(folder / "ledger.sqlite"), 300, days=3, runs=2)
    run_dir = folder / "runs" / seeded.runs[0]  # the first run's folder, as `plan run` leaves it
    run_dir.mkdir(parents=True)
    (run_dir / "run.json").write_text(json.dumps({
        "run_id": seeded.runs[0], "status": "done", "run_dir": str(run_dir),
        "streams": {s: {"status": "done"} for s in ("migration", "data_layer", "tests")}}))
    upstream = Upstream()
    proc, base = _start_gateway(folder, upstream)
    try:
        with httpx.Client(base_url=base, timeout=30) as http:
            answer = http.post("/v1/chat/completions", headers={
                "authorization": f"Bearer {ADMIN}"}, json={
                "model": "answer", "messages": [{"role": "user", "content": "hi"}]})
            assert answer.status_code == 200, answer.text
            trace_id = answer.headers["x-llmswitch-trace-id"]
        _wait_for_row(folder / "ledger.sqlite", trace_id)
        yield Site(base, seeded, trace_id)
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        upstream.close()


def _wait_for_row(ledger: Path, trace_id: str) -> None:
    import sqlite3

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        with sqlite3.connect(ledger) as conn:
            if conn.execute("SELECT 1 FROM traces WHERE request_id = ?",
                            (trace_id,)).fetchone():
                return
        time.sleep(0.1)
    raise AssertionError("the gateway's ledger row did not arrive")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    profile = tempfile.mkdtemp(prefix="llmswitch-chromium-")
    with playwright_api.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=ARGS,
            viewport={"width": 1280, "height": 900})
        try:
            yield context
        finally:
            context.close()


class Tab:
    """A page that records console errors and uncaught exceptions."""

    def __init__(self, context: Any) -> None:
        self.page = context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def visit(self, url: str, shot: str | None = None) -> str:
        response = self.page.goto(url)
        assert response is not None and response.ok, url
        assert self.errors == [], (url, self.errors)
        if shot:
            screenshot(self.page, shot)
        text: str = self.page.inner_text("body")
        return text


def screenshot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    ignore = SHOTS / ".gitignore"
    if SHOTS.name == "latest" and not ignore.exists():
        ignore.write_text("*\n", encoding="utf-8")  # fresh shots are not committed
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(tab: Tab, base: str, key: str = ADMIN) -> str:
    tab.visit(f"{base}/ui/login")
    tab.page.fill("input[name=key]", key)
    tab.page.click("button[type=submit]")
    tab.page.wait_for_load_state()
    text: str = tab.page.inner_text("body")
    return text


def test_a_wrong_admin_key_sees_nothing(site: Site, browser: Any) -> None:
    tab = Tab(browser)
    text = sign_in(tab, site.base, "not-the-admin-key")
    assert tab.page.url.startswith(f"{site.base}/ui/login")
    assert "That is not the admin key." in text
    assert "gpt-4o" not in tab.page.content() and "$" not in text
    tab.page.goto(f"{site.base}/ui/requests")
    assert "/ui/login" in tab.page.url
    assert tab.errors == []
    screenshot(tab.page, "login-refused")
    tab.page.close()


def test_every_page_loads_and_shows_the_seeded_numbers(site: Site, browser: Any) -> None:
    tab = Tab(browser)
    sign_in(tab, site.base)
    cookie = next(c for c in browser.cookies() if c["name"] == "llmswitch_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    rows = site.seeded.rows
    text = tab.visit(f"{site.base}/ui", "overview")
    for model in ("openai/gpt-4o-mini", "openai/gpt-4o", "anthropic/claude-haiku-4-5"):
        spent = sum(r["cost_usd"] for r in rows if f"{r['provider']}/{r['model']}" == model)
        assert model in text and f"${spent:.6f}" in text, model
    titles = tab.page.locator("svg.chart rect title").all_text_contents()
    for model in ("openai/gpt-4o-mini", "openai/gpt-4o:", "anthropic/claude-haiku-4-5"):
        assert any(model in t for t in titles), model  # the stacked chart has its columns
    tab.visit(f"{site.base}/ui?period=24h&by=key", "overview-by-key")
    text = tab.visit(f"{site.base}/ui/savings", "savings")
    assert "answer" in text and "cheap" in text and "saved" in text
    assert tab.page.locator("svg.chart rect").count() > 0
    text = tab.visit(f"{site.base}/ui/requests", "requests")
    assert site.trace_id in text
    text = tab.visit(f"{site.base}/ui/requests?q=gpt-4o-mini")
    assert "openai/gpt-4o-mini" in text and "anthropic/claude-haiku-4-5" not in text
    text = tab.visit(f"{site.base}/ui/plans", "plans")
    for run_id in site.seeded.runs:
        assert run_id in text
    tab.page.click(f"text={site.seeded.runs[0]}")
    tab.page.wait_for_load_state()
    text = tab.page.inner_text("body")
    assert "migration" in text and tab.errors == []
    assert f"runs/{site.seeded.runs[0]}" in text and "done" in text  # joined with run.json
    screenshot(tab.page, "plan-run")
    tab.page.set_viewport_size({"width": 390, "height": 844})  # a phone
    tab.visit(f"{site.base}/ui", "overview-phone")
    tab.page.set_viewport_size({"width": 1280, "height": 900})
    tab.page.close()


def test_a_trace_opens_with_its_attempts(site: Site, browser: Any) -> None:
    tab = Tab(browser)
    sign_in(tab, site.base)
    tab.visit(f"{site.base}/ui/requests?q={site.trace_id}")
    tab.page.click(f"a.trace:has-text('{site.trace_id}')")
    tab.page.wait_for_load_state()
    assert tab.page.url.endswith(f"/ui/requests/{site.trace_id}") and tab.errors == []
    screenshot(tab.page, "request")
    cells = [row.inner_text().split("\t") for row in
             tab.page.locator("#attempts tbody tr").all()]
    assert [(c[2], c[3], c[5]) for c in cells] == [("openai", "primary", "overloaded"),
                                                   ("openai", "backup", "-")]
    tree = tab.page.inner_text("#tree")
    assert "fallback" in tree and "backup answered after 1 failed attempt" in tree
    tab.page.close()


def test_a_key_revoked_on_the_page_is_refused_by_the_api(site: Site, browser: Any) -> None:
    tab = Tab(browser)
    sign_in(tab, site.base)
    tab.visit(f"{site.base}/ui/keys")
    tab.page.fill("form.create input[name=name]", "browser-team")
    tab.page.fill("form.create input[name=budget_usd]", "2.5")
    tab.page.click("form.create button[type=submit]")
    tab.page.wait_for_load_state()
    secret = tab.page.inner_text("#new-key").strip()
    assert secret.startswith("sk-llms-") and tab.errors == []
    with httpx.Client(base_url=site.base, timeout=10) as http:
        auth = {"authorization": f"Bearer {secret}"}
        assert http.get("/v1/models", headers=auth).status_code == 200
        tab.visit(f"{site.base}/ui/keys", "keys")
        assert secret not in tab.page.content()
        row = tab.page.locator("table.keys tbody tr", has_text="browser-team")
        row.get_by_role("button", name="Revoke", exact=True).click()
        tab.page.wait_for_load_state()
        revoked_at = time.monotonic()
        status = 200
        while time.monotonic() - revoked_at < 5 and status != 401:
            status = http.get("/v1/models", headers=auth).status_code
            time.sleep(0.1)
        assert status == 401
    text = tab.page.inner_text("body")
    assert "revoked" in text and tab.errors == []
    screenshot(tab.page, "keys-revoked")
    tab.page.close()


def test_every_page_fits_a_phone_screen(site: Site, browser: Any) -> None:
    """On a phone only tables scroll sideways, never the page (the baseline picker listed
    long catalog ids and pushed the savings and plan pages wider than the screen)."""
    tab = Tab(browser)
    sign_in(tab, site.base)
    tab.page.set_viewport_size({"width": 360, "height": 740})
    try:
        for path in ("/ui", "/ui/savings", "/ui/requests", f"/ui/requests/{site.trace_id}",
                     "/ui/keys", "/ui/plans", f"/ui/plans/{site.seeded.runs[0]}"):
            tab.visit(f"{site.base}{path}")
            width = tab.page.evaluate("document.documentElement.scrollWidth")
            assert width <= 360, (path, width)
    finally:
        tab.page.set_viewport_size({"width": 1280, "height": 900})
        tab.page.close()
