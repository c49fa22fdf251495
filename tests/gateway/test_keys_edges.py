"""Virtual keys at their edges: values the store, the limiter or JSON cannot hold, expiry in
the past, budget 0, odd ids, and the money in a 402 message, through the store, the CLI and
the admin API alike."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from llmswitch.cli.main import cli
from llmswitch.gateway.app import create_app
from llmswitch.gateway.keys import KeyNotFoundError, KeysError, KeySpec, KeyStore
from tests.support.mock_upstream import MockUpstream

ADMIN = "sk-admin-edges-0123456789"
PRICED = {"context_window": 8000, "max_output_tokens": 100, "input_per_mtok": 1.0,
          "output_per_mtok": 2.0}
HI = [{"role": "user", "content": "hi"}]


def run_cli(args: list[str], ledger: str) -> Any:
    return CliRunner().invoke(cli, args, env={"LLMSWITCH_LEDGER": ledger},
                              catch_exceptions=False)


@pytest.mark.parametrize("budget", [math.inf, math.nan, 1e300, -0.5])
def test_a_budget_must_be_a_finite_amount_the_limiter_can_hold(budget: float) -> None:
    # inf or 1e300 used to be stored: every request of the key was then a 500 (the limiter's
    # nano-dollar conversion overflowed) and `keys list --json` printed `Infinity`
    with pytest.raises(KeysError, match="budget"):
        KeySpec("k", budget_usd=budget).check()


def test_a_budget_of_zero_is_a_key_that_may_spend_nothing() -> None:
    assert KeySpec("k", budget_usd=0).check().budget_usd == 0.0


@pytest.mark.parametrize("field", ["rpm", "tpm"])
def test_limits_too_large_for_the_database_are_a_clear_error(field: str,
                                                             ledger_db: str) -> None:
    store = KeyStore(ledger_db)
    try:
        with pytest.raises(KeysError, match=field):
            store.create(KeySpec("k", **{field: 10**23}))
    finally:
        store.close()


def test_expiry_in_the_past_or_beyond_year_9999_is_refused(ledger_db: str) -> None:
    store = KeyStore(ledger_db)
    try:
        with pytest.raises(KeysError, match="in the past"):
            store.create(KeySpec("k", expires_at=time.time() - 5))
        with pytest.raises(KeysError, match="expires"):
            store.create(KeySpec("k", expires_at=1e300))
        assert store.list() == []
    finally:
        store.close()


@pytest.mark.parametrize("models", [(), ("ok", "bad\x00name"), ("line\nbreak",)])
def test_model_lists_must_name_something_usable(models: tuple[str, ...]) -> None:
    with pytest.raises(KeysError, match="models"):
        KeySpec("k", models=models).check()


def test_meta_tags_may_not_hold_control_characters() -> None:
    with pytest.raises(KeysError, match="meta"):
        KeySpec("k", meta={"team": "a\x00b"}).check()


def test_an_id_with_a_nul_is_simply_not_found(ledger_db: str) -> None:
    # PostgreSQL refuses NUL in text: that used to be a DataError (503 "database unreachable")
    store = KeyStore(ledger_db)
    try:
        with pytest.raises(KeyNotFoundError):
            store.get("key_\x00x")
        with pytest.raises(KeyNotFoundError):
            store.revoke("a\x00")
    finally:
        store.close()


@pytest.mark.parametrize(("args", "message"), [
    (["--budget", "inf"], "budget"),
    (["--budget", "1e300"], "budget"),
    (["--rpm", str(10**23)], "rpm"),
    (["--tpm", str(10**23)], "tpm"),
])
def test_cli_refuses_values_it_cannot_store_in_one_line(args: list[str], message: str,
                                                        tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite")
    out = run_cli(["keys", "create", "--name", "k", *args], ledger)
    assert out.exit_code == 1, out.output
    assert message in out.stderr and "internal error" not in out.stderr
    as_json = run_cli(["keys", "create", "--name", "k", *args, "--json"], ledger)
    assert json.loads(as_json.stdout)["error"]["type"] == "bad_request"
    listed = run_cli(["keys", "list", "--json"], ledger)
    assert json.loads(listed.stdout)["data"] == []  # valid JSON, nothing stored


def test_cli_shows_small_budgets_and_spend_as_dollars(tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite")
    out = run_cli(["keys", "create", "--name", "k", "--budget", "0.00001"], ledger)
    assert out.exit_code == 0 and "budget:   $0.00001 per month" in out.stdout, out.stdout
    table = run_cli(["keys", "list"], ledger).stdout
    assert "$0.00001/month" in table and "$0.000000" in table, table


def _config(upstream: MockUpstream, ledger: str) -> dict[str, Any]:
    return {"providers": {"openai": {"base_url": upstream.base_url, "timeout": 30}},
            "models": {"m": {"provider": "openai", "name": "m", **PRICED},
                       "free": {"provider": "openai", "name": "free", "context_window": 8000,
                                "max_output_tokens": 100, "input_per_mtok": 0,
                                "output_per_mtok": 0}},
            "observe": {"ledger": ledger, "flush_interval": 0.05},
            "gateway": {"access_log": False}}


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw")


async def test_402_names_a_small_budget_exactly_and_budget_zero_spends_nothing(
        tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite")
    store = KeyStore(ledger)
    tiny, _ = store.create(KeySpec("tiny", budget_usd=0.00001, period="day"))
    zero, _ = store.create(KeySpec("zero", budget_usd=0, period="total"))
    store.close()
    async with MockUpstream() as upstream:
        app = create_app(_config(upstream, ledger),
                         env={"OPENAI_API_KEY": "sk-up", "LLMSWITCH_ADMIN_KEY": ADMIN})
        async with _client(app) as http:
            out = await http.post("/v1/chat/completions", json={
                "model": "m", "messages": HI, "max_tokens": 50},
                headers={"authorization": f"Bearer {tiny}"})
            assert out.status_code == 402
            message = out.json()["error"]["message"]
            assert "of $0.00001 this day" in message, message  # was "of $0.00"
            assert "resets at " in message
            refused = await http.post("/v1/chat/completions", json={
                "model": "m", "messages": HI, "max_tokens": 5},
                headers={"authorization": f"Bearer {zero}"})
            assert refused.status_code == 402, refused.text
            assert "of $0 in total" in refused.json()["error"]["message"]
            free = await http.post("/v1/chat/completions", json={
                "model": "free", "messages": HI, "max_tokens": 5},
                headers={"authorization": f"Bearer {zero}"})
            assert free.status_code == 200, free.text  # a free model costs nothing
        await app.aclose()
    assert upstream.count("m") == 0


async def test_admin_api_refuses_what_the_cli_refuses(tmp_path: Path) -> None:
    async with MockUpstream() as upstream:
        app = create_app(_config(upstream, str(tmp_path / "l.sqlite")),
                         env={"OPENAI_API_KEY": "sk-up", "LLMSWITCH_ADMIN_KEY": ADMIN})
        admin = {"authorization": f"Bearer {ADMIN}"}
        async with _client(app) as http:
            for body, field in [({"name": "a", "expires_at": "2020-01-01"}, "in the past"),
                                ({"name": "a", "rpm": 10**23}, "rpm"),
                                ({"name": "a", "budget_usd": 1e300}, "budget"),
                                ({"name": "a", "models": []}, "models")]:
                out = await http.post("/admin/keys", headers=admin, json=body)
                assert out.status_code == 400, (body, out.text)
                assert field in out.json()["error"]["message"]
            missing = await http.get("/admin/keys/a%00b", headers=admin)
            assert missing.status_code == 404, missing.text
            listed = await http.get("/admin/keys", headers=admin)
            assert listed.json()["data"] == []
        await app.aclose()


def test_cli_names_a_ledger_folder_it_cannot_create(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    out = run_cli(["keys", "list"], str(blocker / "sub" / "l.sqlite"))
    assert out.exit_code == 1 and "internal error" not in out.stderr, out.stderr
    assert "cannot use the keys in the ledger" in out.stderr


async def test_a_catalog_model_is_one_model_by_either_name(tmp_path: Path) -> None:
    """`gpt-4o-mini` and `openai/gpt-4o-mini` are the same catalog model: a key allowed one
    may call the other (and sees it in /v1/models), and a model's rate limit counts both (it
    was bypassed by spelling the name the other way). A config alias stays its own name."""
    ledger = str(tmp_path / "l.sqlite")
    store = KeyStore(ledger)
    bare, _ = store.create(KeySpec("bare", models=("gpt-4o-mini",)))
    full, _ = store.create(KeySpec("full", models=("openai/gpt-4o-mini",)))
    alias, _ = store.create(KeySpec("alias", models=("m",)))
    store.close()
    async with MockUpstream() as upstream:
        config = _config(upstream, ledger)
        config["gateway"]["limits"] = {"gpt-4o-mini": {"rpm": 3}}
        app = create_app(config, env={"OPENAI_API_KEY": "sk-up", "LLMSWITCH_ADMIN_KEY": ADMIN})
        async with _client(app) as http:
            async def call(key: str, model: str) -> int:
                out = await http.post("/v1/chat/completions", json={
                    "model": model, "messages": HI, "max_tokens": 5},
                    headers={"authorization": f"Bearer {key}"})
                return out.status_code

            assert await call(bare, "openai/gpt-4o-mini") == 200
            assert await call(full, "gpt-4o-mini") == 200
            assert await call(alias, "openai/m") == 403  # a config alias is its own name
            listed = await http.get("/v1/models", headers={"authorization": f"Bearer {bare}"})
            assert "openai/gpt-4o-mini" in [m["id"] for m in listed.json()["data"]]
            assert await call(ADMIN, "openai/gpt-4o-mini") == 200  # the limit's third call
            assert await call(ADMIN, "gpt-4o-mini") == 429
            assert await call(ADMIN, "openai/gpt-4o-mini") == 429
        await app.aclose()


def test_cli_revoking_twice_says_it_was_already_revoked(tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite")
    created = json.loads(run_cli(["keys", "create", "--name", "k", "--json"], ledger).stdout)
    first = run_cli(["keys", "revoke", "k"], ledger)
    assert first.exit_code == 0 and first.stdout.startswith("revoked key k")
    again = run_cli(["keys", "revoke", created["id"]], ledger)
    assert again.exit_code == 0 and "was already revoked at 20" in again.stdout, again.stdout


@pytest.mark.parametrize("name", ["admin", "Admin"])
def test_no_virtual_key_takes_the_admin_keys_name(name: str) -> None:
    # the admin key's calls are filed as key "admin": a virtual key of that name was summed
    # with them in the dashboard's spend by key
    with pytest.raises(KeysError, match="admin"):
        KeySpec(name).check()
