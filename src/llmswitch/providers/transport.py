"""The one interface between `HttpModel` and an HTTP client.

A `Transport` sends an `HttpRequest` and returns an `HttpResponse`: its status and headers,
then its body read whole (`read`) or piece by piece (`chunk`, with back-pressure: nothing
more is read from the socket until the caller asks), and `aclose` (which drops the
connection when the body was not read to the end, so an abandoned stream stops the upstream).

Implementations (one per event loop, owned by the `Provider`):

- `AiohttpTransport` (`aiohttp_transport.py`): the default, a pooled aiohttp session (chosen
  by `benchmarks/engine.py`; see docs/architecture.md).
- `HttpxTransport` (`httpx_transport.py`): wraps any `httpx.AsyncBaseTransport`, which is how
  the embedded local model (`local/transport.py`) and tests' fakes plug in
  (`Switch(transports={"openai": lambda: httpx.MockTransport(handler)})`).

Every implementation turns its client's failures into llmswitch's typed errors
(`ConnectionError`, `TimeoutError`, `ResponseError`, `ConfigError`) and lets
`asyncio.CancelledError` through. Time limits: the transport applies the connect timeout and
the read timeout (the longest silence from the server: before the headers and between body
pieces); `HttpModel` bounds the whole attempt.
"""

from __future__ import annotations

import functools
import ipaddress
import ssl
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias, runtime_checkable

from llmswitch.errors import ConfigError

if TYPE_CHECKING:
    import httpx


@dataclass(slots=True)
class HttpRequest:
    """One request on the wire. `Provider.sign` may add headers (SigV4)."""

    method: str
    url: str
    """Absolute and already percent-encoded (query included)."""
    headers: dict[str, str]
    """Lower-case names."""
    body: bytes = b""


class HttpResponse(Protocol):
    """A response whose body has not been read yet."""

    status: int
    headers: Mapping[str, str]
    """Case-insensitive."""

    async def read(self) -> bytes:
        """The whole (decoded) body."""
        ...

    async def chunk(self) -> bytes:
        """The next piece of the (decoded) body; `b""` once it is complete."""
        ...

    async def aclose(self) -> None:
        """Give the connection back (or drop it, if the body was not read to the end)."""
        ...


@runtime_checkable
class Transport(Protocol):
    """Sends requests over pooled connections of one event loop."""

    async def send(self, request: HttpRequest, *, read_timeout: float | None,
                   on_sent: Callable[[], None] | None = None) -> HttpResponse:
        """Send `request`; return once the status and headers are in.

        `read_timeout`: the longest silence allowed from the server, from the request sent
        to the headers and between two pieces of the body (`None`: no limit of its own).
        `on_sent`: called when the request starts going out on a connection (from then on the
        provider may bill it); a failure or cancellation before that (while connecting) means
        the provider never saw the request. `HttpModel` counts the attempt from there (or
        from the answer, for a transport that does not call it).
        """
        ...

    async def aclose(self) -> None:
        """Close every connection."""
        ...


TransportFactory: TypeAlias = "Callable[[], httpx.AsyncBaseTransport | Transport]"
"""What `Switch(transports={name: factory})` takes: called once per event loop; an httpx
transport is wrapped in `HttpxTransport`, a `Transport` is used as it is."""


@dataclass(frozen=True, slots=True)
class ClientOptions:
    """How a provider's transports connect (from `providers.<name>` and the environment)."""

    connect_timeout: float = 10.0
    max_connections: int = 100
    ssl_context: ssl.SSLContext | None = None
    proxies: ProxyRules | None = None


def url_with_query(url: str, query: Mapping[str, str] | None) -> str:
    """`url` with `query` appended (form-encoded, as httpx encodes `params=`)."""
    if not query:
        return url
    return url + ("&" if "?" in url else "?") + urllib.parse.urlencode(query)


