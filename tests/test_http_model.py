"""HttpModel over a real loopback socket: streaming, timeouts, resets, cuts, bad bodies."""

from __future__ import annotations

import json
import warnings

import pytest

from llmswitch import Switch, TextDelta
from llmswitch.errors import (
    AuthenticationError,
    BadRequestError,
    ConnectionError,
    LLMSwitchError,
    ModelNotFoundError,
    ResponseError,
    TimeoutError,
)
from llmswitch.models import collect
from llmswitch.providers.http_model import UnknownPriceWarning
from tests.support.fixtures import load
from tests.support.replay import Scripted, serving

KEY = "sk-test-SECRET-123"


def switch_for(url: str, **extra: object) -> Switch:
    return Switch({"providers": {"openai": {"base_url": url + "/v1", **extra}}},
                  env={"OPENAI_API_KEY": KEY})


async def test_complete_sends_recorded_shape_and_returns_completion() -> None:
    fixture = load("openai/chat_plain_gpt4o")
    with serving(Scripted.from_fixture(fixture)) as server:
        async with switch_for(server.url) as switch:
            done = await switch.complete("openai/gpt-4o", "What is 4200 + 42?")
    got = server.received[0]
    assert got.path == "/v1/chat/completions"
    assert got.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(got.body)["messages"] == [
        {"role": "user", "content": "What is 4200 + 42?"}]
    assert done.text == "\\(4200 + 42 = 4242\\)."
    assert (done.provider, done.model, done.finish_reason) == ("openai", "gpt-4o", "stop")
    assert done.usage.input_tokens == 16 and done.usage.output_tokens == 12
    assert done.cost_usd is not None and done.cost_usd > 0
    assert done.latency_ms > 0
    assert done.trace is not None
    assert done.trace.attributes["gen_ai.usage.input_tokens"] == 16


async def test_stream_delivers_pieces_then_end() -> None:
    fixture = load("openai/chat_stream_gpt35")
    with serving(Scripted.from_fixture(fixture, chunk_size=40, delay=0.002)) as server:
        async with switch_for(server.url) as switch:
            events = [e async for e in switch.stream("openai/gpt-3.5-turbo", "Count")]
    texts = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(texts) > 3
    end = events[-1]
    assert "".join(texts) == "1, 2, 3, 4, 5"
    assert end.completion.text == "1, 2, 3, 4, 5"  # type: ignore[union-attr]
    assert end.completion.ttft_ms is not None  # type: ignore[union-attr]
    assert json.loads(server.received[0].body)["stream_options"] == {"include_usage": True}


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.95])
async def test_stream_cut_mid_way_is_an_error_never_a_short_answer(fraction: float) -> None:
    fixture = load("openai/chat_stream_gpt35")
    body = Scripted.from_fixture(fixture).body
    cut = Scripted.from_fixture(fixture, chunk_size=64, cut_after=int(len(body) * fraction))
    with serving(cut) as server:
        async with switch_for(server.url) as switch:
            with pytest.raises((ConnectionError, ResponseError)) as caught:
                await collect(switch.stream("openai/gpt-3.5-turbo", "Count"))
    assert caught.value.trace is not None
    assert caught.value.trace.status == "error"


async def test_timeout_covers_the_whole_call() -> None:
    fixture = load("openai/chat_plain_gpt4o")
    with serving(Scripted.from_fixture(fixture, hang=1.5)) as server:
        async with switch_for(server.url) as switch:
            with pytest.raises(TimeoutError):
                await switch.complete("openai/gpt-4o", "hi", timeout=0.3)


async def test_slow_drip_stream_hits_the_deadline() -> None:
    fixture = load("openai/chat_stream_gpt35")
    with serving(Scripted.from_fixture(fixture, chunk_size=20, delay=0.05)) as server:
        async with switch_for(server.url) as switch:
            with pytest.raises(TimeoutError):
                await collect(switch.stream("openai/gpt-3.5-turbo", "x", timeout=0.2))


async def test_non_json_body_is_a_response_error() -> None:
    bad = Scripted(200, {"content-type": "text/html"}, b"<html>502 Bad Gateway</html>")
    with serving(bad) as server:
        async with switch_for(server.url) as switch:
            with pytest.raises(ResponseError) as caught:
                await switch.complete("openai/gpt-4o", "hi")
    assert "502 Bad Gateway" in str(caught.value)


async def test_truncated_json_body_is_a_response_error() -> None:
    body = Scripted.from_fixture(load("openai/chat_plain_gpt4o")).body[:-40]
    with serving(Scripted(200, {"content-type": "application/json"}, body)) as server:
        async with switch_for(server.url) as switch:
            with pytest.raises(ResponseError):
                await switch.complete("openai/gpt-4o", "hi")


async def test_unreachable_base_url_is_a_connection_error() -> None:
    async with switch_for("http://127.0.0.1:9") as switch:
        with pytest.raises(ConnectionError) as caught:
            await switch.complete("openai/gpt-4o", "hi")
    assert caught.value.provider == "openai"
    assert "base URL" in str(caught.value)


async def test_provider_404_suggests_catalog_models() -> None:
    fixture = load("openai/chat_err_404_model_not_found")
    with serving(Scripted.from_fixture(fixture)) as server:
        async with switch_for(server.url) as switch:
            with pytest.raises(ModelNotFoundError) as caught:
                await switch.complete("openai/gpt-4o-mni", "hi")
    assert caught.value.status == 404
    assert "openai/gpt-4o-mini" in caught.value.suggestions


