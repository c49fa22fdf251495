"""A provider at run time: credentials, base URL and the pooled HTTP client. No translation."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import warnings
from collections.abc import AsyncGenerator, Mapping
from urllib.parse import urlsplit

from llmswitch.config.schema import ProviderConfig
from llmswitch.errors import AuthenticationError, ConfigError, LLMSwitchError
from llmswitch.providers.specs import (
    SPECS,
    ProviderSpec,
    api_env,
    base_url_env,
    sdk_base_url,
)
from llmswitch.providers.transport import (
    ClientOptions,
    HttpRequest,
    ProxyRules,
    Transport,
    TransportFactory,
    tls_context,
)
from llmswitch.scrub import Scrubber, header_secrets, url_secrets

__all__ = ["KeyPrecedenceWarning", "Provider", "TransportFactory"]


class KeyPrecedenceWarning(UserWarning):
    """Several of a provider's key variables are set; the message says which one is used."""


class Provider:
    """Who we talk to: resolves the key (argument, then env var) and owns one client per loop."""

    def __init__(
        self,
        name: str,
        config: ProviderConfig | None = None,
        env: Mapping[str, str] | None = None,
        transport: TransportFactory | None = None,
    ) -> None:
        self.name = name
        self.config = config or ProviderConfig()
        self.env = os.environ if env is None else env
        self.spec = _spec_for(name, self.config)
        self._transport = transport
        self._transports: dict[asyncio.AbstractEventLoop,
                               tuple[Transport, AsyncGenerator[None, None]]] = {}
        self._secrets: tuple[tuple[str | None, str | None], tuple[str, ...]] | None = None
        self._scrubber: tuple[tuple[str, ...], Scrubber] | None = None
        self._warned_keys = False

    @property
    def protocol(self) -> str:
        """The adapter family that speaks to this provider."""
        if self.spec.protocol == "ollama" and (
            self.config.api == "openai" or self.base_url.endswith("/v1")
        ):
            return "openai"
        return self.spec.protocol

    @property
    def base_url(self) -> str:
        """`$LLMSWITCH_<NAME>_BASE_URL`, else the config's `base_url`, else the variable the
        provider's own SDK reads (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`, `OLLAMA_HOST`,
        `AZURE_OPENAI_ENDPOINT`), else the default."""
        url = (self.env.get(base_url_env(self.name)) or self.config.base_url
               or sdk_base_url(self.spec, self.env) or self.spec.base_url)
        if not url:
            raise ConfigError(
                f"provider {self.name} has no base URL",
                provider=self.name,
                hint=f"set providers.{self.name}.base_url in llmswitch.yaml or "
                f"{base_url_env(self.name)}"
                + "".join(f" (or {var})" for var in self.spec.base_url_env),
            )
        return url.rstrip("/")

    @property
    def local_base_url(self) -> bool:
        """Whether the base URL is a local or private server, which may need no key.

        Every provider's public API is HTTPS on a public host; a plain-HTTP URL, or one on
        loopback or a private network, is a local server, a proxy or a test double.
        """
        url = urlsplit(self.base_url)
        host = url.hostname or ""
        if url.scheme == "http" or host in ("localhost", "local") or host.endswith(".localhost"):
            return True
        try:
            ip = ipaddress.ip_address(host)
        except ValueError:
            return False
        return ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_unspecified

    @property
    def api(self) -> str | None:
        """`chat` or `responses` when chosen: `$LLMSWITCH_<NAME>_API`, else the config's `api`."""
        return self.env.get(api_env(self.name)) or self.config.api

    def key_sources(self) -> tuple[str, ...]:
        """The environment variables consulted for the key, in order."""
        if self.config.api_key_env:
            return (self.config.api_key_env,)
        return self.spec.key_env

    def api_key(self, model: str | None = None) -> str | None:
        """The API key, or `None` where the provider (or a local server) needs none.

        The config's `api_key`, else the first variable of `key_sources()` that is set (for
        Gemini `GOOGLE_API_KEY` before `GEMINI_API_KEY`, as google-genai reads them, with a
        `KeyPrecedenceWarning` when both are set).
        """
        if self.config.api_key is not None:
            return self.config.api_key.get_secret_value()
        sources = self.key_sources()
        for i, var in enumerate(sources):
            value = self.env.get(var)
            if value:
                if not self._warned_keys and self.spec.warn_both_keys:
                    self._warn_other_keys(var, sources[i + 1:])
                return value
        if self.spec.needs_key and not self.local_base_url:
            names = " or ".join(self.key_sources()) or "an API key variable"
            raise AuthenticationError(
                f"no API key for {self.name}",
                provider=self.name,
                model=model,
                hint=f"set {names}, or providers.{self.name}.api_key_env in llmswitch.yaml",
            )
        return None

    def _warn_other_keys(self, used: str, later: tuple[str, ...]) -> None:
        others = [var for var in later if self.env.get(var)]
        self._warned_keys = True
        if others:
            warnings.warn(
                f"both {used} and {', '.join(others)} are set: {self.name} uses {used}",
                KeyPrecedenceWarning, stacklevel=4)

    def auth_headers(self, model: str | None = None) -> dict[str, str]:
        """Headers that authenticate a request (never logged), plus configured extra headers."""
        headers = dict(self.config.headers)
        key = self.api_key(model)
        if key:
            kind = self.spec.auth_header
            if kind == "authorization":
                headers["authorization"] = f"Bearer {key}"
            elif kind != "none":
                headers[kind] = key
        return headers

    async def sign(self, request: HttpRequest) -> HttpRequest:
        """Last touch before sending (e.g. SigV4 for Bedrock); the default changes nothing."""
        return request

    def secrets(self) -> tuple[str, ...]:
        """Every secret this provider sends: the API key, configured header values (all
        treated as secret) and a password or credential-like query value in the base URL.
        Computed again only when the key or the base URL changes."""
        try:
            key = self.api_key()
        except LLMSwitchError:
            key = None
        try:
            url: str | None = self.base_url
        except LLMSwitchError:
            url = None
        cached = self._secrets
        if cached is not None and cached[0] == (key, url):
            return cached[1]
        found = (*((key,) if key else ()), *header_secrets(self.config.headers),
                 *url_secrets(url))
        self._secrets = ((key, url), found)
        return found

    def scrubber(self) -> Scrubber:
        """The scrubber for `secrets()`; compiled once per set of secrets (only error paths
        ask for it, so a successful call pays nothing)."""
        secrets = self.secrets()
        cached = self._scrubber
        if cached is None or cached[0] != secrets:
            cached = self._scrubber = (secrets, Scrubber(secrets))
        return cached[1]

    def scrub(self, *errors: BaseException) -> None:
        """Remove every secret of this provider from errors (message, hint, body, args, the
        exceptions they were raised from), in place, before they reach a span or a caller."""
        scrubber = self.scrubber()
        for error in errors:
            scrubber.error(error)

    def transport(self) -> Transport:
        """The pooled transport of the running event loop (created on first use): the
        factory's (`Switch(transports=...)`), else aiohttp's. It is closed by `aclose`, or
        when its loop shuts down (`asyncio.run`'s end), or with this provider."""
        loop = asyncio.get_running_loop()
        found = self._transports.get(loop)
        if found is not None and not getattr(found[0], "closed", False):
            return found[0]
        for old in [lp for lp in self._transports if lp.is_closed()]:
            del self._transports[old]  # its connections died with their loop
        transport = self._new_transport()
        self._transports[loop] = (transport, _closer(transport))
        return transport

    def _new_transport(self) -> Transport:
        if self._transport is not None:
            made = self._transport()
            if isinstance(made, Transport):
                return made
            from llmswitch.providers.httpx_transport import HttpxTransport

            return HttpxTransport(made, self.client_options(tls=False))
        from llmswitch.providers.aiohttp_transport import AiohttpTransport

        return AiohttpTransport(self.client_options())

    def client_options(self, tls: bool = True) -> ClientOptions:
        """Connect timeout, pool size, TLS context and proxies (from this provider's
        environment: `SSL_CERT_FILE`/`SSL_CERT_DIR`, `https_proxy`/`http_proxy`/`all_proxy`/
        `no_proxy`)."""
        return ClientOptions(
            connect_timeout=self.config.connect_timeout,
            max_connections=self.config.max_connections,
            ssl_context=tls_context(self.env) if tls else None,
            proxies=ProxyRules.from_env(self.env),
        )

    async def aclose(self) -> None:
        """Close the transport of the running loop (others close when their loops shut down)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        found = self._transports.pop(loop, None)
        if found is not None:
            await found[1].aclose()


def _closer(transport: Transport) -> AsyncGenerator[None, None]:
    """An async generator, started here, whose `finally` closes `transport`: the running
    loop finalizes it when it shuts down (`asyncio.run` calls `shutdown_asyncgens`) or when
    it is garbage-collected, so a transport is closed on its own loop even when nobody called
    `aclose` (aiohttp logs "Unclosed client session" otherwise)."""

    async def hold() -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            await transport.aclose()

    gen = hold()
    with contextlib.suppress(StopIteration):
        gen.__anext__().send(None)  # runs to the `yield` now; registers with the loop
    return gen


def _spec_for(name: str, config: ProviderConfig) -> ProviderSpec:
    spec = SPECS.get(name)
    if spec is not None:
        return spec
    if config.api in ("openai", "chat", "responses") or config.base_url:
        # Any other OpenAI-compatible server (vLLM, llama.cpp's server, LM Studio …).
        return ProviderSpec(name, "openai", config.base_url or "", (), needs_key=False)
    raise ConfigError(
        f"unknown provider {name!r}",
        provider=name,
        hint="known: " + ", ".join(SPECS) + "; or give providers."
        + name + ".base_url for an OpenAI-compatible server",
    )
