"""Limits and budgets through the gateway, with the official SDKs as clients: a key's RPM and
a model's RPM refused with 429 + retry-after and the SDK's own retry admitted once the window
moves; TPM counted at admission; a budget exhausted with 402 (never retried by the SDKs) that
names the budget, the spend and the reset; spend never past the budget under concurrency; the
budget carried over a restart through the ledger; the attempts a route's reservation covers;
the same on Redis."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from mock_upstream import ANSWER, MockUpstream

from llmswitch import Config
from llmswitch.gateway.app import create_app
from llmswitch.gateway.keys import KeySpec, KeyStore
from llmswitch.gateway.limits import billed_attempts
from llmswitch.observe.store import LedgerStore

openai = pytest.importorskip("openai")
anthropic = pytest.importorskip("anthropic")

ADMIN = "sk-admin-test-0123456789"
PRICES = {"context_window": 8000, "max_output_tokens": 1000,
          "input_per_mtok": 1.0, "output_per_mtok": 2.0}
HI = [{"role": "user", "content": "hi"}]


def config(upstream: MockUpstream, ledger: str, **gateway: Any) -> dict[str, Any]:
    models: dict[str, Any] = {n: {"provider": "openai", "name": n, **PRICES}
                              for n in ("m", "other")}
    models["unpriced"] = {"provider": "openai", "name": "unpriced"}
    return {
        "providers": {"openai": {"base_url": upstream.base_url, "timeout": 30}},
        "models": models,
        "routes": {"answer": {"strategy": "fallback", "targets": ["m", "other"]}},
        "observe": {"ledger": ledger, "flush_interval": 0.05},
        "gateway": gateway,
    }


class Seen:
    """Statuses the client received (every attempt the SDK made)."""

    def __init__(self) -> None:
        self.statuses: list[int] = []

    async def __call__(self, response: httpx.Response) -> None:
        self.statuses.append(response.status_code)


def sdk(app: Any, key: str, seen: Seen | None = None, retries: int = 0) -> Any:
    hooks = {"response": [seen]} if seen is not None else {}
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gw",
                             event_hooks=hooks)
    return openai.AsyncOpenAI(api_key=key, base_url="http://gw/v1", max_retries=retries,
                              http_client=http)


class Shifted:
    """The wall clock plus an offset the test moves (real time still passes)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def new_key(ledger: str, **kw: Any) -> str:
    store = KeyStore(ledger)
    secret, _ = store.create(KeySpec(**kw))
    store.close()
    return secret


@pytest.fixture(params=["memory", "redis"])
def state(request: pytest.FixtureRequest) -> dict[str, Any]:
    """`gateway:` options: limits in the process, or on Redis."""
    if request.param == "memory":
        return {}
    return {"state": request.getfixturevalue("redis_url")}


async def test_key_rpm_429_with_retry_after_and_the_sdks_own_retry_gets_through(
        tmp_path: Path, state: dict[str, Any]) -> None:
    ledger = str(tmp_path / "l.sqlite")
    key = new_key(ledger, name="ci", rpm=2)
    async with MockUpstream() as upstream:
        app = create_app(config(upstream, ledger, **state), env={"OPENAI_API_KEY": "sk-up"})
        clock = Shifted()
        assert app.access is not None and app.access.limiter is not None
        app.access.limiter.store.clock = clock  # type: ignore[attr-defined]
        for _ in range(2):
            await sdk(app, key).chat.completions.create(model="m", messages=HI)
        with pytest.raises(openai.RateLimitError) as refused:
            await sdk(app, key).chat.completions.create(model="m", messages=HI)
        error = refused.value
        assert error.status_code == 429 and error.code == "rate_limit_exceeded"
        assert "key 'ci'" in error.message and "2 requests per minute" in error.message
        assert 58 <= int(error.response.headers["retry-after"]) <= 60
        clock.offset = 59.2  # the two admitted requests leave the window in under a second
        seen = Seen()
        out = await sdk(app, key, seen, retries=3).chat.completions.create(
            model="m", messages=HI)
        assert out.choices[0].message.content == ANSWER
        assert seen.statuses == [429, 200]  # refused once, admitted on the SDK's retry
        assert upstream.count("m") == 3  # refusals never reached the provider
        await app.aclose()


async def test_model_limits_apply_to_every_caller_admin_included(
        tmp_path: Path, state: dict[str, Any]) -> None:
    ledger = str(tmp_path / "l.sqlite")
    a, b = new_key(ledger, name="a"), new_key(ledger, name="b")
    async with MockUpstream() as upstream:
        app = create_app(config(upstream, ledger, limits={"m": {"rpm": 3}}, **state),
                         env={"OPENAI_API_KEY": "sk-up", "LLMSWITCH_ADMIN_KEY": ADMIN})
        for key in (a, b, ADMIN):
            await sdk(app, key).chat.completions.create(model="m", messages=HI)
        for key in (a, ADMIN):
            with pytest.raises(openai.RateLimitError, match="model 'm'"):
                await sdk(app, key).chat.completions.create(model="m", messages=HI)
        await sdk(app, a).chat.completions.create(model="other", messages=HI)  # not limited
        await app.aclose()


