"""Virtual keys: the store (SQLite and PostgreSQL), the authenticator's rules and cache, the
`llmswitch keys` CLI and the admin API, and the official SDKs refused as they should be."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from mock_upstream import ANSWER, MockUpstream

from llmswitch.cli.main import cli
from llmswitch.gateway.app import create_app
from llmswitch.gateway.keys import (
    KEY_MIGRATIONS,
    KeyAuthenticator,
    KeyNotFoundError,
    KeysError,
    KeySpec,
    KeyStore,
    hash_secret,
    parse_expiry,
    period_bounds,
)
from llmswitch.gateway.protocols.errors import GatewayError
from llmswitch.observe.db import Database
from llmswitch.observe.store import LedgerStore

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

ADMIN = "sk-admin-test-0123456789"
PRICES = {"context_window": 8000, "max_output_tokens": 1000,
          "input_per_mtok": 1.0, "output_per_mtok": 2.0}


def headers(key: str | None = None, anthropic_style: bool = False) -> dict[bytes, bytes]:
    if key is None:
        return {}
    if anthropic_style:
        return {b"x-api-key": key.encode()}
    return {b"authorization": f"Bearer {key}".encode()}


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


# -- the store -------------------------------------------------------------------------------
def test_store_keeps_only_a_hash_and_round_trips_every_field(ledger_db: str) -> None:
    store = KeyStore(ledger_db)
    expires = time.time() + 3600
    secret, record = store.create(KeySpec(
        "ci", models=("m", "route-a"), rpm=10, tpm=5000, budget_usd=2.5, period="day",
        expires_at=expires, meta={"team": "search"}))
    assert secret.startswith("sk-llms-") and len(secret) > 40
    assert record.prefix == secret[:12] and record.id.startswith("key_")
    got = store.get("ci")
    assert got == record
    assert (got.models, got.rpm, got.tpm, got.budget_usd, got.period, got.meta) == (
        ("m", "route-a"), 10, 5000, 2.5, "day", {"team": "search"})
    assert got.expires_at == pytest.approx(expires)
    assert store.find(hash_secret(secret)) == record
    assert store.find(hash_secret(secret + "x")) is None
    raw = store._run(lambda db: db.query("SELECT * FROM gateway_keys"))
    assert secret not in json.dumps(raw, default=str)
    assert raw[0]["secret_hash"] == hashlib.sha256(secret.encode()).hexdigest()
    store.close()


def test_names_are_unique_among_active_keys_and_revoke_by_id_or_name(ledger_db: str) -> None:
    store = KeyStore(ledger_db)
    _, first = store.create(KeySpec("ci"))
    with pytest.raises(KeysError, match="already exists"):
        store.create(KeySpec("ci"))
    revoked = store.revoke("ci")
    assert revoked.status() == "revoked" and revoked.revoked_at is not None
    assert store.revoke(first.id).revoked_at == revoked.revoked_at  # twice changes nothing
    _, second = store.create(KeySpec("ci"))  # the name is free again
    assert store.get("ci").id == second.id  # the active one
    assert store.get(first.id).id == first.id
    assert [k.id for k in store.list()] == [first.id, second.id]
    assert [k.id for k in store.list(include_revoked=False)] == [second.id]
    with pytest.raises(KeyNotFoundError):
        store.revoke("nobody")
    store.close()


def test_migrations_run_once_under_their_own_version_table(ledger_db: str) -> None:
    for _ in range(2):
        store = KeyStore(ledger_db)
        store.create(KeySpec(f"k{time.monotonic_ns()}"))
        store.close()
    db = Database(ledger_db)
    try:
        rows = db.query("SELECT version FROM llmswitch_keys_schema")
        assert [r["version"] for r in rows] == list(range(1, len(KEY_MIGRATIONS) + 1))
        assert len(db.query("SELECT id FROM gateway_keys")) == 2
    finally:
        db.close()


@pytest.mark.parametrize(("spec", "message"), [
    (KeySpec("has space"), "name"),
    (KeySpec("ok", rpm=0), "rpm must be a whole number from 1"),
    (KeySpec("ok", tpm=-5), "tpm must be a whole number from 1"),
    (KeySpec("ok", budget_usd=-1), "budget must be a number of USD from 0"),
    (KeySpec("ok", budget_usd=1, period="week"), "period must be day, month or total"),
    (KeySpec("ok", period="day"), "a period needs a budget"),
    (KeySpec("ok", meta={"key_id": "x"}), "set by the gateway"),
])
def test_bad_key_options_are_refused_naming_the_option(spec: KeySpec, message: str) -> None:
    with pytest.raises(KeysError, match=message):
        spec.check()


def test_budget_defaults_to_a_month_and_expiry_parses_dates_and_durations() -> None:
    assert KeySpec("ok", budget_usd=3).check().period == "month"
    assert parse_expiry("2026-12-31") == 1798675200.0
    assert parse_expiry("2026-12-31T18:00:00Z") == 1798675200.0 + 18 * 3600
    assert parse_expiry("30d", now=100.0) == 100.0 + 30 * 86400
    assert parse_expiry("12h", now=0.0) == 12 * 3600
    with pytest.raises(KeysError, match="not a date"):
        parse_expiry("next tuesday")
    day = period_bounds("day", 1798675200.0 + 5)
    assert day == ("d2026-12-31", 1798675200.0, 1798675200.0 + 86400)
    month = period_bounds("month", 1798675200.0)
    assert month[0] == "m2026-12" and month[2] == 1798761600.0  # 2027-01-01
    assert period_bounds("total", 5.0) == ("total", 0.0, None)


# -- the authenticator -----------------------------------------------------------------------
async def test_open_until_a_key_exists_then_every_rule_applies(tmp_path: Path) -> None:
    store = KeyStore(str(tmp_path / "l.sqlite"))
    clock = Clock()
    auth = KeyAuthenticator(store, None, ttl=2.0, clock=clock)
    assert not auth.required
    assert (await auth.authenticate({})).key_id is None  # nobody configured anything
    secret, record = store.create(KeySpec("ci", models=("m",), meta={"team": "a"}))
    clock.t += 2.0
    with pytest.raises(GatewayError) as missing:
        await auth.authenticate({})
    assert missing.value.kind == "unauthenticated"
    with pytest.raises(GatewayError, match="invalid API key"):
        await auth.authenticate(headers("sk-llms-wrong"))
    principal = await auth.authenticate(headers(secret))
    assert (principal.key_id, principal.name, dict(principal.tags)) == (record.id, "ci",
                                                                       {"team": "a"})
    assert principal.may_use("m") and not principal.may_use("other")
    assert (await auth.authenticate(headers(secret, anthropic_style=True))).key_id == record.id
    fresh = KeyAuthenticator(store, None)
    assert fresh.required
    store.close()


async def test_revocation_reaches_every_replica_within_the_cache_time(ledger_db: str) -> None:
    store = KeyStore(ledger_db)
    secret, _ = store.create(KeySpec("ci"))
    clock = Clock()
    replicas = [KeyAuthenticator(KeyStore(ledger_db), ADMIN, ttl=2.0, clock=clock)
                for _ in range(2)]
    for auth in replicas:
        await auth.authenticate(headers(secret))  # cached as valid
    store.revoke("ci")
    clock.t += 1.9
    for auth in replicas:  # still within the cache time: answered from the cache
        await auth.authenticate(headers(secret))
    clock.t += 0.1
    for auth in replicas:
        with pytest.raises(GatewayError, match="was revoked"):
            await auth.authenticate(headers(secret))
        auth.store.close()
    store.close()


async def test_expired_keys_and_the_admin_key(tmp_path: Path) -> None:
    store = KeyStore(str(tmp_path / "l.sqlite"))
    wall = [1000.0]
    secret, _ = store.create(KeySpec("temp", expires_at=1010.0), now=1000.0)
    auth = KeyAuthenticator(store, ADMIN, wall=lambda: wall[0])
    assert auth.required
    assert (await auth.authenticate(headers(secret))).name == "temp"
    wall[0] = 1010.0
    with pytest.raises(GatewayError, match="expired at"):
        await auth.authenticate(headers(secret))
    admin = await auth.authenticate(headers(ADMIN))
    assert admin.admin and admin.models is None
    with pytest.raises(GatewayError, match="missing API key"):
        await auth.authenticate({})
    store.close()


# -- the CLI ---------------------------------------------------------------------------------
def run_cli(args: list[str], ledger: str) -> Any:
    return CliRunner().invoke(cli, args, env={"LLMSWITCH_LEDGER": ledger},
                              catch_exceptions=False)


def test_cli_create_list_revoke_json_contract(ledger_db: str) -> None:
    out = run_cli(["keys", "create", "--name", "ci", "--models", "m,answer", "--rpm", "5",
                   "--tpm", "900", "--budget", "1.5", "--period", "day", "--expires", "30d",
                   "--meta", "team=search", "--meta", "env=ci", "--json"], ledger_db)
    assert out.exit_code == 0, out.output
    created = json.loads(out.stdout)
    assert created["key"].startswith("sk-llms-") and created["name"] == "ci"
    assert created["id"].startswith("key_") and created["models"] == ["m", "answer"]
    assert created["meta"] == {"team": "search", "env": "ci"}
    human = run_cli(["keys", "create", "--name", "other"], ledger_db)
    assert human.exit_code == 0 and "sk-llms-" in human.stdout
    assert "shown this once" in human.stderr
    listed = run_cli(["keys", "list", "--json"], ledger_db)
    data = json.loads(listed.stdout)["data"]
    assert [k["name"] for k in data] == ["ci", "other"]
    assert data[0]["usage"]["spent_usd"] == 0 and data[0]["usage"]["budget_usd"] == 1.5
    assert created["key"] not in listed.stdout and "secret_hash" not in listed.stdout
    table = run_cli(["keys", "list"], ledger_db)
    assert "ci" in table.stdout and created["key"] not in table.stdout
    revoked = run_cli(["keys", "revoke", "ci"], ledger_db)
    assert revoked.exit_code == 0 and created["id"] in revoked.stdout
    after = json.loads(run_cli(["keys", "list", "--json", "--all"], ledger_db).stdout)["data"]
    assert [k["status"] for k in after] == ["revoked", "active"]
    assert [k["name"] for k in json.loads(run_cli(
        ["keys", "list", "--json"], ledger_db).stdout)["data"]] == ["other"]


def test_cli_mistakes_are_one_line_errors(tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite")
    run_cli(["keys", "create", "--name", "ci"], ledger)
    for args, message in [
        (["keys", "create", "--name", "ci"], "already exists"),
        (["keys", "create", "--name", "x", "--period", "day"], "needs a budget"),
        (["keys", "create", "--name", "x", "--expires", "2020-01-01"], "in the past"),
        (["keys", "create", "--name", "x", "--meta", "novalue"], "KEY=VALUE"),
        (["keys", "revoke", "nobody"], "no key with id or name"),
    ]:
        out = run_cli(args, ledger)
        assert out.exit_code == 1 and message in out.stderr and "Traceback" not in out.output
    as_json = run_cli(["keys", "revoke", "nobody", "--json"], ledger)
    assert json.loads(as_json.stdout)["error"]["type"] == "not_found"


# -- through the gateway: the official SDKs ----------------------------------------------------
def gateway_config(upstream: MockUpstream, ledger: str, **gateway: Any) -> dict[str, Any]:
    return {
        "providers": {"openai": {"base_url": upstream.base_url, "timeout": 30}},
        "models": {n: {"provider": "openai", "name": n, **PRICES} for n in ("m", "other")},
        "observe": {"ledger": ledger, "flush_interval": 0.05},
        "gateway": gateway,
    }


def http_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


def sdk(app: Any, key: str, **kw: Any) -> Any:
    return openai.AsyncOpenAI(api_key=key, base_url="http://gw/v1", max_retries=0,
                              http_client=http_client(app), **kw)


def claude(app: Any, key: str) -> Any:
    httpx2 = pytest.importorskip("httpx2")
    return anthropic.AsyncAnthropic(api_key=key, base_url="http://gw", max_retries=0,
                                    http_client=httpx2.AsyncClient(
                                        transport=httpx2.ASGITransport(app=app),
                                        base_url="http://gw"))


HI = [{"role": "user", "content": "hi"}]


async def test_sdks_refused_with_bad_revoked_expired_keys_and_a_model_not_allowed(
        ledger_db: str) -> None:
    store = KeyStore(ledger_db)
    good, record = store.create(KeySpec("ci", models=("m",), meta={"team": "search"}))
    revoked, _ = store.create(KeySpec("gone"))
    store.revoke("gone")
    expired, _ = store.create(KeySpec("old", expires_at=time.time() - 1),
                              now=time.time() - 60)  # created a minute ago, expired since
    store.close()
    async with MockUpstream() as upstream:
        app = create_app(gateway_config(upstream, ledger_db),
                         env={"OPENAI_API_KEY": "sk-up", "LLMSWITCH_ADMIN_KEY": ADMIN})
        with pytest.raises(openai.AuthenticationError) as bad:
            await sdk(app, "sk-llms-not-a-key").chat.completions.create(model="m", messages=HI)
        assert bad.value.status_code == 401 and bad.value.code == "invalid_api_key"
        for key, why in ((revoked, "revoked"), (expired, "expired")):
            with pytest.raises(openai.AuthenticationError, match=why):
                await sdk(app, key).chat.completions.create(model="m", messages=HI)
        with pytest.raises(openai.PermissionDeniedError) as denied:
            await sdk(app, good).chat.completions.create(model="other", messages=HI)
        assert denied.value.status_code == 403 and denied.value.code == "model_not_allowed"
        with pytest.raises(anthropic.PermissionDeniedError):
            await claude(app, good).messages.create(model="other", max_tokens=20, messages=HI)
        with pytest.raises(anthropic.AuthenticationError):
            await claude(app, "sk-llms-nope").messages.create(model="m", max_tokens=20,
                                                              messages=HI)
        raw = await sdk(app, good).chat.completions.with_raw_response.create(
            model="m", messages=HI)
        assert raw.parse().choices[0].message.content == ANSWER
        trace_id = raw.headers["x-llmswitch-trace-id"]
        message = await claude(app, good).messages.create(model="m", max_tokens=20,
                                                          messages=HI)
        assert message.content[0].text == ANSWER
        admin = await sdk(app, ADMIN).chat.completions.create(model="other", messages=HI)
        assert admin.choices[0].message.content == ANSWER  # the admin key is a client key
        models = await sdk(app, good).models.list()
        assert [m.id for m in models.data] == ["m"]
        await app.aclose()
    with LedgerStore(ledger_db) as ledger:
        rows = [r for r in ledger.attempts() if r["request_id"] == trace_id]
    assert [(r["key_id"], json.loads(r["tags"])["team"]) for r in rows] == [
        (record.id, "search")]
    assert upstream.count("other") == 1 and upstream.count("m") == 2


# -- the admin API --------------------------------------------------------------------------------
async def test_admin_api_creates_lists_with_spend_and_revokes(ledger_db: str) -> None:
    async with MockUpstream() as upstream:
        app = create_app(gateway_config(upstream, ledger_db),
                         env={"OPENAI_API_KEY": "sk-up", "LLMSWITCH_ADMIN_KEY": ADMIN})
        admin = {"authorization": f"Bearer {ADMIN}"}
        async with http_client(app) as http:
            assert (await http.get("/admin/keys")).status_code == 401
            created = await http.post("/admin/keys", headers=admin, json={
                "name": "team-a", "models": ["m"], "budget_usd": 5, "period": "total",
                "rpm": 100, "meta": {"team": "a"}})
            assert created.status_code == 201, created.text
            key = created.json()["key"]
            assert created.json()["name"] == "team-a" and created.json()["period"] == "total"
            bad = await http.post("/admin/keys", headers=admin, json={"name": "x", "rpm": 0})
            assert bad.status_code == 400 and "rpm" in bad.json()["error"]["message"]
            dup = await http.post("/admin/keys", headers=admin, json={"name": "team-a"})
            assert dup.status_code == 400
            with_key = await http.get("/admin/keys", headers={"authorization": f"Bearer {key}"})
            assert with_key.status_code == 403
            for _ in range(2):
                await sdk(app, key).chat.completions.create(model="m", messages=HI)
            app.switch.observers[0].flush()  # the ledger writes in batches
            listed = (await http.get("/admin/keys", headers=admin)).json()["data"]
            assert key not in json.dumps(listed)
            usage = listed[0]["usage"]
            assert usage["requests"] == 2 and usage["spent_usd"] > 0
            assert usage["last_used_at"] is not None and usage["period"] == "total"
            assert usage["remaining_usd"] == pytest.approx(5 - usage["spent_usd"])
            one = await http.get(f"/admin/keys/{listed[0]['id']}", headers=admin)
            assert one.json()["name"] == "team-a"
            assert (await http.get("/admin/keys/nobody", headers=admin)).status_code == 404
            gone = await http.delete("/admin/keys/team-a", headers=admin)
            assert gone.status_code == 200 and gone.json()["status"] == "revoked"
        with pytest.raises(openai.AuthenticationError):  # at once on the replica that revoked
            await sdk(app, key).chat.completions.create(model="m", messages=HI)
        await app.aclose()


async def test_admin_api_is_off_without_an_admin_key(tmp_path: Path) -> None:
    async with MockUpstream() as upstream:
        app = create_app(gateway_config(upstream, str(tmp_path / "l.sqlite")),
                         env={"OPENAI_API_KEY": "sk-up"})
        async with http_client(app) as http:
            out = await http.post("/admin/keys", json={"name": "x"})
        assert out.status_code == 401 and "LLMSWITCH_ADMIN_KEY" in out.json()["error"]["message"]
        await app.aclose()
