"""Speed for the in-process CLI runs: every run builds a fresh httpx client, and each client
loads the CA bundle into a new TLS context (25-60 ms), although the loopback server speaks
plain HTTP. The runs here share one default context instead (test plumbing only)."""

from __future__ import annotations

import ssl
from typing import Any

import httpx
import httpx._transports.default as httpx_default
import pytest


@pytest.fixture(scope="session")
def _tls_context() -> ssl.SSLContext:
    return httpx.create_ssl_context()


@pytest.fixture(autouse=True)
def _shared_tls_context(monkeypatch: pytest.MonkeyPatch, _tls_context: ssl.SSLContext) -> None:
    original = httpx.create_ssl_context

    def shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> ssl.SSLContext:
        if verify is True and cert is None:
            return _tls_context
        return original(verify=verify, cert=cert, trust_env=trust_env)

    monkeypatch.setattr(httpx_default, "create_ssl_context", shared)
