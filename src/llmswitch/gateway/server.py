"""`llmswitch serve`: the gateway on uvicorn (uvloop + httptools), one or several workers.

Chosen by measurement against granian and hypercorn (docs/architecture.md, "Gateway").
What this module adds to uvicorn:

- **A head timeout** (`gateway.header_timeout`, `protocol_timeouts.py`): uvicorn times out
  idle keep-alive connections but not a client that never finishes its request head.
- **Its own listening socket**, bound before any worker starts, so a bad address or a port
  in use is one clear error, and `--port 0` picks a free port (printed on stderr).
- **Workers** share that socket (uvicorn's multiprocess supervisor; each worker imports
  `worker_app`, builds its own `Switch` and ledger writer). Metrics of all workers are
  gathered through a temporary folder made here (`gateway/metrics.py`).
- **Drain**: SIGTERM stops accepting, lets requests and streams run for
  `gateway.drain_seconds`, cancels what is left (the ledger records it), flushes the ledger
  (lifespan shutdown), then exits 0.
- **The garbage collector of a server process** (`tune_gc`): what start-up built is frozen
  out of collections, and the young generation is collected every `GC_YOUNG_THRESHOLD`
  net allocations instead of 700 (docs/performance.md, "Gateway").
"""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import json
import os
import shutil
import signal
import socket
import sys
import tempfile
from dataclasses import asdict, dataclass
from typing import Any

from llmswitch import ConfigError
from llmswitch.gateway.app import Gateway, create_app
from llmswitch.gateway.metrics import METRICS_DIR_ENV

OPTIONS_ENV = "LLMSWITCH_SERVE_OPTIONS"
EXIT_REFUSED = 2
GC_YOUNG_THRESHOLD = 10_000
"""Net allocations of container objects between young collections (Python's default: 700)."""


class ServeError(Exception):
    """`serve` cannot start as asked (exit status 2): the message says why and what to do."""


@dataclass(frozen=True)
class ServeOptions:
    """What `llmswitch serve` was asked for."""

    config: str | None = None
    host: str = "127.0.0.1"
    port: int = 4000
    workers: int = 1
    no_auth: bool = False


def is_loopback(host: str) -> bool:
    """Whether `host` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(app: Gateway, options: ServeOptions) -> None:
    """Refuse to serve without authentication beyond this machine unless `--no-auth`."""
    if app.auth.required or options.no_auth or is_loopback(options.host):
        return
    raise ServeError(
        f"refusing to serve without authentication on {options.host}: anyone who can reach "
        "it could spend on your providers' keys. Set an admin key "
        f"(${app.settings.admin_key_env}) or create keys (llmswitch keys create), bind "
        "127.0.0.1, or pass --no-auth if this is what you want")


def check_shared_state(app: Gateway, options: ServeOptions) -> None:
    """Several workers without `gateway.state` would each keep their own counters: a limit of
    5 per minute would admit 5 per worker and a budget could be spent once per worker. Refuse
    when limits or budgets are in force; otherwise say what would not hold."""
    if options.workers < 2 or app.settings.state is not None:
        return
    store = getattr(app.auth, "store", None)
    limited = sorted(app.settings.limits)
    if store is not None:
        try:
            keys = store.list(include_revoked=False)
        except Exception as exc:  # an unreachable key database: say so, no traceback
            raise ServeError(f"cannot read the gateway's keys: {exc}") from None
        limited += [f"key {k.name}" for k in keys if k.status() == "active"
                    and (k.rpm or k.tpm or k.budget_usd is not None)]
    if limited:
        raise ServeError(
            f"--workers {options.workers} without gateway.state: each worker would count its "
            f"own requests and spend, so the limits and budgets of {', '.join(limited[:5])} "
            "would not hold. Set gateway.state: redis://... (shared by every worker), or serve "
            "with --workers 1")
    print(f"llmswitch serve: {options.workers} workers without gateway.state: a limit or "
          "budget added later would be counted per worker (set gateway.state to share them)",
          file=sys.stderr)


def bind(host: str, port: int) -> socket.socket:
    """The listening socket (shared by every worker)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host.strip("[]"), port))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        raise ServeError(f"cannot listen on {host}:{port}: {reason.lower()} (choose another "
                         "--port or --host)") from None
    except OverflowError:
        sock.close()
        raise ServeError(f"--port {port} is out of range (0-65535)") from None
    sock.set_inheritable(True)
    return sock