async def test_unlisted_model_is_served_with_unknown_cost_and_one_warning() -> None:
    fixture = load("openai/chat_plain_gpt4o")
    with serving(Scripted.from_fixture(fixture)) as server:
        async with switch_for(server.url) as switch:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                first = await switch.complete("openai/brand-new-model", "hi")
                second = await switch.complete("openai/brand-new-model", "hi")
    assert first.cost_usd is None and second.cost_usd is None
    assert len([w for w in caught if issubclass(w.category, UnknownPriceWarning)]) == 1
    assert json.loads(server.received[0].body)["model"] == "brand-new-model"


async def test_missing_key_names_the_variable() -> None:
    async with Switch({}, env={}) as switch:
        with pytest.raises(AuthenticationError) as caught:
            await switch.complete("openai/gpt-4o", "hi")
    assert "OPENAI_API_KEY" in str(caught.value)


async def test_custom_key_variable_from_config() -> None:
    async with Switch({"providers": {"openai": {"api_key_env": "MY_KEY"}}}, env={}) as switch:
        with pytest.raises(AuthenticationError) as caught:
            await switch.complete("openai/gpt-4o", "hi")
    assert "MY_KEY" in str(caught.value)


async def test_key_never_appears_in_trace_or_errors() -> None:
    fixture = load("openai/chat_err_400_unsupported_parameter")
    ok = load("openai/chat_plain_gpt4o")
    with serving(Scripted.from_fixture(fixture), Scripted.from_fixture(ok)) as server:
        async with switch_for(server.url) as switch:
            with pytest.raises(LLMSwitchError) as caught:
                await switch.complete("openai/gpt-4o", "hi")
            done = await switch.complete("openai/gpt-4o", "hi")
    assert caught.value.trace is not None
    dumped = json.dumps([caught.value.to_dict(), caught.value.trace.to_dict(),
                         done.trace.to_dict() if done.trace else None], default=str)
    assert KEY not in dumped and KEY not in str(caught.value)


async def test_base_url_env_var_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    fixture = load("openai/chat_plain_gpt4o")
    with serving(Scripted.from_fixture(fixture)) as server:
        env = {"LLMSWITCH_OPENAI_BASE_URL": server.url + "/v1", "OPENAI_API_KEY": "k"}
        async with Switch({"providers": {"openai": {"base_url": "http://127.0.0.1:9"}}},
                          env=env) as switch:
            done = await switch.complete("openai/gpt-4o", "hi")
    assert done.text


async def test_local_server_needs_no_key() -> None:
    fixture = load("ollama/v1_chat_plain")
    with serving(Scripted.from_fixture(fixture)) as server:
        async with Switch({}, env={"LLMSWITCH_OPENAI_BASE_URL": server.url + "/v1"}) as switch:
            done = await switch.complete("openai/gpt-4o-mini", "hi")
    assert "authorization" not in server.received[0].headers
    assert done.text.startswith("4200")


async def test_base_url_query_string_follows_the_path() -> None:
    """A base URL with a query (a gateway's tenant, Azure's api-version) keeps it after the
    endpoint's path instead of swallowing the path into the query."""
    fixture = load("openai/chat_plain_gpt4o")
    with serving(Scripted.from_fixture(fixture)) as server:
        config = {"providers": {"openai": {"base_url": server.url + "/v1?tenant=a%20b&x=1"}}}
        async with Switch(config, env={"OPENAI_API_KEY": KEY}) as switch:
            await switch.complete("openai/gpt-4o", "hi")
    assert server.received[0].path == "/v1/chat/completions?tenant=a%20b&x=1"


@pytest.mark.parametrize("extra", [{"logit_bias": {"1": float("nan")}}, {"user": object()}])
async def test_request_that_cannot_be_encoded_is_a_bad_request_sent_nowhere(
        extra: dict[str, object]) -> None:
    """Not a 'could not read the response' (retryable) error: a fallback would send the same
    unencodable request to every target."""
    fixture = load("openai/chat_plain_gpt4o")
    with serving(Scripted.from_fixture(fixture)) as server:
        config = {"providers": {"openai": {"base_url": server.url + "/v1"}},
                  "routes": {"r": {"strategy": "fallback",
                                   "targets": ["openai/gpt-4o", "openai/gpt-4o-mini"]}}}
        async with Switch(config, env={"OPENAI_API_KEY": KEY}) as switch:
            with pytest.raises(BadRequestError, match="could not build the request") as info:
                await switch.complete("r", "hi", extra=extra)
    assert not info.value.retryable
    assert server.received == []


def test_sync_bridge() -> None:
    fixture = load("openai/chat_plain_gpt4o")
    with serving(Scripted.from_fixture(fixture)) as server, switch_for(server.url) as switch:
        done = switch.complete_sync("openai/gpt-4o", "hi")
        events = list(switch.stream_sync("openai/gpt-4o", "hi"))
    assert done.text and events


@pytest.mark.parametrize("body", [
    {"model": "claude-3-5-sonnet", "messages": [{"role": "user", "content": "re-run the e-mail"}]},
    {"temperature": 1e-05, "top_p": 0.00001, "n": 10**16, "x": 1e16, "y": 2.5e-7},
    {"text": "1e5 \u00e9 \u2028 \"q\"", "nested": [[{"a": None, "b": True}]]},
])
def test_request_body_is_byte_for_byte_json(body: dict[str, object]) -> None:
    """The orjson fast path writes exactly what `json.dumps` would (numbers with exponents and
    bodies that could differ take json's path)."""
    from llmswitch.providers.http_model import request_body

    assert request_body(body) == json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                                            allow_nan=False).encode()
