"""`create_app(config)`: the gateway as a raw ASGI application over one `Switch`.

Per completion request: read the body (bounded), parse it with the API's protocol module,
authenticate, check the model, reserve limits and budget, call `Switch.complete`/`stream` with
a trace id and the key's tags, settle, answer in the API's shape with the `x-llmswitch-*`
headers. A client that disconnects cancels the call (the ledger records it as cancelled or
abandoned, billed up to then). No routing logic lives here: models, aliases and routes are the
`Switch`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from llmswitch import (
    CallEstimate,
    CallRecord,
    Completion,
    Config,
    LLMSwitchError,
    Request,
    StreamEnd,
    Switch,
    Usage,
    load_config,
    new_trace_id,
)
from llmswitch.gateway.access import GatewayState
from llmswitch.gateway.accesslog import AccessLog, Outcome
from llmswitch.gateway.durable import committed_events
from llmswitch.gateway.health import readiness, worker_gauges
from llmswitch.gateway.metrics import CONTENT_TYPE, METRICS_DIR_ENV, Metrics, SharedMetrics
from llmswitch.gateway.policy import (
    Authenticator,
    Limiter,
    Principal,
)
from llmswitch.gateway.protocols import anthropic_messages, openai_chat, openai_responses
from llmswitch.gateway.protocols.common import Call, dumps, loads
from llmswitch.gateway.protocols.errors import Api, GatewayError, kind_of, message_of, render
from llmswitch.gateway.settings import GatewaySettings, parse_gateway

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

PROTOCOLS: dict[str, tuple[Api, Any, Any]] = {
    "/v1/chat/completions": ("openai", openai_chat, openai_chat.ChatStream),
    "/chat/completions": ("openai", openai_chat, openai_chat.ChatStream),
    "/v1/messages": ("anthropic", anthropic_messages, anthropic_messages.MessageStream),
    "/v1/responses": ("responses", openai_responses, openai_responses.ResponseStream),
}
JSON_HEADERS = [(b"content-type", b"application/json")]
SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache"),
               (b"x-accel-buffering", b"no")]


class ClientGone(Exception):
    """The client disconnected before its request was read."""


class EndedCalls(dict[str, CallRecord | None]):
    """An observer that keeps the record of each gateway call (registered under its trace id
    before the call) until the gateway settles the key's limits and budget with it."""

    def on_end(self, record: CallRecord) -> None:
        """Keep the record if the gateway is waiting for it."""
        if record.trace_id in self:
            self[record.trace_id] = record

    def on_completion(self, name: str, request: Request, completion: Completion) -> None:
        """Unused: `on_end` receives every outcome."""

    def on_error(self, name: str, request: Request, error: BaseException) -> None:
        """Unused: `on_end` receives every outcome."""