def join_url(base_url: str, path: str) -> str:
    """`base_url` + `path`, keeping a query string of the base URL after the path
    (`https://h/v1?api-version=1` + `/chat/completions` -> `https://h/v1/chat/completions?api-version=1`)."""
    head, mark, query = base_url.partition("?")
    return head.rstrip("/") + path + mark + query if mark else base_url + path


@functools.lru_cache(maxsize=1024)
def quote_url(url: str) -> str:
    """Percent-encode what may not appear raw in a URL (spaces, non-ASCII), keeping existing
    escapes (`%3A` in a Bedrock model id stays `%3A`, as the SigV4 signature covers it)."""
    return urllib.parse.quote(url, safe=":/?#[]@!$&'()*+,;=%~")


# -- TLS -----------------------------------------------------------------------------------
def tls_context(env: Mapping[str, str]) -> ssl.SSLContext:
    """The verifying TLS context: `SSL_CERT_FILE` / `SSL_CERT_DIR` from `env` when set (a
    corporate CA bundle), else certifi's bundle (as httpx and the official SDKs do)."""
    return _tls_context(env.get("SSL_CERT_FILE") or None, env.get("SSL_CERT_DIR") or None)


@functools.cache
def _tls_context(cafile: str | None, capath: str | None) -> ssl.SSLContext:
    """One context per CA source and process (loading a bundle costs 25-60 ms)."""
    if cafile is None and capath is None:
        import certifi

        cafile = certifi.where()
    try:
        return ssl.create_default_context(cafile=cafile, capath=capath)
    except (OSError, ssl.SSLError) as exc:
        where = cafile or capath
        raise ConfigError(f"cannot load the CA certificates in {where}: {exc}",
                          hint="check SSL_CERT_FILE / SSL_CERT_DIR") from None


# -- proxies -------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ProxyRules:
    """Proxies from the environment, as curl and urllib read them: `https_proxy` for HTTPS
    URLs, `http_proxy` for HTTP, `all_proxy` for both (lower case wins over upper case),
    `no_proxy` for hosts that go direct. Loopback hosts always go direct."""

    by_scheme: Mapping[str, str]
    no_proxy: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProxyRules | None:
        """The rules in `env`, or `None` when it names no proxy."""
        def get(name: str) -> str:
            return (env.get(name.lower()) or env.get(name.upper()) or "").strip()

        found = {}
        for scheme in ("http", "https"):
            proxy = get(f"{scheme}_proxy") or get("all_proxy")
            if proxy:
                found[scheme] = _checked_proxy(proxy, scheme)
        return cls(found, get("no_proxy")) if found else None

    def for_url(self, scheme: str, host: str) -> str | None:
        """The proxy URL for a request, or `None` to go direct."""
        proxy = self.by_scheme.get(scheme)
        if proxy is None or _is_loopback(host):
            return None
        if self.no_proxy and _bypassed(host, self.no_proxy):
            return None
        return proxy


def _checked_proxy(proxy: str, scheme: str) -> str:
    if "://" not in proxy:
        proxy = "http://" + proxy
    if urllib.parse.urlsplit(proxy).scheme not in ("http", "https"):
        raise ConfigError(
            f"unsupported proxy for {scheme} requests: {urllib.parse.urlsplit(proxy).scheme}",
            hint=f"set {scheme}_proxy (or all_proxy) to an http:// or https:// proxy URL")
    return proxy


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether `no_proxy` (comma-separated: `*`, host names matching themselves and their
    subdomains, with or without a leading dot, IP addresses and CIDR ranges) covers `host`."""
    host = host.lower().strip("[]").rstrip(".")
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        try:
            network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            network = None
        if network is not None:
            try:
                if ipaddress.ip_address(host) in network:
                    return True
            except ValueError:
                pass
            continue
        name = entry.lstrip(".").split(":")[0].rstrip(".")
        if host == name or host.endswith("." + name):
            return True
    return False


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