async def test_unknown_names_in_gateway_limits_are_config_errors(tmp_path: Path) -> None:
    async with MockUpstream() as upstream:
        with pytest.raises(Exception, match=r"gateway\.limits\.nope"):
            create_app(config(upstream, str(tmp_path / "l.sqlite"), limits={"nope": {"rpm": 1}}),
                       env={"OPENAI_API_KEY": "sk-up"})


async def test_tpm_counts_input_and_the_maximum_output(tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite")
    key = new_key(ledger, name="t", tpm=300)
    async with MockUpstream() as upstream:
        app = create_app(config(upstream, ledger), env={"OPENAI_API_KEY": "sk-up"})
        # the first call reserves 1 + 200 tokens and is settled to what it used (~12)
        await sdk(app, key).chat.completions.create(model="m", messages=HI, max_tokens=200)
        with pytest.raises(openai.RateLimitError, match="300 tokens per minute"):
            await sdk(app, key).chat.completions.create(model="m", messages=HI,
                                                        max_tokens=295)  # 12 + 1 + 295 > 300
        await sdk(app, key).chat.completions.create(model="m", messages=HI, max_tokens=250)
        await app.aclose()


async def test_an_answer_without_usage_keeps_its_tpm_reservation(tmp_path: Path) -> None:
    """An upstream that reports no usage settles nothing: the reservation (input + max_tokens)
    stays counted, instead of the call counting as 0 tokens against the limit."""
    ledger = str(tmp_path / "l.sqlite")
    key = new_key(ledger, name="t", tpm=1000)
    async with MockUpstream() as upstream:
        upstream.script("m", ["no_usage"])
        app = create_app(config(upstream, ledger), env={"OPENAI_API_KEY": "sk-up"})
        await sdk(app, key).chat.completions.create(model="m", messages=HI, max_tokens=600)
        with pytest.raises(openai.RateLimitError, match="1000 tokens per minute"):
            await sdk(app, key).chat.completions.create(model="m", messages=HI, max_tokens=600)
        await app.aclose()


async def test_budget_exhausted_is_402_naming_budget_spend_and_reset_and_never_retried(
        tmp_path: Path, state: dict[str, Any]) -> None:
    ledger = str(tmp_path / "l.sqlite")
    async with MockUpstream() as upstream:
        app = create_app(config(upstream, ledger, **state), env={"OPENAI_API_KEY": "sk-up"})
        most = app.switch.estimate("m", HI, max_tokens=100).max_cost_usd
        assert most is not None
        key = new_key(ledger, name="small", budget_usd=most * 1.05, period="day")
        await sdk(app, key).chat.completions.create(model="m", messages=HI, max_tokens=100)
        seen = Seen()
        with pytest.raises(openai.APIStatusError) as refused:
            await sdk(app, key, seen, retries=3).chat.completions.create(
                model="m", messages=HI, max_tokens=100)
        assert seen.statuses == [402]  # the SDK did not retry
        error = refused.value
        assert error.status_code == 402 and error.code == "budget_exceeded"
        message = error.message
        assert "budget of key 'small' exhausted" in message and "this day" in message
        assert "spent $0.0000" in message and "resets at" in message and "T00:00:00Z" in message
        with pytest.raises(anthropic.APIStatusError) as anth:
            httpx2 = pytest.importorskip("httpx2")
            calls: list[int] = []

            async def hook(response: Any) -> None:
                calls.append(response.status_code)

            client = anthropic.AsyncAnthropic(
                api_key=key, base_url="http://gw", max_retries=3,
                http_client=httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app),
                                               base_url="http://gw",
                                               event_hooks={"response": [hook]}))
            await client.messages.create(model="m", max_tokens=100, messages=HI)
        assert anth.value.status_code == 402 and calls == [402]
        assert anth.value.body["error"]["type"] == "billing_error"  # type: ignore[index]
        assert upstream.count("m") == 1
        await app.aclose()


