"""Two real `llmswitch serve` processes sharing Redis (limits, budgets, breakers) and
PostgreSQL (keys and the ledger): under concurrent load over both, an RPM limit admits no more
than its limit and a budget's recorded spend stays within it; a key revoked on one replica is
refused by the other; and a replica killed with SIGKILL has lost no ledger row of a request it
answered (`gateway.durable_ledger`). Every wait is bounded; nothing asserts a duration."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from mock_upstream import ANSWER, MockUpstream

from llmswitch.gateway.keys import KeySpec, KeyStore
from llmswitch.observe.store import LedgerStore
from tests.gateway.served import Served, start, write_config

pytest.importorskip("psycopg", reason="psycopg not installed (extra postgres)")

ADMIN = "sk-admin-replicas-0123456789"
PRICES = {"context_window": 8000, "max_output_tokens": 1000,
          "input_per_mtok": 1.0, "output_per_mtok": 2.0}
BODY = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 300}
ENV = {"OPENAI_API_KEY": "sk-up", "LLMSWITCH_ADMIN_KEY": ADMIN}


def fleet_config(upstream: MockUpstream, dsn: str, redis_url: str,
                 **gateway: Any) -> dict[str, Any]:
    return {
        "providers": {"openai": {"base_url": upstream.base_url, "timeout": 30}},
        "models": {n: {"provider": "openai", "name": n, **PRICES} for n in ("m", "other")},
        "observe": {"ledger": dsn},
        "gateway": {"state": redis_url, "access_log": False, "durable_ledger": True,
                    **gateway},
    }


async def replicas(config: str, count: int = 2) -> list[Served]:
    return list(await asyncio.gather(*(start("--config", config, env=ENV)
                                       for _ in range(count))))


async def stop_all(served: list[Served]) -> None:
    for replica in served:
        if replica.proc.returncode is None:
            await replica.stop()


async def post(http: httpx.AsyncClient, replica: Served, key: str, model: str,
               stream: bool = False) -> httpx.Response:
    body = {**BODY, "model": model, "stream": stream}
    if stream:
        body["stream_options"] = {"include_usage": True}
    return await http.post(f"{replica.url}/v1/chat/completions", json=body,
                           headers={"authorization": f"Bearer {key}"})


async def test_rpm_budget_and_revocation_hold_across_two_replicas(
        tmp_path: Path, pg_dsn: str, redis_url: str) -> None:
    store = KeyStore(pg_dsn)
    many, _ = store.create(KeySpec("many"))
    async with MockUpstream() as upstream:
        served = await replicas(write_config(tmp_path / "fleet.yaml", fleet_config(
            upstream, pg_dsn, redis_url, limits={"m": {"rpm": 20}})))
        try:
            async with httpx.AsyncClient(timeout=60) as http:
                # RPM: 60 concurrent requests over both replicas against a limit of 20
                started = time.monotonic()
                out = await asyncio.gather(*(post(http, served[i % 2], many, "m")
                                             for i in range(60)))
                elapsed = time.monotonic() - started
                statuses = [r.status_code for r in out]
                assert set(statuses) <= {200, 429}, statuses
                assert statuses.count(200) <= 20 and upstream.count("m") <= 20
                if elapsed < 55:  # all inside one window: exactly the limit was admitted
                    assert statuses.count(200) == 20
                refused = next(r for r in out if r.status_code == 429)
                assert int(refused.headers["retry-after"]) >= 1

                # budget: estimate one call's maximum on a replica, then spend concurrently
                admin = {"authorization": f"Bearer {ADMIN}"}
                made = await http.post(f"{served[0].url}/admin/keys", headers=admin, json={
                    "name": "capped", "budget_usd": 0.0025, "period": "total"})
                assert made.status_code == 201, made.text
                capped, capped_id = made.json()["key"], made.json()["id"]
                out = await asyncio.gather(*(post(http, served[i % 2], capped, "other")
                                             for i in range(40)))
                statuses = [r.status_code for r in out]
                assert set(statuses) <= {200, 402}, statuses
                assert 402 in statuses and statuses.count(200) >= 4

                # revocation on one replica: refused there at once, on the other within seconds
                key, _ = store.create(KeySpec("short-lived"))
                assert (await post(http, served[1], key, "other")).status_code == 200
                gone = await http.delete(f"{served[0].url}/admin/keys/short-lived",
                                         headers=admin)
                assert gone.status_code == 200
                assert (await post(http, served[0], key, "other")).status_code == 401
                until = time.monotonic() + 10  # the cache lives 2 s: bounded generously
                while (status := (await post(http, served[1], key, "other")).status_code) \
                        == 200 and time.monotonic() < until:
                    await asyncio.sleep(0.2)
                assert status == 401
        finally:
            await stop_all(served)
    with LedgerStore(pg_dsn) as ledger:
        rows = [r for r in ledger.attempts() if r["key_id"] == capped_id]
    assert len(rows) == statuses.count(200)
    assert sum(r["cost_usd"] for r in rows) <= 0.0025
    store.close()


async def test_a_replica_killed_with_sigkill_lost_no_row_of_what_it_answered(
        tmp_path: Path, pg_dsn: str, redis_url: str) -> None:
    store = KeyStore(pg_dsn)
    key, _ = store.create(KeySpec("load"))
    store.close()
    answered: dict[int, list[str]] = {0: [], 1: []}
    async with MockUpstream() as upstream:
        served = await replicas(write_config(tmp_path / "fleet.yaml", fleet_config(
            upstream, pg_dsn, redis_url)))
        killed = asyncio.Event()
        try:
            async with httpx.AsyncClient(timeout=30) as http:

                async def worker(n: int) -> None:
                    for i in range(400):  # bounded: the kill comes long before
                        target = (n + i) % 2
                        if killed.is_set() and target == 0:
                            continue
                        try:
                            trace = await one(http, served[target], key, stream=i % 3 == 0)
                        except httpx.HTTPError:
                            continue  # in flight on the killed replica: never answered
                        if trace is not None:
                            answered[target].append(trace)
                        if killed.is_set() and len(answered[1]) > 40:
                            return

                workers = [asyncio.ensure_future(worker(n)) for n in range(6)]
                until = time.monotonic() + 120
                while len(answered[0]) < 40 and time.monotonic() < until:
                    await asyncio.sleep(0.01)
                served[0].proc.send_signal(signal.SIGKILL)  # mid-load, rows in flight
                killed.set()
                await asyncio.wait_for(asyncio.gather(*workers), 120)
            assert await asyncio.wait_for(served[0].proc.wait(), 30) == -signal.SIGKILL
        finally:
            await stop_all(served)
    assert len(answered[0]) >= 40
    with LedgerStore(pg_dsn) as ledger:
        stored = {r["request_id"] for r in ledger.attempts()}
    lost = [t for t in answered[0] if t not in stored]
    assert lost == [], f"{len(lost)} of {len(answered[0])} answered requests have no row"
    assert all(t in stored for t in answered[1])  # the survivor flushed on its SIGTERM


async def one(http: httpx.AsyncClient, replica: Served, key: str, stream: bool) -> str | None:
    """One request; its trace id once the whole answer arrived (`None` if refused)."""
    if not stream:
        response = await post(http, replica, key, "m")
        if response.status_code != 200:
            return None
        assert response.json()["choices"][0]["message"]["content"] == ANSWER
        return response.headers["x-llmswitch-trace-id"]
    body = {**BODY, "model": "m", "stream": True, "stream_options": {"include_usage": True}}
    async with http.stream("POST", f"{replica.url}/v1/chat/completions", json=body,
                           headers={"authorization": f"Bearer {key}"}) as response:
        if response.status_code != 200:
            return None
        text = "".join([chunk async for chunk in response.aiter_text()])
    if not text.rstrip().endswith("data: [DONE]"):
        return None  # cut: not answered
    return response.headers["x-llmswitch-trace-id"]


# -- the durable ledger in one process -----------------------------------------------------------
async def test_durable_ledger_commits_a_requests_rows_before_its_answer(
        tmp_path: Path, ledger_db: str) -> None:
    from llmswitch.gateway.app import create_app

    async with MockUpstream() as upstream:
        config = fleet_config(upstream, ledger_db, "", durable_ledger=True)
        del config["gateway"]["state"]
        config["observe"]["flush_interval"] = 30  # batching alone would wait this long
        app = create_app(config, env={"OPENAI_API_KEY": "sk-up"})
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as http:
            plain = await http.post("/v1/chat/completions", json={**BODY, "model": "m"})
            assert plain.status_code == 200
            body = {**BODY, "model": "m", "stream": True}
            async with http.stream("POST", "/v1/chat/completions", json=body) as streamed:
                text = "".join([c async for c in streamed.aiter_text()])
            assert text.rstrip().endswith("data: [DONE]")
            with LedgerStore(ledger_db) as ledger:  # read before any flush or close
                stored = {r["request_id"] for r in ledger.attempts()}
            assert plain.headers["x-llmswitch-trace-id"] in stored
            assert streamed.headers["x-llmswitch-trace-id"] in stored
        await app.aclose()


async def test_an_answer_still_goes_out_when_its_rows_cannot_be_committed(
        tmp_path: Path) -> None:
    import sqlite3

    from llmswitch.gateway.app import create_app
    from llmswitch.observe.db import Database

    ledger = str(tmp_path / "l.sqlite")
    Database(ledger).close()
    with sqlite3.connect(ledger) as conn:  # the ledger refuses every row
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON attempts "
                     "BEGIN SELECT RAISE(ABORT, 'disk full'); END")
    async with MockUpstream() as upstream:
        config = fleet_config(upstream, ledger, "", durable_ledger=True)
        del config["gateway"]["state"]
        app = create_app(config, env={"OPENAI_API_KEY": "sk-up"})
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://gw") as http:
            out = await http.post("/v1/chat/completions", json={**BODY, "model": "m"})
        assert out.status_code == 200
        assert out.json()["choices"][0]["message"]["content"] == ANSWER
        ledger_observer = app.switch.observers[0]
        assert ledger_observer.failures >= 1  # type: ignore[attr-defined]
        await app.aclose()
