"""`HttpxTransport`: any `httpx.AsyncBaseTransport` behind the `Transport` interface.

This is how the embedded local model (`local/transport.py`, answered in-process) and tests'
fakes (`httpx.MockTransport`, passed as `Switch(transports={name: factory})`) plug in: the
request they see is the `httpx.Request` a real client would send (same headers and body).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping

from llmswitch._httpx import httpx  # httpx without its CLI (see that module)
from llmswitch.errors import (
    ConfigError,
    ConnectionError,
    LLMSwitchError,
    ProviderError,
    ResponseError,
    TimeoutError,
)
from llmswitch.providers.transport import ClientOptions, HttpRequest, HttpResponse


class HttpxTransport:
    """`Transport` over an `httpx.AsyncClient` with the given httpx transport."""

    def __init__(self, transport: httpx.AsyncBaseTransport, options: ClientOptions) -> None:
        self._connect_timeout = options.connect_timeout
        self._client = httpx.AsyncClient(
            transport=transport,
            limits=httpx.Limits(max_connections=options.max_connections,
                                max_keepalive_connections=options.max_connections),
            trust_env=False,
        )

    async def send(self, request: HttpRequest, *, read_timeout: float | None,
                   on_sent: Callable[[], None] | None = None) -> HttpResponse:
        """Send; return once the status and headers are in (typed errors on failure).
        httpx does not say when a connection is ready: the attempt counts from the start."""
        timeout = httpx.Timeout(read_timeout, connect=self._connect_timeout)
        try:
            built = self._client.build_request(request.method, request.url,
                                               content=request.body or None,
                                               headers=request.headers, timeout=timeout)
            if on_sent is not None:
                on_sent()
            response = await self._client.send(built, stream=True)
        except Exception as exc:
            raise httpx_error(exc, read_timeout) from exc
        return HttpxResponse(response, read_timeout)

    async def aclose(self) -> None:
        """Close the client (and the wrapped transport)."""
        await self._client.aclose()

    @property
    def closed(self) -> bool:
        """Whether `aclose` ran."""
        return self._client.is_closed


class HttpxResponse:
    """`HttpResponse` over a streamed `httpx.Response`."""

    __slots__ = ("_chunks", "_read_timeout", "_response", "headers", "status")

    def __init__(self, response: httpx.Response, read_timeout: float | None) -> None:
        self._response = response
        self._read_timeout = read_timeout
        self._chunks: AsyncIterator[bytes] | None = None
        self.status = response.status_code
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        """The whole (decoded) body."""
        try:
            return await self._response.aread()
        except Exception as exc:
            raise httpx_error(exc, self._read_timeout) from exc

    async def chunk(self) -> bytes:
        """The next decoded piece; `b""` at the end."""
        if self._chunks is None:
            self._chunks = self._response.aiter_bytes().__aiter__()
        try:
            while True:
                piece = await anext(self._chunks)
                if piece:
                    return piece
        except StopAsyncIteration:
            return b""
        except Exception as exc:
            raise httpx_error(exc, self._read_timeout) from exc

    async def aclose(self) -> None:
        """Close the response (its connection, if the body was not read to the end)."""
        await self._response.aclose()


def httpx_error(exc: Exception, read_timeout: float | None) -> Exception:
    """Map httpx's failure to llmswitch's typed error (the same types as every transport); an
    exception that is not httpx's (a fake transport's bug) passes unchanged."""
    if isinstance(exc, LLMSwitchError):
        return exc
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return TimeoutError(f"could not connect in time ({type(exc).__name__})",
                            hint="check the base URL and the network, or raise "
                            "providers.<name>.connect_timeout")
    if isinstance(exc, httpx.TimeoutException):
        return TimeoutError(
            f"the provider sent nothing for {read_timeout:g}s" if read_timeout
            else f"no answer in time ({type(exc).__name__})",
            hint="raise providers.<name>.stall_timeout, or try another model")
    if isinstance(exc, httpx.ConnectError):
        url = getattr(getattr(exc, "_request", None), "url", "")
        return ConnectionError(f"cannot connect to {url}: {exc}",
                               hint="check the base URL and that the server is up")
    if isinstance(exc, httpx.RemoteProtocolError):
        return ConnectionError(f"the connection broke mid-response: {exc}")
    if isinstance(exc, httpx.ReadError | httpx.WriteError | httpx.NetworkError):
        return ConnectionError(f"network error: {exc}")
    if isinstance(exc, httpx.DecodingError):
        return ResponseError(f"undecodable response body: {exc}")
    if isinstance(exc, httpx.InvalidURL | httpx.UnsupportedProtocol):
        return ConfigError(f"invalid base URL: {exc}",
                           hint="check providers.<name>.base_url or LLMSWITCH_<NAME>_BASE_URL")
    if isinstance(exc, httpx.HTTPError):
        return ProviderError(f"HTTP error: {exc}")
    return exc
