"""The dashboard app over HTTP (in-process ASGI): sign-in, sessions, CSRF, keys through the
gateway's key store, escaping, and the numbers in the page text."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmswitch.dashboard import create_dashboard
from llmswitch.dashboard.app import Dashboard
from llmswitch.gateway.keys import KeySpec, KeyStore, hash_secret
from tests.support.ledger_seed import Seeded, seed_ledger

ADMIN = "admin-key-for-tests-0123456789"
PAGES = ["/ui", "/ui/savings", "/ui/requests", "/ui/keys", "/ui/plans"]


@pytest.fixture
def ledger(tmp_path: Path) -> tuple[str, Seeded]:
    url = str(tmp_path / "ledger.sqlite")
    return url, seed_ledger(url, 120, days=3, runs=1)


def dashboard(url: str, admin: str | None = ADMIN) -> Dashboard:
    return create_dashboard({"observe": {"ledger": url}},
                            env={"LLMSWITCH_ADMIN_KEY": admin} if admin else {})


def client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dash")


async def sign_in(http: httpx.AsyncClient) -> None:
    response = await http.post("/ui/login", data={"key": ADMIN})
    assert response.status_code == 303


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert match
    return match.group(1)


async def test_nothing_without_signing_in(ledger: tuple[str, Seeded]) -> None:
    url, data = ledger
    async with client(dashboard(url)) as http:
        for page in [*PAGES, f"/ui/requests/{data.requests()[0]}"]:
            response = await http.get(page)
            assert response.status_code == 303
            assert response.headers["location"].startswith("/ui/login?next=")
        for endpoint in ("/ui/api/overview", "/ui/api/requests", "/ui/api/keys"):
            response = await http.get(endpoint)
            assert response.status_code == 401 and "gpt" not in response.text
        wrong = await http.post("/ui/login", data={"key": "not-the-admin-key"})
        assert wrong.status_code == 200 and "That is not the admin key." in wrong.text
        assert "set-cookie" not in wrong.headers and "gpt-4o" not in wrong.text
        assert (await http.get("/ui")).status_code == 303
        http.cookies.set("llmswitch_session", "9999999999.x.y")
        assert (await http.get("/ui")).status_code == 303


async def test_a_virtual_key_does_not_sign_in(ledger: tuple[str, Seeded]) -> None:
    url, _ = ledger
    secret, _ = KeyStore(url).create(KeySpec(name="team"))
    async with client(dashboard(url)) as http:
        response = await http.post("/ui/login", data={"key": secret})
        assert response.status_code == 200 and "That is not the admin key." in response.text


async def test_session_cookie_flags_and_sign_out(ledger: tuple[str, Seeded]) -> None:
    url, _ = ledger
    async with client(dashboard(url)) as http:
        response = await http.post("/ui/login", data={"key": ADMIN, "next": "/ui/keys"})
        cookie = response.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
        assert ADMIN not in cookie
        assert response.headers["location"] == "/ui/keys"
        page = await http.get("/ui")
        assert page.status_code == 200
        assert "default-src 'none'" in page.headers["content-security-policy"]
        out = await http.post("/ui/logout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303
        assert (await http.get("/ui")).status_code == 303
    async with client(dashboard(url)) as http:  # an open redirect is refused
        response = await http.post("/ui/login", data={"key": ADMIN, "next": "//evil.test/"})
        assert response.headers["location"] == "/ui"


async def test_pages_show_the_seeded_numbers(ledger: tuple[str, Seeded]) -> None:
    url, data = ledger
    async with client(dashboard(url)) as http:
        await sign_in(http)
        for page in PAGES:
            assert (await http.get(page)).status_code == 200, page
        text = (await http.get("/ui")).text
        cost = sum(r["cost_usd"] for r in data.rows if r["model"] == "gpt-4o-mini")
        assert f"${cost:.6f}" in text
        assert "<svg" in text and "<rect" in text
        failed = next(r for r in data.rows if r["status"] == "error")
        detail = (await http.get(f"/ui/requests/{failed['request_id']}")).text
        assert failed["error_type"] in detail and failed["model"] in detail
        listing = (await http.get("/ui/requests?q=openai/gpt-4o-mini")).text
        assert "claude-haiku" not in listing or "gpt-4o-mini" in listing
        assert (await http.get("/ui/requests/" + "0" * 32)).status_code == 404
        api = (await http.get("/ui/api/overview")).json()
        assert api["requests"] == len(data.requests())


async def test_keys_created_and_revoked_through_the_key_store(ledger: tuple[str, Seeded]
                                                              ) -> None:
    url, _ = ledger
    store = KeyStore(url)
    async with client(dashboard(url)) as http:
        await sign_in(http)
        page = await http.get("/ui/keys")
        token = csrf_of(page.text)
        refused = await http.post("/ui/keys", data={"name": "team-x", "csrf": "bad"})
        assert refused.status_code == 403 and store.list() == []
        made = await http.post("/ui/keys", data={"name": "team-x", "budget_usd": "5",
                                                 "period": "day", "csrf": token})
        secret = re.search(r'id="new-key">([^<]+)<', made.text)
        assert secret and made.headers["cache-control"] == "no-store"
        record = store.find(hash_secret(secret.group(1)))
        assert record is not None and record.budget_usd == 5.0 and record.period == "day"
        listing = (await http.get("/ui/keys")).text
        assert secret.group(1) not in listing and "team-x" in listing
        assert listing.count(">Revoke</button>") == 1
        bad = await http.post("/ui/keys", data={"name": "bad name!", "csrf": token})
        assert bad.status_code == 200 and "name" in bad.text and len(store.list()) == 1
        revoked = await http.post(f"/ui/keys/{record.id}/revoke", data={"csrf": token})
        assert revoked.status_code == 303
        assert store.get(record.id).revoked_at is not None
        after = (await http.get(revoked.headers["location"])).text
        assert "revoked" in after and secret.group(1) not in after


async def test_hostile_ledger_text_is_escaped(tmp_path: Path) -> None:
    url = str(tmp_path / "l.sqlite")
    from llmswitch.observe.db import Database
    from llmswitch.observe.records import COLUMNS

    row = dict.fromkeys(COLUMNS)
    row.update(ts=1.7e9, request_id="a" * 32, route="<script>alert(1)</script>", attempt=1,
               provider="p", model='"><img src=x onerror=alert(1)>', status="ok",
               input_tokens=1, output_tokens=1, cached_input_tokens=0, reasoning_tokens=0,
               cost_usd=0.1, retry_wait_s=0.0, served=1, cache_write_tokens=0,
               attempt_id="a-1", usage_estimated=0)
    db = Database(url)
    db.insert("attempts", COLUMNS, [tuple(row[c] for c in COLUMNS)])
    db.close()
    async with client(dashboard(url)) as http:
        await sign_in(http)
        for page in ("/ui", "/ui/requests", "/ui/savings", f"/ui/requests/{'a' * 32}"):
            text = (await http.get(page)).text
            assert "<script>" not in text and "<img" not in text, page
            assert "&lt;script&gt;" in text or "&quot;&gt;&lt;img" in text or page == "/ui"


async def test_without_an_admin_key_no_one_signs_in(ledger: tuple[str, Seeded]) -> None:
    url, _ = ledger
    async with client(dashboard(url, admin=None)) as http:
        page = await http.get("/ui/login")
        assert "no admin key is set" in page.text
        response = await http.post("/ui/login", data={"key": ""})
        assert "set-cookie" not in response.headers


async def test_the_gateway_serves_it_at_ui_and_a_revocation_bites_at_once(
        ledger: tuple[str, Seeded]) -> None:
    from llmswitch.gateway.app import create_app

    url, _ = ledger
    app = create_app({"observe": {"ledger": url}}, env={"LLMSWITCH_ADMIN_KEY": ADMIN})
    secret, record = KeyStore(url).create(KeySpec(name="svc"))
    async with client(app) as http:
        auth = {"authorization": f"Bearer {secret}"}
        assert (await http.get("/v1/models", headers=auth)).status_code == 200
        assert (await http.get("/ui")).status_code == 303
        assert (await http.get("/ui/api/overview")).status_code == 401
        await sign_in(http)
        page = await http.get("/ui/keys")
        assert page.status_code == 200 and "svc" in page.text and secret not in page.text
        revoked = await http.post(f"/ui/keys/{record.id}/revoke", data={"csrf": csrf_of(
            page.text)})
        assert revoked.status_code == 303
        # the gateway's cached lookup was dropped: refused on the very next request
        assert (await http.get("/v1/models", headers=auth)).status_code == 401
    await app.aclose()


async def test_key_usage_matches_the_admin_api(tmp_path: Path) -> None:
    import time as _time

    from llmswitch.gateway.admin import key_usage
    from llmswitch.observe.db import Database
    from llmswitch.observe.records import COLUMNS

    url = str(tmp_path / "l.sqlite")
    store = KeyStore(url)
    _, record = store.create(KeySpec(name="metered", budget_usd=10.0, period="month"))
    now = _time.time()
    rows = []
    for i in range(30):
        row = dict.fromkeys(COLUMNS)
        row.update(ts=now - i * 600, request_id=f"{i:032x}", route="r", attempt=1,
                   provider="p", model="m", status="ok", input_tokens=1, output_tokens=1,
                   cached_input_tokens=0, reasoning_tokens=0, cost_usd=0.01 * (i + 1),
                   retry_wait_s=0.0, served=1, cache_write_tokens=0, attempt_id=f"k-{i}",
                   usage_estimated=0, key_id=record.id)
        rows.append(tuple(row[c] for c in COLUMNS))
    db = Database(url)
    db.insert("attempts", COLUMNS, rows)
    db.close()
    expected = key_usage(store, store.get(record.id), now)
    async with client(dashboard(url)) as http:
        await sign_in(http)
        shown = (await http.get("/ui/api/keys")).json()["data"][0]["usage"]
        page = (await http.get("/ui/keys")).text
    assert shown["spent_usd"] == pytest.approx(expected["spent_usd"])
    assert shown["requests"] == expected["requests"]
    assert shown["last_used_at"] == expected["last_used_at"]
    assert shown["remaining_usd"] == pytest.approx(expected["remaining_usd"])
    assert f"${expected['spent_usd']:.6f} of $10.000000 (month)" in page
