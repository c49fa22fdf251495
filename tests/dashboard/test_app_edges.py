"""The dashboard against hostile or odd input: where sign-in may send the browser, what the
sign-in page may show, run folders written by hand, cursors and search text the database
cannot hold, and an unexpected failure answered as a page, not a bare 500."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from llmswitch.dashboard import create_dashboard
from llmswitch.dashboard.app import Dashboard
from tests.dashboard.conftest import PG_ENV, dashboard_dsn
from tests.support.ledger_seed import Seeded, seed_ledger

ADMIN = "admin-key-for-edge-tests-0123456789"


@pytest.fixture
def ledger(tmp_path: Path) -> tuple[str, Seeded]:
    url = str(tmp_path / "ledger.sqlite")
    return url, seed_ledger(url, 60, days=2, runs=1)


def dashboard(url: str, runs: tuple[str, ...] = ()) -> Dashboard:
    return create_dashboard({"observe": {"ledger": url}}, runs=runs,
                            env={"LLMSWITCH_ADMIN_KEY": ADMIN})


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dash")


async def sign_in(http: httpx.AsyncClient, next_url: str | None = None) -> httpx.Response:
    data = {"key": ADMIN, **({"next": next_url} if next_url is not None else {})}
    return await http.post("/ui/login", data=data)


@pytest.mark.parametrize("next_url", [
    "/ui\r\nSet-Cookie: planted=1",  # was a 500 with a traceback (invalid header value)
    "/ui/../admin/keys",  # the browser resolves it to /admin/keys
    "/ui/%2e%2e/%2e%2e/v1/models",
    "/uiother",
    "/ui@evil.example",
    "https://evil.example/ui",
    "//evil.example/ui",
    "/ui/\tx",
])
async def test_sign_in_only_ever_sends_the_browser_inside_the_dashboard(
        ledger: tuple[str, Seeded], next_url: str) -> None:
    url, _ = ledger
    async with client(dashboard(url)) as http:
        response = await sign_in(http, next_url)
        assert response.status_code == 303, response.text
        location = response.headers["location"]
        assert location == "/ui", location
        assert "planted" not in response.headers.get("set-cookie", "")


async def test_a_deep_link_with_a_search_survives_signing_in(
        ledger: tuple[str, Seeded]) -> None:
    url, _ = ledger
    async with client(dashboard(url)) as http:
        first = await http.get("/ui/requests?q=openai/gpt-4o-mini&status=ok")
        assert first.status_code == 303
        login = first.headers["location"]
        assert login.startswith("/ui/login?next=")
        page = await http.get(login)
        assert 'name="next" value="/ui/requests?q=openai/gpt-4o-mini&amp;status=ok"' in \
            page.text, page.text
        signed = await sign_in(http, "/ui/requests?q=openai/gpt-4o-mini&status=ok")
        assert signed.headers["location"] == "/ui/requests?q=openai/gpt-4o-mini&status=ok"
        unicode = await sign_in(http, "/ui/requests?q=модель")
        assert unicode.headers["location"] == "/ui/requests?q=" + quote("модель")


async def test_the_sign_in_page_shows_nothing_of_the_server(ledger: tuple[str, Seeded]) -> None:
    url, _ = ledger
    async with client(dashboard(url)) as http:
        page = await http.get("/ui/login")
        wrong = await http.post("/ui/login", data={"key": "nope"})
        for text in (page.text, wrong.text):
            assert url not in text and "ledger" not in text.lower(), text
        assert (await sign_in(http)).status_code == 303
        assert url in (await http.get("/ui")).text  # signed in: the footer names it


def _run(folder: Path, name: str, manifest: Any) -> None:
    (folder / name).mkdir(parents=True)
    text = manifest if isinstance(manifest, str) else json.dumps(manifest)
    (folder / name / "run.json").write_text(text, encoding="utf-8")


async def test_plans_survive_run_folders_of_any_shape(ledger: tuple[str, Seeded],
                                                      tmp_path: Path) -> None:
    url, _ = ledger
    runs = tmp_path / "runs"
    _run(runs, "failed", {"run_id": "run-failed", "status": "failed", "streams": {
        "good": {"status": "done", "provider": "openai", "model": "gpt-4o-mini",
                 "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.00001},
        "bad": {"status": "failed", "error": "overloaded"}}})
    _run(runs, "list", {"run_id": "run-list", "streams": ["a", "b"]})  # was a 500
    _run(runs, "strings", {"run_id": "run-strings", "status": 5,
                           "streams": {"s": "done"}})  # was a 500
    _run(runs, "tokens", {"run_id": "run-tokens", "streams": {"t": {
        "status": "done", "provider": "openai", "model": "gpt-4o", "input_tokens": "many",
        "cost_usd": "lots"}}})
    _run(runs, "broken", "{not json")
    _run(runs, "nameless", {"streams": {}})
    async with client(dashboard(url, runs=(str(runs),))) as http:
        await sign_in(http)
        listed = await http.get("/ui/plans")
        assert listed.status_code == 200, listed.text
        for run_id in ("run-failed", "run-list", "run-strings", "run-tokens"):
            assert run_id in listed.text
            page = await http.get(f"/ui/plans/{run_id}")
            assert page.status_code == 200, (run_id, page.text)
        failed = (await http.get("/ui/plans/run-failed")).text
        assert "failed" in failed and "openai/gpt-4o-mini" in failed
        data = await http.get("/ui/api/plans")
        assert data.status_code == 200 and {"run-list", "run-failed"} <= {
            r["run_id"] for r in data.json()["data"]}


async def test_a_cursor_past_the_databases_integers_is_ignored(
        ledger: tuple[str, Seeded]) -> None:
    url, _ = ledger
    async with client(dashboard(url)) as http:
        await sign_in(http)
        for cursor in ("1:99999999999999999999999", "nan:1", "inf:1", "1e400:-5", ":"):
            page = await http.get("/ui/requests", params={"before": cursor})
            assert page.status_code == 200, (cursor, page.text)


async def test_an_unexpected_failure_is_a_page_with_the_security_headers(
        ledger: tuple[str, Seeded], monkeypatch: pytest.MonkeyPatch) -> None:
    url, _ = ledger
    app = dashboard(url)

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr("llmswitch.dashboard.app.overview", broken)
    async with client(app) as http:
        await sign_in(http)
        page = await http.get("/ui")
        assert page.status_code == 500
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
        assert "boom" not in page.text and "Traceback" not in page.text
        data = await http.get("/ui/api/overview")
        assert data.status_code == 500 and data.json()["error"]["type"] == "internal"


@pytest.fixture
def pg_ledger() -> tuple[str, Seeded]:
    dsn = os.environ.get(PG_ENV)
    if not dsn:
        pytest.skip(f"PostgreSQL ledger tests need {PG_ENV} (run .ci/postgres.sh)")
    url = dashboard_dsn(dsn)
    return url, seed_ledger(url, 30, days=1, runs=1)


@pytest.mark.parametrize("path", [
    "/ui/requests?q=%00", "/ui/requests?route=a%00b", "/ui/requests?key=%00",
    "/ui/requests/ab%00cd", "/ui/plans/run%00", "/ui/api/requests/x%00",
    "/ui/api/plans/x%00", "/ui/savings?baseline=%00",
])
async def test_nul_in_search_or_ids_matches_nothing_on_postgresql(
        pg_ledger: tuple[str, Seeded], path: str) -> None:
    url, _ = pg_ledger  # PostgreSQL refuses NUL in text: each of these was a 500
    async with client(dashboard(url)) as http:
        await sign_in(http)
        page = await http.get(path)
        assert page.status_code in (200, 404), (path, page.status_code, page.text)


async def test_a_failed_stream_shows_why_it_failed(ledger: tuple[str, Seeded],
                                                   tmp_path: Path) -> None:
    """A stream that failed before (or without) a ledger row, such as a deadline or a
    rejected output, has its reason only in run.json: the run page shows it."""
    url, _ = ledger
    runs = tmp_path / "runs"
    _run(runs, "r", {"run_id": "run-with-failure", "status": "failed", "streams": {
        "ok": {"status": "done", "provider": "openai", "model": "gpt-4o-mini",
               "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.00001, "error": None},
        "late": {"status": "failed", "model": None, "error": {
            "type": "timeout", "message": "stream late: its deadline of 30 s passed",
            "provider": None, "model": None, "status": None}},
        "after": {"status": "skipped", "error": {
            "type": "skipped", "message": "depends on late, which failed"}}}})
    async with client(dashboard(url, runs=(str(runs),))) as http:
        await sign_in(http)
        page = await http.get("/ui/plans/run-with-failure")
        assert page.status_code == 200
        assert "timeout: stream late: its deadline of 30 s passed" in page.text, page.text
        assert "depends on late, which failed" in page.text
        data = (await http.get("/ui/api/plans/run-with-failure")).json()
        late = next(s for s in data["streams"] if s["stream"] == "late")
        assert late["status"] == "failed" and late["errors"] == [
            "timeout: stream late: its deadline of 30 s passed"]


async def test_a_request_just_answered_by_the_gateway_opens_at_once(tmp_path: Path) -> None:
    """The ledger writes in batches (observe.flush_interval); the dashboard served by the
    gateway writes what is queued before it reads requests, so the trace id of an answer
    opens on its page at once (it was a 404 until the next batch)."""
    from llmswitch.gateway.app import create_app
    from tests.support.mock_upstream import MockUpstream

    ledger = str(tmp_path / "l.sqlite")
    async with MockUpstream() as upstream:
        app = create_app({
            "providers": {"openai": {"base_url": upstream.base_url, "timeout": 30}},
            "models": {"m": {"provider": "openai", "name": "m", "input_per_mtok": 1,
                             "output_per_mtok": 2}},
            "observe": {"ledger": ledger, "flush_interval": 60},
            "gateway": {"access_log": False}},
            env={"OPENAI_API_KEY": "sk-up", "LLMSWITCH_ADMIN_KEY": ADMIN})
        async with client(app) as http:
            answer = await http.post("/v1/chat/completions", json={
                "model": "m", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {ADMIN}"})
            trace_id = answer.headers["x-llmswitch-trace-id"]
            await sign_in(http)
            page = await http.get(f"/ui/requests/{trace_id}")
            assert page.status_code == 200, page.text
            assert "openai" in page.text and ">m<" in page.text
            assert trace_id in (await http.get("/ui/requests")).text
            assert (await http.get(f"/ui/api/requests/{trace_id}")).status_code == 200
        await app.aclose()


async def test_an_expired_key_can_still_be_revoked_from_its_row(
        ledger: tuple[str, Seeded]) -> None:
    import re
    import time

    from llmswitch.gateway.keys import KeySpec, KeyStore

    url, _ = ledger
    store = KeyStore(url)
    store.create(KeySpec("old", expires_at=time.time() - 1), now=time.time() - 60)
    store.close()
    async with client(dashboard(url)) as http:
        await sign_in(http)
        page = (await http.get("/ui/keys")).text
        row = next(r for r in page.split("<tr>") if ">old<" in r)
        assert "expired" in row and "Revoke" in row
        assert not re.search(r"<button[^>]*disabled[^>]*>Revoke", row), row
        csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', page)
        key_id = re.search(r'/ui/keys/(key_[0-9a-f]+)/revoke', row)
        assert csrf and key_id
        done = await http.post(f"/ui/keys/{key_id.group(1)}/revoke",
                               data={"csrf": csrf.group(1)})
        assert done.status_code == 303
        after = (await http.get("/ui/keys")).text
        assert "revoked" in next(r for r in after.split("<tr>") if ">old<" in r)
