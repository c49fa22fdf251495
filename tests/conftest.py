"""Test-session guards: no real network, no provider keys or llmswitch settings leaking in."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex

# Variables that would change what a test talks to or which key it sends.
_SCRUB_PREFIXES = ("LLMSWITCH_", "OPENAI_", "ANTHROPIC_", "GEMINI_", "GOOGLE_API", "AZURE_OPENAI",
                   "DEEPSEEK_", "OPENROUTER_", "OLLAMA_", "AWS_")
_KEEP = {"LLMSWITCH_SMOLLM2_PATH", "LLMSWITCH_TEST_POSTGRES_DSN", "LLMSWITCH_TEST_REDIS_URL"}


def _is_local(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        raise ConnectionRefusedError(f"tests may not reach the network ({address!r})")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> Any:
    if not _is_local(address):
        raise ConnectionRefusedError(f"tests may not reach the network ({address!r})")
    return _real_connect_ex(self, address)


@pytest.fixture(autouse=True, scope="session")
def _block_network() -> Iterator[None]:
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
    yield
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _real_connect_ex  # type: ignore[method-assign]


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    for name in list(os.environ):
        if name.startswith(_SCRUB_PREFIXES) and name not in _KEEP:
            monkeypatch.delenv(name, raising=False)
    # Anything that writes state (ledger, trace store) goes to a temporary folder.
    monkeypatch.setenv("LLMSWITCH_HOME", str(tmp_path_factory.mktemp("llmswitch-home")))
    monkeypatch.chdir(tmp_path_factory.mktemp("cwd"))