async def test_spend_never_passes_the_budget_under_concurrency(
        tmp_path: Path, state: dict[str, Any]) -> None:
    ledger = str(tmp_path / "l.sqlite")
    async with MockUpstream() as upstream:
        app = create_app(config(upstream, ledger, **state), env={"OPENAI_API_KEY": "sk-up"})
        most = app.switch.estimate("m", HI, max_tokens=300).max_cost_usd
        assert most is not None
        budget = most * 4.5
        key = new_key(ledger, name="c", budget_usd=budget, period="total")
        client = sdk(app, key)

        async def one() -> int:
            try:
                await client.chat.completions.create(model="m", messages=HI, max_tokens=300)
                return 200
            except openai.APIStatusError as exc:
                return exc.status_code

        statuses = await asyncio.gather(*(one() for _ in range(40)))
        assert set(statuses) == {200, 402}
        assert statuses.count(200) >= 4  # reservations gave way to the real, lower costs
        await app.aclose()
    with LedgerStore(ledger) as store:
        spent = sum(r["cost_usd"] for r in store.attempts() if r["key_id"])
        rows = len(store.attempts())
    assert rows == statuses.count(200) and spent <= budget


async def test_budget_is_carried_over_a_restart_by_the_ledger(tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite")
    async with MockUpstream() as upstream:
        app = create_app(config(upstream, ledger), env={"OPENAI_API_KEY": "sk-up"})
        most = app.switch.estimate("m", HI, max_tokens=100).max_cost_usd
        assert most is not None
        # one call's maximum fits, but not on top of what one call really costs
        key = new_key(ledger, name="r", budget_usd=most * 1.05, period="month")
        await sdk(app, key).chat.completions.create(model="m", messages=HI, max_tokens=100)
        await app.aclose()  # flushes the ledger
        again = create_app(config(upstream, ledger), env={"OPENAI_API_KEY": "sk-up"})
        with pytest.raises(openai.APIStatusError, match="budget of key 'r' exhausted"):
            await sdk(again, key).chat.completions.create(model="m", messages=HI,
                                                          max_tokens=100)
        await again.aclose()


async def test_a_budget_refuses_models_without_a_price(tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite")
    key = new_key(ledger, name="p", budget_usd=1.0)
    free = new_key(ledger, name="free")
    async with MockUpstream() as upstream:
        app = create_app(config(upstream, ledger), env={"OPENAI_API_KEY": "sk-up"})
        with pytest.raises(openai.PermissionDeniedError, match="price of 'unpriced' is unknown"):
            await sdk(app, key).chat.completions.create(model="unpriced", messages=HI)
        await sdk(app, free).chat.completions.create(model="unpriced", messages=HI)
        await app.aclose()


async def test_a_fallback_route_reserves_for_every_attempt_it_may_bill(tmp_path: Path) -> None:
    ledger = str(tmp_path / "l.sqlite")
    async with MockUpstream() as upstream:
        app = create_app(config(upstream, ledger), env={"OPENAI_API_KEY": "sk-up"})
        most = app.switch.estimate("answer", HI, max_tokens=100).max_cost_usd
        assert most is not None
        key = new_key(ledger, name="f", budget_usd=most * 5, period="total")
        # 2 targets x (2 retries + 1) = 6 attempts may be billed: more than the budget
        with pytest.raises(openai.APIStatusError, match="up to 6 billed attempts"):
            await sdk(app, key).chat.completions.create(model="answer", messages=HI,
                                                        max_tokens=100)
        await sdk(app, key).chat.completions.create(model="m", messages=HI, max_tokens=100)
        await app.aclose()
        capped = create_app(config(upstream, ledger, budget_attempts=2),
                            env={"OPENAI_API_KEY": "sk-up"})
        await sdk(capped, key).chat.completions.create(model="answer", messages=HI,
                                                       max_tokens=100)
        await capped.aclose()


def test_billed_attempts_from_the_routes() -> None:
    cfg = Config.model_validate({
        "models": {"a": {"provider": "openai", "name": "a"},
                   "alias": {"model": "a"}},
        "routes": {
            "fb": {"strategy": "fallback", "targets": ["a", "alias"]},
            "fb0": {"strategy": "fallback", "targets": ["a", "b"], "retries": 0},
            "nested": {"strategy": "fallback", "targets": ["fb0", "a"], "retries": 1},
            "ens": {"strategy": "ensemble", "targets": ["a", "b", "c"], "judge": "a"},
            "lb": {"strategy": "loadbalance", "targets": [{"model": "a"}, {"model": "b"}],
                   "retries": 1},
        }})
    assert billed_attempts(cfg, "a") == 1 and billed_attempts(cfg, "alias") == 1
    assert billed_attempts(cfg, "fb") == 6  # 2 targets x (default 2 retries + 1)
    assert billed_attempts(cfg, "fb0") == 2
    assert billed_attempts(cfg, "nested") == 6  # (2 + 1) x 2
    assert billed_attempts(cfg, "ens") == 4  # three answers and the judge
    assert billed_attempts(cfg, "lb") == 4
    assert billed_attempts(cfg, "fb", cap=3) == 3
