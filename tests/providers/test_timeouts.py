"""What each timeout means, over a real socket (issue 12, item 4, the provider-model level):

- `providers.<name>.timeout` bounds one attempt from sending the request to the last byte read,
  however the provider trickles its answer (a byte at a time used to keep httpx waiting forever);
- `providers.<name>.stall_timeout` bounds each silence of a stream;
- the call's `timeout` bounds the attempt too, the smaller of the two winning;
- time the caller spends between stream events is the caller's, not the provider's.

Each test bounds itself, so a transport that waits forever fails instead of hanging.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from llmswitch import Switch, TextDelta
from llmswitch.errors import TimeoutError
from llmswitch.models import collect
from tests.providers.servers import ANSWER, Upstream

BOUND = 20.0  # seconds: far above every limit below, so only a missing limit reaches it


def switch_for(up: Upstream, **provider: Any) -> Switch:
    return Switch({"providers": {"openai": {"base_url": up.base_url, **provider}},
                   "observe": {"ledger": False}}, env={"OPENAI_API_KEY": "sk-test"})


async def test_a_trickling_answer_ends_at_the_providers_timeout() -> None:
    async with Upstream("drip_json", gap=0.05) as up, switch_for(up, timeout=0.5) as switch:
        with pytest.raises(TimeoutError) as caught:
            await asyncio.wait_for(switch.complete("openai/gpt-4o-mini", "hi"), BOUND)
    assert "0.5s" in str(caught.value)
    assert caught.value.trace is not None and caught.value.trace.status == "error"


async def test_a_trickling_stream_ends_at_the_providers_timeout() -> None:
    # a comment byte every 50 ms: never silent long enough for the stall timeout, never done
    async with Upstream("drip_sse", gap=0.05) as up, switch_for(up, timeout=0.5) as switch:
        with pytest.raises(TimeoutError) as caught:
            await asyncio.wait_for(collect(switch.stream("openai/gpt-4o-mini", "hi")), BOUND)
    assert "0.5s" in str(caught.value)


async def test_the_calls_timeout_wins_when_smaller() -> None:
    async with Upstream("drip_json", gap=0.05) as up, switch_for(up, timeout=60) as switch:
        with pytest.raises(TimeoutError) as caught:
            await asyncio.wait_for(
                switch.complete("openai/gpt-4o-mini", "hi", timeout=0.4), BOUND)
    assert "0.4s" in str(caught.value)


async def test_a_silent_stream_ends_at_the_stall_timeout() -> None:
    async with Upstream("stall_sse") as up, switch_for(up, timeout=60,
                                                       stall_timeout=0.3) as switch:
        got: list[str] = []
        with pytest.raises(TimeoutError) as caught:
            async with asyncio.timeout(BOUND):
                async for event in switch.stream("openai/gpt-4o-mini", "hi"):
                    if isinstance(event, TextDelta):
                        got.append(event.text)
        await up.wait_closed_connections(1)  # the stalled connection was dropped, not kept
    assert got == ["Hello", "there"]
    assert "0.3s" in str(caught.value) and "stall_timeout" in str(caught.value)


async def test_the_stall_timeout_does_not_limit_a_whole_answer() -> None:
    # a non-streamed answer is silent until it is ready: only `timeout` bounds it
    async with Upstream("late_json", gap=0.3) as up, switch_for(up, timeout=BOUND,
                                                                stall_timeout=0.05) as switch:
        done = await asyncio.wait_for(switch.complete("openai/gpt-4o-mini", "hi"), BOUND)
    assert done.text == ANSWER


async def test_time_spent_by_the_reader_is_not_the_providers() -> None:
    # 5 words; the reader takes 0.15 s over each: 0.75 s of its own time, the limit is 0.5 s
    async with Upstream("sse_gaps", gap=0.0) as up, switch_for(up, timeout=0.5) as switch:
        texts = []
        async with asyncio.timeout(BOUND):
            async for event in switch.stream("openai/gpt-4o-mini", "hi", timeout=0.5):
                if isinstance(event, TextDelta):
                    texts.append(event.text)
                    await asyncio.sleep(0.15)
    assert " ".join(texts) == ANSWER


def test_every_default_is_finite() -> None:
    from llmswitch.config.schema import ProviderConfig

    config = ProviderConfig()
    assert 0 < config.stall_timeout <= config.timeout < float("inf")
    assert 0 < config.connect_timeout < float("inf")