# -- uvicorn ---------------------------------------------------------------------------------
def uvicorn_config(app: Any, options: ServeOptions, app_settings: Any) -> Any:
    """The uvicorn `Config`: our protocol, uvloop when installed, no uvicorn access log
    (the gateway writes its own), timeouts and drain time from `gateway:`."""
    try:
        import uvicorn

        from llmswitch.gateway.protocol_timeouts import HeadTimeoutProtocol
    except ImportError:
        raise ConfigError("llmswitch serve needs uvicorn and httptools",
                          hint="pip install 'llmswitch[gateway]'") from None
    try:
        import uvloop  # noqa: F401
        loop = "uvloop"
    except ImportError:  # pragma: no cover - uvloop is in the gateway extra
        loop = "asyncio"
    config = uvicorn.Config(
        app, factory=isinstance(app, str), host=options.host, port=options.port,
        workers=options.workers, loop=loop, http=HeadTimeoutProtocol,
        lifespan="on", interface="asgi3", access_log=False, log_level="warning",
        proxy_headers=False, server_header=False,
        timeout_keep_alive=app_settings.idle_timeout,
        timeout_graceful_shutdown=app_settings.drain_seconds,
    )
    config.llmswitch_header_timeout = app_settings.header_timeout  # type: ignore[attr-defined]
    return config


def tune_gc() -> None:
    """Set up this server process's garbage collector, once its app is built.

    A young collection walks every container object allocated since the last one that is
    still alive, and in a busy gateway that is the working set of every request in flight
    (tens of thousands of objects at 64 concurrent), while the trigger, 700 net allocations,
    comes every few dozen requests; so the collector walked the same in-flight objects over
    and over, for nothing: requests leave no reference cycles (benchmarks/gateway/
    gc_cycles.py), reference counting frees them. A larger young threshold walks them a
    fraction as often. `gc.freeze()` moves what start-up built (modules, config, catalog)
    out of the collected generations, so a full collection no longer walks it either."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, middle, old)


def worker_app() -> Gateway:
    """The app of one worker process (`--workers N`): options come from the environment."""
    options = ServeOptions(**json.loads(os.environ[OPTIONS_ENV]))
    app = create_app(options.config)
    tune_gc()
    return app


def serve(options: ServeOptions, announce: Any = None) -> None:
    """Run the gateway until SIGTERM/SIGINT (then drain and return)."""
    if options.workers < 1:
        raise ServeError("--workers must be at least 1")
    app = create_app(options.config)
    check_exposure(app, options)
    try:
        check_shared_state(app, options)
    except BaseException:
        asyncio.run(app.aclose())
        raise
    sock = bind(options.host, options.port)
    port = sock.getsockname()[1]
    folder = None
    try:
        if options.workers == 1:
            config = uvicorn_config(app, options, app.settings)
        else:
            asyncio.run(app.aclose())  # the workers build their own
            folder = tempfile.mkdtemp(prefix="llmswitch-metrics-")
            os.environ[METRICS_DIR_ENV] = folder
            os.environ[OPTIONS_ENV] = json.dumps(asdict(options))
            config = uvicorn_config(f"{__name__}:worker_app", options, app.settings)
        if announce is not None:
            announce(port, app)
        if options.workers == 1:
            tune_gc()
        _run(config, sock)
    finally:
        sock.close()
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
            os.environ.pop(METRICS_DIR_ENV, None)


def _run(config: Any, sock: socket.socket) -> None:
    """Serve until a signal. uvicorn re-raises the signal that stopped it once it has
    drained, to the handler that was there before it; that handler is a no-op here, so a
    drained gateway returns and exits 0."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    previous = {sig: signal.signal(sig, _stopped) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        if config.workers > 1:
            Multiprocess(config, sockets=[sock]).run()
        else:
            uvicorn.Server(config).run(sockets=[sock])
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    sys.stderr.flush()


def _stopped(sig: int, frame: Any) -> None:
    """A stop signal arriving after uvicorn has let go of its handlers: already stopping."""