class Gateway:
    """The ASGI application. Build it with `create_app`."""

    def __init__(self, switch: Switch, settings: GatewaySettings,
                 authenticator: Authenticator, limiter: Limiter,
                 owns_switch: bool = True, metrics_dir: str | None = None) -> None:
        self.switch = switch
        self.settings = settings
        self.auth = authenticator
        self.limits = limiter
        self._owns_switch = owns_switch
        self.inflight = 0
        self.draining = False
        self._ended = EndedCalls()
        switch.observers.append(self._ended)
        self.metrics = Metrics()
        self.shared_metrics = SharedMetrics(metrics_dir)
        self.access_log = AccessLog(settings.access_log, settings.log_content)
        self._ticker: asyncio.Task[None] | None = None
        self.access: GatewayState | None = None
        """Keys, limits, budgets, shared state and the /admin API (set by `create_app`)."""
        self.dashboard: Any = None
        """The dashboard at /ui (`llmswitch.dashboard`), built on its first request."""
        self.routes: dict[tuple[str, str], Callable[[Scope, Receive, Send], Awaitable[None]]] = {
            ("GET", "/healthz"): self._healthz,
            ("GET", "/readyz"): self._readyz,
            ("GET", "/metrics"): self._metrics,
            ("GET", "/v1/models"): self._models,
            ("GET", "/models"): self._models,
        }

    # -- ASGI -----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            path = scope["path"]
            protocol = PROTOCOLS.get(path)
            if protocol is not None:
                if scope["method"] != "POST":
                    await self._error(send, GatewayError("method_not_allowed",
                                                         f"use POST for {path}"), protocol[0])
                    return
                await self._completion(scope, receive, send, *protocol)
                return
            if path.startswith("/admin/") and self.access is not None and self.access.admin:
                await self.access.admin(scope, receive, send)
                return
            if path == "/ui" or path.startswith("/ui/"):
                await self._dashboard()(scope, receive, send)
                return
            handler = self.routes.get((scope["method"], path))
            if handler is None:
                await self._error(send, GatewayError("not_found", f"no endpoint {path}"),
                                  "openai")
                return
            await handler(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._ticker = asyncio.ensure_future(self._tick())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _tick(self) -> None:
        """Every 0.2 s: write the access log's buffer, publish this worker's metrics."""
        while True:
            await asyncio.sleep(0.2)
            self.access_log.flush()
            if self.shared_metrics.folder is not None:
                self.shared_metrics.publish(self.metrics, await worker_gauges(self))

    async def aclose(self, settle_seconds: float = 5.0) -> None:
        """Stop: let requests the server cancelled record their outcome (bounded), write the
        access log and this worker's metrics, close the switch (flushes the ledger) when the
        app owns it."""
        self.draining = True
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        until = time.monotonic() + settle_seconds
        while self.inflight and time.monotonic() < until:
            await asyncio.sleep(0.01)
        self.access_log.flush()
        if self.shared_metrics.folder is not None:
            self.shared_metrics.publish(self.metrics, await worker_gauges(self), force=True)
        if self._owns_switch:
            await self.switch.aclose()
        if self.access is not None:
            await self.access.aclose()
        self.access_log.close()

    # -- completions ------------------------------------------------------------------------
    async def _completion(self, scope: Scope, receive: Receive, send: Send, api: Api,
                          protocol: Any, renderer: Any) -> None:
        headers = dict(scope["headers"])
        out = Outcome(api, "POST", scope["path"], time.perf_counter())
        client = scope.get("client")
        if client:
            out.client = str(client[0])
        self.inflight += 1
        try:
            call = await self._read_call(headers, receive, protocol)
            out.route, out.stream = call.model, call.stream
            principal = await self.auth.authenticate(headers)
            out.key_id, out.key_name = principal.key_id or "", principal.name or ""
            principal.check_model(call.model)
            admission = await self.limits.admit(principal, call, self._estimator(call))
            # the library's ids: a generator of its own, reseeded after fork, not random.seed()'s
            trace_id = out.trace_id = new_trace_id()
            self._ended[trace_id] = None
            if self.access_log.content:
                out.prompt = _content(call)
            try:
                if call.stream:
                    await self._stream(receive, send, call, renderer, trace_id,
                                       _tags(principal, call), out)
                else:
                    completion = await self._answer(receive, call, trace_id,
                                                    _tags(principal, call))
                    if self.access is not None and self.access.commit is not None:
                        await self.access.commit(trace_id)  # gateway.durable_ledger
                    out.served(completion, self.access_log.content)
                    await _send_json(send, 200, dumps(protocol.render(completion, call)),
                                     _answer_headers(completion))
                    out.status = 200
            finally:  # every way out gives back what the call did not spend
                record = self._ended.pop(trace_id, None)
                usage, cost = spent(record)
                out.spent(record, usage, cost)
                await self.limits.settle(admission, usage, cost)
        except ClientGone:
            out.status, out.outcome = 499, "client_gone"
        except asyncio.CancelledError:
            out.status, out.outcome = 499, "cancelled"
            raise
        except Exception as exc:
            if out.trace_id is not None and self.access is not None and (
                    self.access.commit is not None):
                await self.access.commit(out.trace_id)  # billed failed attempts are rows too
            await self._error(send, exc, api, out)
        finally:
            self.inflight -= 1
            self._finish(out)

    def _finish(self, out: Outcome) -> None:
        """Count the request in the metrics and write its access-log line."""
        now = time.perf_counter()
        known = out.trace_id is not None and out.error != "model_not_found"
        self.metrics.observe(
            out.api, out.route if known else "", out.served_name, out.key_id, out.status,
            out.error, now - out.started,
            None if out.first_event is None else out.first_event - out.started,
            out.input_tokens, out.output_tokens, out.cost_usd)
        self.access_log.write(out, now)

    def _estimator(self, call: Call) -> Callable[[], CallEstimate]:
        """The call's cost estimate, computed only if a limit or budget asks for it."""
        return lambda: self.switch.estimate(
            call.model, call.messages, default_max_output=self.settings.default_max_tokens,
            **call.settings)

    async def _read_call(self, headers: Mapping[bytes, bytes], receive: Receive,
                         protocol: Any) -> Call:
        ctype = headers.get(b"content-type")
        if ctype is not None and not ctype.split(b";", 1)[0].strip().lower().endswith(b"json"):
            raise GatewayError("unsupported_media_type",
                               f"send the body as application/json, not {ctype.decode()}")
        body = await read_body(receive, headers, self.settings.max_body_bytes)
        try:
            raw = loads(body)
        except ValueError as exc:
            raise GatewayError("invalid_json", f"the body is not valid JSON: {exc}") from None
        call: Call = protocol.parse(raw)
        return call

    async def _answer(self, receive: Receive, call: Call, trace_id: str,
                      tags: dict[str, str]) -> Completion:
        """One non-streamed call; the client disconnecting cancels it."""
        watcher = asyncio.ensure_future(_cancel_on_disconnect(receive, asyncio.current_task()))
        try:
            return await self.switch.complete(
                call.model, call.messages, tags=tags, trace_id=trace_id,
                metadata=call.metadata or None, **call.settings)
        except asyncio.CancelledError:
            if _disconnected(watcher):
                raise ClientGone from None  # the client left: nothing to answer
            raise
        finally:
            watcher.cancel()

    async def _stream(self, receive: Receive, send: Send, call: Call, renderer: Any,
                      trace_id: str, tags: dict[str, str], out: Outcome) -> None:
        """A streamed call: headers go out with the first event (so a failure before it is a
        normal error response); a failure after it ends the stream with the API's error
        event; a client that leaves stops the provider call."""
        events = self.switch.stream(call.model, call.messages, tags=tags, trace_id=trace_id,
                                    metadata=call.metadata or None, **call.settings)
        if self.access is not None and self.access.commit is not None:
            events = committed_events(events, self.access.commit)  # gateway.durable_ledger
        watcher = asyncio.ensure_future(_cancel_on_disconnect(receive, asyncio.current_task()))
        stream = renderer(call, trace_id)
        started = False
        try:
            first = await anext(events)
            final = first.completion if isinstance(first, StreamEnd) else None
            await send({"type": "http.response.start", "status": 200,
                        "headers": SSE_HEADERS + _stream_headers(self.switch, trace_id, final)})
            started = True
            out.status = 200
            await send({"type": "http.response.body", "more_body": True,
                        "body": stream.start() + stream.event(first)})
            out.first_event = time.perf_counter()
            if final is None:
                final = await _relay(events, stream, send)
            await send({"type": "http.response.body", "body": b""})
            if final is not None:
                out.served(final, self.access_log.content)
        except LLMSwitchError as exc:
            if not started:
                raise
            out.failed(kind_of(exc))
            await send({"type": "http.response.body", "more_body": False,
                        "body": stream.error(kind_of(exc), message_of(exc))})
        except asyncio.CancelledError:
            if _disconnected(watcher):
                raise ClientGone from None
            if started:  # the server stopped past its drain time: say so, not a clean end
                out.failed("unavailable")
                with contextlib.suppress(BaseException):
                    await asyncio.wait_for(send({
                        "type": "http.response.body", "more_body": False,
                        "body": stream.error("unavailable", "the gateway is shutting down")}), 1)
            raise
        finally:
            watcher.cancel()
            await events.aclose()  # type: ignore[attr-defined]

    # -- other endpoints --------------------------------------------------------------------
    def _dashboard(self) -> Any:
        if self.dashboard is None:
            from llmswitch.dashboard import for_gateway

            self.dashboard = for_gateway(self)
        return self.dashboard

    async def _healthz(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _send_json(send, 200, b'{"status":"ok"}')

    async def _readyz(self, scope: Scope, receive: Receive, send: Send) -> None:
        status, body = await readiness(self)
        await _send_json(send, status, dumps(body))

    async def _metrics(self, scope: Scope, receive: Receive, send: Send) -> None:
        metrics, gauges = self.shared_metrics.gather(self.metrics, await worker_gauges(self))
        body = metrics.render(gauges)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", CONTENT_TYPE),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _models(self, scope: Scope, receive: Receive, send: Send) -> None:
        principal = await self._principal_or_error(scope, send)
        if principal is None:
            return
        await _send_json(send, 200, dumps({"object": "list",
                                           "data": model_list(self.switch, principal)}))

    async def _principal_or_error(self, scope: Scope, send: Send) -> Principal | None:
        try:
            return await self.auth.authenticate(dict(scope["headers"]))
        except GatewayError as exc:
            await self._error(send, exc, "openai")
            return None

    async def _error(self, send: Send, error: BaseException, api: Api,
                     outcome: Outcome | None = None) -> None:
        out = render(error, api)
        headers = [(k.encode(), v.encode()) for k, v in out.headers.items()]
        if outcome is not None:
            outcome.status = out.status
            outcome.failed(out.kind)
            if outcome.trace_id and "x-llmswitch-trace-id" not in out.headers:
                headers.append((b"x-llmswitch-trace-id", outcome.trace_id.encode()))
        await _send_json(send, out.status, dumps(out.body), headers)


def model_list(switch: Switch, principal: Principal) -> list[dict[str, Any]]:
    """`GET /v1/models`: routes, configured aliases and catalog models the caller may use."""
    created = 0
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    config = switch.config

    def add(name: str, owner: str, **extra: Any) -> None:
        if name not in seen and principal.may_use(name):
            seen.add(name)
            out.append({"id": name, "object": "model", "created": created, "owned_by": owner,
                        **extra})

    for name, route in config.routes.items():
        add(name, "llmswitch", llmswitch={"kind": "route", "strategy": route.strategy,
                                          "description": route.description})
    for name in config.models:
        add(name, "llmswitch", llmswitch={"kind": "alias"})
    for card in switch.catalog:
        add(card.id, card.id.split("/", 1)[0], llmswitch={"kind": "model"})
    return out


def _content(call: Call) -> Any:
    """The prompt for the access log (only with `gateway.log_content: true`)."""
    return [{"role": m.role, "text": m.text} for m in call.messages]


def _tags(principal: Principal, call: Call) -> dict[str, str]:
    tags = dict(principal.tags)
    if principal.key_id is not None:
        tags["key_id"] = principal.key_id
    if call.user:
        tags["user"] = call.user
    tags["api"] = call.api
    return tags


async def _relay(events: Any, stream: Any, send: Send) -> Completion | None:
    """Send each event in the API's format; the final completion, if the stream gave one."""
    final = None
    async for event in events:
        data = stream.event(event)
        if data:
            await send({"type": "http.response.body", "body": data, "more_body": True})
        if isinstance(event, StreamEnd):
            final = event.completion
    return final


def spent(record: CallRecord | None) -> tuple[Usage | None, float | None]:
    """What a call's attempts were billed (the ledger's figures: reported usage, else the
    estimate of a cut, cancelled or abandoned attempt). `(None, None)` when unknown."""
    if record is None:
        return None, None
    input_tokens = output_tokens = 0
    cost: float | None = 0.0
    for span in record.all_attempts():
        a = span.attributes
        input_tokens += int(a.get("gen_ai.usage.input_tokens") or 0)
        output_tokens += int(a.get("gen_ai.usage.output_tokens") or 0)
        value = a.get("llmswitch.cost_usd")
        cost = None if cost is None or not isinstance(value, (int, float)) else cost + value
    return Usage(input_tokens, output_tokens), cost


def _disconnected(watcher: asyncio.Future[bool]) -> bool:
    return watcher.done() and not watcher.cancelled() and watcher.exception() is None and (
        watcher.result())


async def _cancel_on_disconnect(receive: Receive, task: asyncio.Task[Any] | None) -> bool:
    """Wait for the client to disconnect, then cancel the request's task. True if it did."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if task is not None:
                task.cancel()
            return True


async def read_body(receive: Receive, headers: Mapping[bytes, bytes], limit: int) -> bytes:
    """The whole request body, refused with 413 past `limit` bytes."""
    declared = headers.get(b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise GatewayError("body_too_large", f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise GatewayError("body_too_large", f"the body is larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _answer_headers(completion: Completion) -> list[tuple[bytes, bytes]]:
    cost = completion.cost_usd
    return [(b"x-llmswitch-provider", completion.provider.encode()),
            (b"x-llmswitch-model", completion.model.encode()),
            (b"x-llmswitch-cost-usd", (f"{cost:.10f}".rstrip("0").rstrip(".") if cost
                                       is not None else "unknown").encode()),
            (b"x-llmswitch-trace-id", completion.trace_id.encode())]


def _stream_headers(switch: Switch, trace_id: str, final: Completion | None
                    ) -> list[tuple[bytes, bytes]]:
    """A stream's headers leave with its first event: the provider and model serving it then,
    and the cost billed so far (the final cost is in the ledger under the trace id)."""
    if final is not None:
        return _answer_headers(final)
    record = switch.live_call(trace_id)
    provider, model = record.serving if record is not None else (None, None)
    spent = 0.0
    if record is not None:
        spent = sum(float(s.attributes.get("llmswitch.cost_usd") or 0.0)
                    for s in record.attempts)
    return [(b"x-llmswitch-provider", (provider or "").encode()),
            (b"x-llmswitch-model", (model or "").encode()),
            (b"x-llmswitch-cost-usd", f"{spent:g}".encode()),
            (b"x-llmswitch-trace-id", trace_id.encode())]


async def _send_json(send: Send, status: int, body: bytes,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": JSON_HEADERS + [(b"content-length", str(len(body)).encode())]
                + (headers or [])})
    await send({"type": "http.response.body", "body": body})


def create_app(config: Config | Mapping[str, Any] | str | os.PathLike[str] | None = None, *,
               switch: Switch | None = None, env: Mapping[str, str] | None = None,
               authenticator: Authenticator | None = None,
               limiter: Limiter | None = None) -> Gateway:
    """The gateway for a config (a file, a dict, a `Config`, or `None` for the embedded local
    model), or around an existing `switch` (which the caller then closes)."""
    environ = os.environ if env is None else env
    owns = switch is None
    state: GatewayState | None = None
    if switch is None:
        if isinstance(config, (str, os.PathLike)):
            config = load_config(Path(config), env=env)
        state = GatewayState.for_config(config, env)  # keys, limits, shared state (Redis)
        switch = Switch(state.config, env=env, **state.switch_options())
    settings = parse_gateway(switch.config.gateway, switch.config.source)
    admin_key = environ.get(settings.admin_key_env) or None
    state = state or GatewayState(switch.config, env)
    auth, limits = state.attach(switch, admin_key)
    app = Gateway(switch, settings, authenticator or auth, limiter or limits, owns_switch=owns,
                  metrics_dir=environ.get(METRICS_DIR_ENV) or None)
    app.access = state
    return app
