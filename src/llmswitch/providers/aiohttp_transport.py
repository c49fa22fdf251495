"""The default `Transport`: one pooled aiohttp session per provider and event loop.

HTTP/1.1 keep-alive over a pool of `max_connections`; TLS verified with `tls_context` (the
environment's CA bundle when given); proxies from `ProxyRules` (the environment); no cookies
kept between calls (a gateway serves many callers through one session) and no redirects
followed (a provider that redirects is misconfigured: the 3xx reaches the adapter as an
error, as before). aiohttp's read timeout measures the server only: it stops while reading
is paused because our caller has not asked for more yet.
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

import aiohttp
from yarl import URL

from llmswitch.errors import (
    ConfigError,
    ConnectionError,
    LLMSwitchError,
    ProviderError,
    ResponseError,
    TimeoutError,
)
from llmswitch.providers.transport import ClientOptions, HttpRequest, HttpResponse


class AiohttpTransport:
    """`Transport` over an `aiohttp.ClientSession` (create it inside the running loop)."""

    def __init__(self, options: ClientOptions) -> None:
        self._connect_timeout = options.connect_timeout
        self._proxies = options.proxies
        self._session = aiohttp.ClientSession(
            connector=_Connector(limit=options.max_connections, limit_per_host=0,
                                 ssl=options.ssl_context or True),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=options.connect_timeout),
            auto_decompress=True,
            trust_env=False,  # proxies come from ProxyRules; no ~/.netrc credentials
        )
        self._timeouts: dict[float | None, aiohttp.ClientTimeout] = {}

    async def send(self, request: HttpRequest, *, read_timeout: float | None,
                   on_sent: Callable[[], None] | None = None) -> HttpResponse:
        """Send; return once the status and headers are in (typed errors on failure)."""
        try:
            url = _url(request.url)
        except (ValueError, TypeError) as exc:
            raise _invalid_url(request.url, exc) from None
        proxy = (self._proxies.for_url(url.scheme, url.host or "")
                 if self._proxies is not None else None)
        token = _ON_CONNECTED.set(on_sent)
        try:
            response = await self._session.request(
                request.method, url, data=request.body or None, headers=request.headers,
                allow_redirects=False, timeout=self._timeout(read_timeout), proxy=proxy)
        except (aiohttp.ClientError, OSError, builtins.TimeoutError) as exc:
            raise _error(exc, request.url, read_timeout, self._connect_timeout) from exc
        except ValueError as exc:  # e.g. a header value with a line break
            raise ConfigError(f"cannot send the request to {request.url}: {exc}",
                              hint="check providers.<name>.base_url and headers") from exc
        finally:
            _ON_CONNECTED.reset(token)
        return AiohttpResponse(response, request.url, read_timeout)

    def _timeout(self, read_timeout: float | None) -> aiohttp.ClientTimeout:
        timeout = self._timeouts.get(read_timeout)
        if timeout is None:
            timeout = self._timeouts[read_timeout] = aiohttp.ClientTimeout(
                total=None, sock_connect=self._connect_timeout, sock_read=read_timeout)
        return timeout

    async def aclose(self) -> None:
        """Close the session and its connections."""
        await self._session.close()

    @property
    def closed(self) -> bool:
        """Whether `aclose` ran."""
        return self._session.closed


_ON_CONNECTED: ContextVar[Callable[[], None] | None] = ContextVar("llmswitch_on_connected",
                                                                  default=None)


class _Connector(aiohttp.TCPConnector):
    """Tells the request in flight when it has a connection: aiohttp writes a small request
    at once after this, with no await in between, so from here on the provider sees it."""

    async def connect(self, req: Any, traces: Any, timeout: Any) -> Any:
        connection = await super().connect(req, traces, timeout)
        callback = _ON_CONNECTED.get()
        if callback is not None:
            callback()
        return connection


class AiohttpResponse:
    """`HttpResponse` over an `aiohttp.ClientResponse`."""

    __slots__ = ("_content", "_read_timeout", "_response", "_url", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse, url: str,
                 read_timeout: float | None) -> None:
        self._response = response
        self._content = response.content
        self._url = url
        self._read_timeout = read_timeout
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        """The whole body."""
        try:
            return await self._response.read()
        except (aiohttp.ClientError, OSError, builtins.TimeoutError) as exc:
            raise _error(exc, self._url, self._read_timeout, None) from exc

    async def chunk(self) -> bytes:
        """What has arrived (waiting for at least one byte); `b""` at the end."""
        try:
            return await self._content.readany()
        except (aiohttp.ClientError, OSError, builtins.TimeoutError) as exc:
            raise _error(exc, self._url, self._read_timeout, None) from exc

    async def aclose(self) -> None:
        """Release the connection to the pool, or close it if the body was not all read."""
        if self._content.at_eof():
            self._response.release()
        else:
            self._response.close()


@functools.lru_cache(maxsize=1024)
def _url(url: str) -> URL:
    """Sent exactly as built (our URLs are already encoded: see `quote_url`)."""
    return URL(url, encoded=True)


def _error(exc: BaseException, url: str, read_timeout: float | None,
           connect_timeout: float | None) -> LLMSwitchError:
    """Map aiohttp's failure to llmswitch's typed error (the same types as every transport)."""
    if isinstance(exc, LLMSwitchError):
        return exc
    if isinstance(exc, aiohttp.ConnectionTimeoutError) or (
            connect_timeout is not None and isinstance(exc, builtins.TimeoutError)
            and not isinstance(exc, aiohttp.SocketTimeoutError)):
        return TimeoutError(f"could not connect to {url} within {connect_timeout:g}s",
                            hint="check the base URL and the network, or raise "
                            "providers.<name>.connect_timeout")
    if isinstance(exc, aiohttp.SocketTimeoutError | builtins.TimeoutError):
        return TimeoutError(
            f"the provider sent nothing for {read_timeout:g}s" if read_timeout
            else "the provider sent nothing in time",
            hint="raise providers.<name>.stall_timeout, or try another model")
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return ConnectionError(f"TLS failed with {url}: {exc}",
                               hint="for a private CA, set SSL_CERT_FILE to its bundle")
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return ConnectionError(f"cannot connect to the proxy for {url}: {exc}",
                               hint="check https_proxy / http_proxy / no_proxy")
    return _broken(exc, url)


def _broken(exc: BaseException, url: str) -> LLMSwitchError:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return ConnectionError(f"cannot connect to {url}: {exc}",
                               hint="check the base URL and that the server is up")
    if isinstance(exc, aiohttp.ClientPayloadError):
        if isinstance(exc.__cause__, aiohttp.http_exceptions.ContentEncodingError) or (
                "encoding" in str(exc).lower() and "transfer" not in str(exc).lower()):
            return ResponseError(f"undecodable response body: {exc}")
        return ConnectionError(f"the connection broke mid-response: {exc}")
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientConnectionResetError):
        return ConnectionError(f"the connection broke mid-response: {exc}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return ConnectionError(f"the server's HTTP response could not be read: {_text(exc)}")
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return _invalid_url(url, exc)
    if isinstance(exc, aiohttp.ClientConnectionError | OSError):
        return ConnectionError(f"network error: {exc}")
    return ProviderError(f"HTTP error: {exc}")


def _invalid_url(url: str, exc: BaseException) -> ConfigError:
    return ConfigError(f"invalid base URL {url!r}: {exc}",
                       hint="check providers.<name>.base_url or LLMSWITCH_<NAME>_BASE_URL")


def _text(exc: Any) -> str:
    return str(getattr(exc, "message", "") or exc)
