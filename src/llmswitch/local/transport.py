"""An httpx transport that answers OpenAI Chat Completions calls from in-process local models.

With it the OpenAI-compatible adapter talks to a GGUF model as if it were a server at
`http://local/v1`: `POST /v1/chat/completions` (JSON, or SSE when `stream` is true) and
`GET /v1/models`. Engines run in worker threads; the event loop is never blocked.
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

import httpx

from llmswitch.local.engine import LocalModelError, get_engine
from llmswitch.local.paths import default_smollm2_path

__all__ = ["DEFAULT_LOCAL_MODEL", "ChatEngine", "LocalTransport", "ModelMap"]

DEFAULT_LOCAL_MODEL = "smollm2-135m-instruct"
_DEFAULT_ALIASES = frozenset({DEFAULT_LOCAL_MODEL, "smollm2", "smollm2-135m"})

_SSE_HEADERS = {"content-type": "text/event-stream", "cache-control": "no-cache"}
_DONE = b"data: [DONE]\n\n"
_Item = tuple[str, Any]  # ("chunk", dict) | ("error", exception) | ("end", None)


class ChatEngine(Protocol):
    """What the transport needs from an engine (`LocalEngine` satisfies it)."""

    def chat(self, body: dict[str, Any]) -> dict[str, Any]:
        """Answer a non-streaming request."""
        ...

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
    loads once however many transports exist).
    """

    def __init__(
        self,
        models: ModelMap | None = None,
        *,
        engine_factory: EngineFactory | None = None,
        n_ctx: int = 2048,
        n_threads: int = 2,
        max_workers: int = 8,
    ) -> None:
        self._models = models
        self._engine_factory: EngineFactory = engine_factory or (
            lambda path: get_engine(path, n_ctx=n_ctx, n_threads=n_threads)
        )
        self._max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()

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
        """Stop the worker threads (engines stay cached for other transports)."""
        with self._pool_lock:
            pool, self._pool = self._pool, None
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

    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._max_workers, "llmswitch-local")
            return self._pool

    async def _chat(self, request: httpx.Request) -> httpx.Response:
        body = _parse_body(await request.aread())
        if isinstance(body, httpx.Response):
            return body
        name = body["model"]
        try:
            path = self._lookup(name)
            if path is None:
                return _error(404, f"model {name!r} not found", code="model_not_found")
            engine = self._engine_factory(Path(path))
            if body.get("stream"):
                return await self._stream(engine, body)
            loop = asyncio.get_running_loop()
            result = await loop.run_in_executor(self._executor(), engine.chat, body)
        except Exception as exc:
            return _exception_response(exc)
        return _json(200, result)

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

        worker = self._executor().submit(work)
        try:
            first = await items.get()
        except BaseException:
            cancel.set()
            raise
        if first[0] == "error":
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
    error = {"message": message, "type": kind, "param": param, "code": code}
    return _json(status, {"error": error})


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
