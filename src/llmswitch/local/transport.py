"""An httpx transport that answers OpenAI Chat Completions calls from in-process local models.

With it the OpenAI-compatible adapter talks to a GGUF model as if it were a server at
`http://local/v1`: `POST /v1/chat/completions` (JSON, or SSE when `stream` is true) and
`GET /v1/models`. Engines run in worker threads; the event loop is never blocked.

Every request, streaming or not, runs through the engine's streaming path so it can be stopped
at the next token: when the awaiting task is cancelled, the read timeout passes, the reader
leaves a stream, or the transport is closed. A thread that cannot be stopped would keep the
process alive after a timeout or Ctrl-C (Python joins worker threads at exit).

Loading a model is bounded by its own time limit (`load_timeout`, default 60 s, or
`$LLMSWITCH_LOCAL_LOAD_TIMEOUT`); the read timeout then bounds the answer alone.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol

from llmswitch._httpx import httpx  # httpx without its CLI (see that module)
from llmswitch.local.engine import LocalModelError, LocalModelMissingError, get_engine
from llmswitch.local.paths import default_smollm2_path

__all__ = ["DEFAULT_LOCAL_MODEL", "LOAD_TIMEOUT", "ChatEngine", "LocalTransport", "ModelMap"]

LOAD_TIMEOUT = 60.0
"""Seconds a model may take to load (0.4-1.2 s measured; far more on a swamped machine)."""
LOAD_TIMEOUT_ENV = "LLMSWITCH_LOCAL_LOAD_TIMEOUT"

DEFAULT_LOCAL_MODEL = "smollm2-135m-instruct"
_DEFAULT_ALIASES = frozenset({DEFAULT_LOCAL_MODEL, "smollm2", "smollm2-135m"})

_SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}
_DONE = b"data: [DONE]\n\n"
_CLOSED = "the local model transport was closed during generation"
_Item = tuple[str, Any]  # ("chunk", dict) | ("error", exception) | ("end", None)


class ChatEngine(Protocol):
    """What the transport needs from an engine (`LocalEngine` satisfies it)."""

    def stream_chat(self, body: dict[str, Any], on_chunk: Callable[[dict[str, Any]], bool]) -> None:
        """Stream a request through `on_chunk` (True from it cancels)."""
        ...


PathLike = str | os.PathLike[str]
ModelMap = Mapping[str, PathLike] | Callable[[str], PathLike | None]
"""Model name -> GGUF path; a callable returns None for unknown names."""
EngineFactory = Callable[[Path], ChatEngine]


class LocalTransport(httpx.AsyncBaseTransport):
    """Serve OpenAI chat requests from local GGUF models selected by the request's `model`.

    `models` maps names to GGUF paths (default: `smollm2-135m-instruct` -> the SmolLM2 file).
    `engine_factory` turns a path into an engine (default: the per-process cache, so each model
    loads once however many transports exist; threads from the free cores, request defaults
    from `paths.defaults_for`). `load_timeout` bounds a model's loading (None: the environment's
    `LLMSWITCH_LOCAL_LOAD_TIMEOUT`, else 60 s).
    """

    def __init__(
        self,
        models: ModelMap | None = None,
        *,
        engine_factory: EngineFactory | None = None,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        max_workers: int = 8,
        load_timeout: float | None = None,
    ) -> None:
        self._models = models
        self._engine_factory: EngineFactory = engine_factory or (
            lambda path: get_engine(path, n_ctx=n_ctx, n_threads=n_threads)
        )
        self._max_workers = max_workers
        self._load_timeout = _load_timeout(load_timeout)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._running: set[threading.Event] = set()  # cancel events of requests in flight

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Route one request; every failure becomes an OpenAI-style JSON error."""
        path = request.url.path.rstrip("/")
        method = request.method.upper()
        if path.endswith("/chat/completions"):
            if method != "POST":
                return _error(405, f"method {method} not allowed on {path}")
            return await self._chat(request)
        if path.endswith("/models") and method == "GET":
            return _json(200, {"object": "list", "data": [_model(n) for n in self.model_names()]})
        if "/models/" in path and method == "GET":
            name = path.rsplit("/models/", 1)[1]
            if self._lookup(name) is None:
                return _error(404, f"model {name!r} not found", code="model_not_found")
            return _json(200, _model(name))
        return _error(404, f"no route for {method} {path}", code="not_found")

    async def aclose(self) -> None:
        """Cancel running generations and stop the worker threads (engines stay cached)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
            running, self._running = self._running, set()
        for cancel in running:
            cancel.set()
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)

    def model_names(self) -> list[str]:
        """Names listed by `GET /v1/models` (unknown for a bare callable map)."""
        if self._models is None:
            return [DEFAULT_LOCAL_MODEL]
        if isinstance(self._models, Mapping):
            return list(self._models)
        return []

    # -- internals -------------------------------------------------------------------------

    def _lookup(self, name: str) -> PathLike | None:
        """Return the GGUF path for a name (None: unknown); `LocalModelError` if file missing."""
        if self._models is None:
            return default_smollm2_path() if name in _DEFAULT_ALIASES else None
        if isinstance(self._models, Mapping):
            return self._models.get(name)
        return self._models(name)

    def _missing(self, name: str, path: PathLike) -> LocalModelMissingError:
        """The error for a GGUF path given by the caller (the config) that is not a file."""
        if isinstance(self._models, Mapping):
            where = f"check the path given for model {name!r}"
        else:  # the resolver's lookup: the path is `models.<name>.path` in llmswitch.yaml
            where = f"check models.{name}.path in your llmswitch.yaml"
        what = "not a file" if Path(path).expanduser().exists() else "file not found"
        return LocalModelMissingError(f"local model {what}: {path} ({where})")

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._max_workers, "llmswitch-local")
            return self._pool

    def _track(self, cancel: threading.Event, running: bool) -> None:
        with self._pool_lock:
            if running:
                self._running.add(cancel)
            else:
                self._running.discard(cancel)

    async def _chat(self, request: httpx.Request) -> httpx.Response:
        body = _parse_body(await request.aread())
        if isinstance(body, httpx.Response):
            return body
        name = body["model"]
        path: PathLike | None = None
        try:
            path = self._lookup(name)
            if path is None:
                return _error(404, f"model {name!r} not found", code="model_not_found")
            engine = self._engine_factory(Path(path))
            not_loaded = await self._load(engine, name)
            if not_loaded is not None:
                return not_loaded
            if body.get("stream"):
                return await self._stream(engine, body)
            return await self._complete(engine, body, request)
        except httpx.TimeoutException:
            raise  # what a client sees from a server that is too slow
        except LocalModelMissingError as exc:
            if path is None or self._models is None:
                return _exception_response(exc)
            return _exception_response(self._missing(name, path))  # the caller's path
        except Exception as exc:
            return _exception_response(exc)

    async def _load(self, engine: ChatEngine, name: str) -> httpx.Response | None:
        """Load the engine's model (if it has `load` and is not loaded) within the load timeout.

        Returns the 503 response when loading takes too long; it goes on in its thread, so a
        later request finds the model loaded (or waits for it, again bounded).
        """
        load = getattr(engine, "load", None)
        if load is None or getattr(engine, "loaded", False):
            return None
        job = asyncio.get_running_loop().run_in_executor(self._executor(), load)
        try:
            async with asyncio.timeout(self._load_timeout):
                await job
        except TimeoutError:
            return _error(503, f"local model {name!r} did not load within "
                               f"{self._load_timeout:g}s (is the machine very busy?); "
                               f"set {LOAD_TIMEOUT_ENV} to wait longer")
        return None

    async def _complete(
        self, engine: ChatEngine, body: dict[str, Any], request: httpx.Request
    ) -> httpx.Response:
        """Answer a non-streaming request from the stream path, so it can be stopped."""
        stream_body = {**body, "stream": True, "stream_options": {"include_usage": True}}
        chunks: list[dict[str, Any]] = []
        cancel = threading.Event()
        timeout = _read_timeout(request)

        def on_chunk(chunk: dict[str, Any]) -> bool:
            if cancel.is_set():
                return True
            chunks.append(chunk)
            return False

        self._track(cancel, True)
        try:
            loop = asyncio.get_running_loop()
            job = loop.run_in_executor(self._executor(), engine.stream_chat, stream_body, on_chunk)
            try:
                async with asyncio.timeout(timeout):
                    await job
            except TimeoutError:
                cancel.set()
                raise httpx.ReadTimeout(
                    f"local model gave no answer within {timeout:g}s", request=request
                ) from None
        except BaseException:
            cancel.set()  # cancelled or failed: stop generating at the next token
            raise
        finally:
            self._track(cancel, False)
        if cancel.is_set():  # the transport was closed mid-generation: never a partial answer
            return _error(503, _CLOSED)
        return _json(200, assemble_completion(chunks))

    async def _stream(self, engine: ChatEngine, body: dict[str, Any]) -> httpx.Response:
        """Start generation in a worker; reply with an error status if it fails before a chunk."""
        loop = asyncio.get_running_loop()
        items: asyncio.Queue[_Item] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: _Item) -> bool:
            try:
                loop.call_soon_threadsafe(items.put_nowait, item)
            except RuntimeError:  # the event loop is closed: nobody is listening
                return False
            return True

        def on_chunk(chunk: dict[str, Any]) -> bool:
            return cancel.is_set() or not put(("chunk", chunk))

        def work() -> None:
            try:
                engine.stream_chat(body, on_chunk)
            except BaseException as exc:
                put(("error", exc))
            else:
                put(("end", None))
            finally:
                self._track(cancel, False)

        self._track(cancel, True)
        worker = self._executor().submit(work)
        try:
            first = await items.get()
        except BaseException:
            cancel.set()
            raise
        if first[0] == "error":
            if isinstance(first[1], Exception):
                raise first[1]  # `_chat` turns it into the error response
            return _exception_response(first[1])
        stream = _SSEStream(first, items, cancel, worker)
        return httpx.Response(200, headers=_SSE_HEADERS, stream=stream)


class _SSEStream(httpx.AsyncByteStream):
    """Chunks from the worker as `data: {...}` events, then `data: [DONE]`."""

    def __init__(
        self,
        first: _Item,
        items: asyncio.Queue[_Item],
        cancel: threading.Event,
        worker: Future[None],
    ) -> None:
        self._first: _Item | None = first
        self._items = items
        self._cancel = cancel
        self._worker = worker  # kept so the thread's future stays referenced

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            while True:
                item, self._first = self._first, None
                kind, value = item if item is not None else await self._items.get()
                if kind == "chunk":
                    yield b"data: " + json.dumps(value).encode() + b"\n\n"
                elif kind == "error":
                    _, payload = _error_payload(value)
                    yield b"data: " + json.dumps(payload).encode() + b"\n\n"
                    return
                elif self._cancel.is_set():  # closed mid-generation: not a complete answer
                    yield b"data: " + json.dumps(_error_body(_CLOSED)).encode() + b"\n\n"
                    return
                else:
                    yield _DONE
                    return
        finally:
            self._cancel.set()

    async def aclose(self) -> None:
        """Cancel generation if the reader leaves early."""
        self._cancel.set()


def _parse_body(raw: bytes) -> dict[str, Any] | httpx.Response:
    """Decode a chat request body, or return the 400 response explaining why not."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, f"request body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return _error(400, "request body must be a JSON object")
    name = body.get("model")
    if not isinstance(name, str) or not name:
        return _error(400, "'model' is required", param="model")
    return body


