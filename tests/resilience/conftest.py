"""Shared fixtures: the fault-injecting mock upstream and a Switch pointed at it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "support"))

from mock_upstream import MockUpstream

from llmswitch import Switch
from llmswitch.resilience.clock import FakeClock
from llmswitch.resilience.services import SERVICE_KEY, Resilience

PRICES = {"context_window": 8000, "max_output_tokens": 1000,
          "input_per_mtok": 1.0, "output_per_mtok": 2.0}


@pytest.fixture
async def upstream() -> AsyncIterator[MockUpstream]:
    async with MockUpstream(drip_s=0.02, hang_s=5.0) as up:
        yield up


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def http_switch(upstream: MockUpstream, clock: FakeClock, tmp_path: Path
                ) -> Callable[..., Switch]:
    """`http_switch(route_options)`: route `r` = fallback over openai models primary, backup."""
    def make(targets: tuple[str, ...] = ("primary", "backup"), timeout: float = 10.0,
             **options: Any) -> Switch:
        config = {
            "providers": {"openai": {"base_url": upstream.base_url, "timeout": timeout}},
            "models": {n: {"provider": "openai", "name": n, **PRICES} for n in targets},
            "routes": {"r": {"strategy": "fallback", "targets": list(targets), **options}},
            "observe": {"ledger": str(tmp_path / "ledger.sqlite"), "flush_interval": 0.05},
        }
        return Switch(config, env={"OPENAI_API_KEY": "sk-test"},
                      services={SERVICE_KEY: Resilience(clock=clock, rng=lambda: 0.5)})
    return make