def _load_timeout(value: float | None) -> float:
    if value is None:
        text = os.environ.get(LOAD_TIMEOUT_ENV, "").strip()
        try:
            value = float(text) if text else LOAD_TIMEOUT
        except ValueError:
            raise LocalModelError(
                f"{LOAD_TIMEOUT_ENV} must be a number of seconds, not {text!r}"
            ) from None
    if not value > 0:
        raise LocalModelError(f"the local model's load timeout must be positive, not {value}")
    return float(value)


def _read_timeout(request: httpx.Request) -> float | None:
    """The client's read timeout: with no bytes before the answer is done, a whole-call limit."""
    timeouts = request.extensions.get("timeout")
    value = timeouts.get("read") if isinstance(timeouts, Mapping) else None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def assemble_completion(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge `chat.completion.chunk` dicts into the `chat.completion` a non-streaming call returns.

    Joins text (and `reasoning_content`), merges tool-call fragments by index, keeps the last
    `finish_reason` of each choice and the `usage` of the final chunk.
    """
    head = chunks[0] if chunks else {}
    choices: dict[int, dict[str, Any]] = {}
    usage: Any = None
    for chunk in chunks:
        if chunk.get("usage") is not None:
            usage = chunk["usage"]
        for part in chunk.get("choices") or ():
            index = int(part.get("index") or 0)
            choice = choices.setdefault(index, {"texts": {}, "calls": {}, "finish_reason": None})
            if part.get("finish_reason") is not None:
                choice["finish_reason"] = part["finish_reason"]
            _merge_delta(choice, part.get("delta") or {})
    result: dict[str, Any] = {
        key: head[key] for key in ("id", "created", "model", "system_fingerprint") if key in head
    }
    result["object"] = "chat.completion"
    result["choices"] = [_choice(i, choices[i]) for i in sorted(choices)] or [
        _choice(0, {"texts": {}, "calls": {}, "finish_reason": None})
    ]
    if usage is not None:
        result["usage"] = usage
    return result


def _merge_delta(choice: dict[str, Any], delta: dict[str, Any]) -> None:
    for key in ("content", "reasoning_content"):
        if isinstance(delta.get(key), str):
            choice["texts"][key] = choice["texts"].get(key, "") + delta[key]
    for fragment in delta.get("tool_calls") or ():
        index = int(fragment.get("index") or 0)
        call = choice["calls"].setdefault(
            index, {"id": None, "type": "function", "function": {"name": "", "arguments": ""}}
        )
        if fragment.get("id"):
            call["id"] = fragment["id"]
        if fragment.get("type"):
            call["type"] = fragment["type"]
        function = fragment.get("function") or {}
        for key in ("name", "arguments"):
            if isinstance(function.get(key), str):
                call["function"][key] += function[key]


def _choice(index: int, choice: dict[str, Any]) -> dict[str, Any]:
    texts, calls = choice["texts"], choice["calls"]
    content = texts.get("content")
    message: dict[str, Any] = {
        "role": "assistant",
        "content": content if content is not None or calls else "",
    }
    if "reasoning_content" in texts:
        message["reasoning_content"] = texts["reasoning_content"]
    if calls:
        message["tool_calls"] = [calls[i] for i in sorted(calls)]
    return {"index": index, "message": message, "finish_reason": choice["finish_reason"]}


def _model(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": 0, "owned_by": "local"}


def _json(status: int, payload: Any) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(payload).encode(),
        headers={"content-type": "application/json"},
    )


def _error(
    status: int,
    message: str,
    *,
    error_type: str | None = None,
    code: str | None = None,
    param: str | None = None,
) -> httpx.Response:
    kind = error_type or ("server_error" if status >= 500 else "invalid_request_error")
    return _json(status, _error_body(message, kind, code, param))


def _error_body(
    message: str, kind: str = "server_error", code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def _error_payload(exc: BaseException) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, LocalModelError):
        status, kind, code = exc.status_code, exc.error_type, None
        if kind == "exceed_context_size_error":
            kind, code = "invalid_request_error", "context_length_exceeded"
        message = exc.message
    else:
        status, kind, code = 500, "server_error", None
        message = f"local engine failed: {type(exc).__name__}: {exc}"
    return status, {"error": {"message": message, "type": kind, "param": None, "code": code}}


def _exception_response(exc: BaseException) -> httpx.Response:
    status, payload = _error_payload(exc)
    return _json(status, payload)
