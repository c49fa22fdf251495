"""The dashboard as a raw ASGI application, mounted by the gateway at `/ui` and served alone by
`llmswitch ui`. Pages are rendered on the server from the ledger; every page and data endpoint
needs a session opened with the admin key (pages redirect to the sign-in form, `/api/*`
endpoints answer 401)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, is_dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlencode

from llmswitch import Catalog
from llmswitch.dashboard import keys_page, pages, plans, requests_page
from llmswitch.dashboard.auth import (
    Session,
    Sessions,
    cookie_header,
    parse_cookies,
    safe_next,
)
from llmswitch.dashboard.html import Markup, h, layout
from llmswitch.dashboard.keyadmin import KeyAdmin, describe, period_start
from llmswitch.dashboard.ledger import LedgerReader
from llmswitch.dashboard.queries import (
    DEFAULT_PERIOD,
    GROUPS,
    PERIODS,
    RequestFilter,
    find_requests,
    key_usage,
    overview,
    request_detail,
    savings,
)
from llmswitch.dashboard.rollup import Rollup
from llmswitch.errors import LLMSwitchError

log = logging.getLogger("llmswitch.dashboard")
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
MAX_FORM = 64 * 1024
FAILED_LOGIN_DELAY = 0.5
FLUSH_WAIT = 2.0
"""Seconds a requests page waits for the gateway's ledger to write what it has queued."""
CSP = ("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; "
       "frame-ancestors 'none'; base-uri 'none'")
SECURITY_HEADERS = [(b"content-security-policy", CSP.encode()),
                    (b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"same-origin"), (b"cache-control", b"no-store")]


class Response:
    """What a handler returns."""

    def __init__(self, status: int, body: bytes, content_type: str,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or []


def _json_default(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return str(value)


def json_response(data: Any, status: int = 200) -> Response:
    """A JSON answer (dataclasses as objects)."""
    return Response(status, json.dumps(data, default=_json_default).encode(), "application/json")


class Request:
    """The parts of an ASGI request the dashboard reads."""

    def __init__(self, scope: Scope, path: str) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path = path
        self.headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.raw_query: str = scope.get("query_string", b"").decode("latin-1")
        self.query = {k: v[0] for k, v in parse_qs(self.raw_query).items()}
        self.cookies = parse_cookies(self.headers.get("cookie", ""))
        self.form: dict[str, str] = {}

    @property
    def secure(self) -> bool:
        """Whether the browser reached us over https (directly or through a proxy)."""
        return self.scope.get("scheme") == "https" or self.headers.get(
            "x-forwarded-proto", "").lower() == "https"


class Dashboard:
    """The dashboard over one ledger. Build it with `create_dashboard`."""

    def __init__(self, ledger_url: str | None, catalog: Catalog, admin_key: str | None, *,
                 keys: KeyAdmin | None = None, runs_dirs: tuple[Path, ...] = (),
                 mount: str = "/ui", clock: Callable[[], float] = time.time,
                 flush: Callable[[], None] | None = None) -> None:
        self.reader = LedgerReader(ledger_url)
        self.rollup = Rollup(self.reader, clock)
        self.catalog = catalog
        self.sessions = Sessions(admin_key, clock=clock)
        self.keys = keys
        self.runs_dirs = runs_dirs
        self.mount = mount.rstrip("/")
        self.clock = clock
        self.flush = flush
        """The gateway's `Ledger.flush` (None for `llmswitch ui`: nothing queued here)."""
        self._flushing: asyncio.Future[None] | None = None
        self._css = resources.files("llmswitch.dashboard").joinpath(
            "static", "dashboard.css").read_bytes()

    # -- ASGI -----------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path != self.mount and not path.startswith(self.mount + "/"):
            await _send(send, _redirect(self.mount) if path == "/" else Response(
                404, b"not found", "text/plain"))
            return
        request = Request(scope, path[len(self.mount):].rstrip("/") or "/")
        if request.method == "POST":
            request.form = await _read_form(receive)
        try:
            response = await self.handle(request)
        except LLMSwitchError as exc:
            response = self._failure(request, str(exc))
        except Exception:  # a page must never be a bare 500 without the security headers
            log.exception("llmswitch dashboard: %s %s failed", request.method, path)
            response = self._failure(request, "internal error in the dashboard (see its log)")
        await _send(send, response)

    def _failure(self, req: Request, message: str) -> Response:
        """A 500 as a page (signed in: with the navigation), or as JSON for `/api/`."""
        if req.path.startswith("/api/"):
            return json_response({"error": {"type": "internal", "message": message}}, 500)
        session = self.sessions.read(req.cookies)
        return self._page(req, "Error", h("p", {"class": "error"}, message), session,
                          status=500)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                warm = asyncio.ensure_future(asyncio.to_thread(self.warm))
                warm.add_done_callback(lambda f: f.cancelled() or f.exception())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    def warm(self) -> None:
        """Sum the settled hours now (`llmswitch ui` does it at start-up, in a thread), so the
        first page does not wait for it."""
        self.rollup.cells()

    def close(self) -> None:
        """Release the ledger and key store connections."""
        self.reader.close()
        if self.keys is not None:
            self.keys.close()

    # -- dispatch -------------------------------------------------------------------------
    async def handle(self, req: Request) -> Response:
        """Answer one request (sign-in, then the page or data endpoint)."""
        if req.path == "/static/dashboard.css" and req.method == "GET":
            return Response(200, self._css, "text/css; charset=utf-8")
        if req.path == "/login":
            return await self._login(req)
        session = self.sessions.read(req.cookies)
        if session is None:
            if req.path.startswith("/api/") or req.method != "GET":
                return json_response({"error": {"type": "unauthenticated", "message":
                                                 "sign in with the admin key first"}}, 401)
            here = self.mount + req.path + (f"?{req.raw_query}" if req.raw_query else "")
            return _redirect(f"{self.mount}/login?{urlencode({'next': here})}")
        if req.method == "POST":
            if not Sessions.csrf_ok(session, req.form.get("csrf", "")):
                return self._page(req, "Refused", h("p", {"class": "error"},
                                  "The form was stale or not from this page: reload and "
                                  "try again."), session, status=403)
            return await self._post(req, session)
        if req.method != "GET":
            return Response(405, b"method not allowed", "text/plain")
        if req.path.startswith("/api/"):
            return await self._api(req)
        return await self._get(req, session)

    async def _get(self, req: Request, session: Session) -> Response:
        parts = req.path.strip("/").split("/", 1)
        head, rest = parts[0], unquote(parts[1]) if len(parts) > 1 else ""
        if head == "":
            data = await self._overview(req)
            return self._page(req, "Overview", pages.overview_page(self.mount, data), session)
        if head == "savings":
            return self._page(req, "Savings",
                              pages.savings_page(self.mount, await self._savings(req)), session)
        if head == "requests":
            return await self._requests(req, session, rest)
        if head == "keys" and not rest:
            return await self._keys(req, session)
        if head == "plans":
            return await self._plans(req, session, rest)
        return self._page(req, "Not found", h("p", None, "No such page."), session, status=404)

    # -- pages ----------------------------------------------------------------------------
    def _page(self, req: Request, title: str, body: Markup, session: Session | None = None,
              status: int = 200, active: str | None = None) -> Response:
        ledger = f"ledger: {self.reader.where()}" if session else ""  # nothing before sign-in
        text = layout(self.mount, title, body, active=active or title,
                      csrf=session.csrf if session else None, footer=ledger)
        return Response(status, text.encode(), "text/html; charset=utf-8")

    def _period(self, req: Request) -> str:
        period = req.query.get("period", DEFAULT_PERIOD)
        return period if period in PERIODS else DEFAULT_PERIOD

    async def _key_names(self) -> dict[str, str]:
        if self.keys is None:
            return {}
        keys = self.keys
        try:
            listed = await asyncio.to_thread(keys.records)
        except Exception:
            return {}
        return {k.id: k.name for k in listed}

    async def _overview(self, req: Request) -> Any:
        by = req.query.get("by", "model")
        by = by if by in GROUPS else "model"
        names = await self._key_names()
        return await self.reader.run(lambda r: overview(
            r, self.rollup, self._period(req), by, self.clock(), names))

    async def _savings(self, req: Request) -> Any:
        baseline = req.query.get("baseline") or None
        return await self.reader.run(lambda r: savings(
            self.rollup, self.catalog, self._period(req), baseline, self.clock()))

    def _filter(self, req: Request) -> RequestFilter:
        q = req.query
        return RequestFilter(q=q.get("q", "")[:200], status=q.get("status", ""),
                             route=q.get("route", ""), key=q.get("key", ""),
                             period=q.get("period", "all") if q.get("period") in PERIODS
                             else "all", before=q.get("before", ""))

    async def _written(self) -> None:
        """Served by the gateway: let its ledger write the rows it has queued (at most
        `FLUSH_WAIT` s; one flush at a time), so a request it has just answered is found."""
        if self.flush is None:
            return
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.ensure_future(asyncio.to_thread(self.flush))
        with contextlib.suppress(Exception):  # too slow, or the ledger's own failure
            await asyncio.wait_for(asyncio.shield(self._flushing), FLUSH_WAIT)

    async def _detail(self, trace_id: str) -> Any:
        """A request by trace id; on a miss, once more after the gateway's ledger writes."""
        detail = await self.reader.run(lambda r: request_detail(r, trace_id))
        if detail is None and self.flush is not None:
            await self._written()
            detail = await self.reader.run(lambda r: request_detail(r, trace_id))
        return detail

    async def _find(self, filt: RequestFilter) -> Any:
        await self._written()
        return await self.reader.run(lambda r: find_requests(r, filt, self.clock()))

    async def _requests(self, req: Request, session: Session, trace_id: str) -> Response:
        names = await self._key_names()
        if trace_id:
            detail = await self._detail(trace_id)
            if detail is None:
                return self._page(req, "Request not found", h(
                    "p", None, f"No request {trace_id} in the ledger."), session, status=404,
                    active="Requests")
            return self._page(req, f"Request {trace_id}", requests_page.request_page(
                self.mount, detail, names), session, active="Requests")
        filt = self._filter(req)
        rows, older = await self._find(filt)
        return self._page(req, "Requests", requests_page.requests_page(
            self.mount, filt, rows, older, names), session)

    async def _list_keys(self) -> list[dict[str, Any]] | None:
        """Every key with its spend in its budget period (hourly sums) and last use."""
        keys = self.keys
        if keys is None:
            return None
        records = await asyncio.to_thread(keys.records)
        now = self.clock()
        starts = {r.id: period_start(r, now) for r in records}
        usage = await self.reader.run(lambda rd: key_usage(rd, self.rollup, starts))
        return [describe(r, usage.get(r.id, {}), now) for r in records]

    async def _keys(self, req: Request, session: Session, **extra: Any) -> Response:
        listed = await self._list_keys()
        notice = extra.pop("notice", None) or (
            f"Key {req.query['revoked']} revoked: the gateway refuses it from now on."
            if req.query.get("revoked") else None)
        return self._page(req, "Keys", keys_page.keys_page(
            self.mount, listed, session.csrf, notice=notice, **extra), session)

    async def _plans(self, req: Request, session: Session, run_id: str) -> Response:
        folders = await asyncio.to_thread(plans.find_run_folders, self.runs_dirs)
        if not run_id:
            runs = await self.reader.run(lambda r: plans.all_runs(r, self.catalog, folders))
            return self._page(req, "Plans", plans.plans_page(self.mount, runs), session)
        baseline = req.query.get("baseline") or None
        view = await self.reader.run(lambda r: plans.run_view(r, self.catalog, run_id, folders,
                                                              baseline))
        if view is None:
            return self._page(req, "Plan run not found", h("p", None, f"No plan run {run_id}."),
                              session, status=404, active="Plans")
        choices = sorted(c.id for c in self.catalog if c.priced)
        return self._page(req, f"Plan run {run_id}", plans.run_page(self.mount, view, choices),
                          session, active="Plans")

    # -- forms ----------------------------------------------------------------------------
    async def _login(self, req: Request) -> Response:
        next_url = safe_next(self.mount, req.query.get("next") or req.form.get("next"))
        if req.method == "GET":
            return self._page(req, "Sign in", pages.login_page(
                self.mount, None, self.sessions.enabled, next_url))
        if req.method != "POST":
            return Response(405, b"method not allowed", "text/plain")
        if self.sessions.check_key(req.form.get("key", "")):
            value, _ = self.sessions.issue()
            cookie = cookie_header(value, self.mount or "/", req.secure,
                                   int(self.sessions.lifetime))
            return _redirect(next_url, [(b"set-cookie", cookie)])
        await asyncio.sleep(FAILED_LOGIN_DELAY)  # slows guessing; the key is 256 bits anyway
        return self._page(req, "Sign in", pages.login_page(
            self.mount, "That is not the admin key.", self.sessions.enabled, next_url))

    async def _post(self, req: Request, session: Session) -> Response:
        if req.path == "/logout":
            self.sessions.end(session)
            cookie = cookie_header("", self.mount or "/", req.secure, 0)
            return _redirect(f"{self.mount}/login", [(b"set-cookie", cookie)])
        keys = self.keys
        if keys is None:
            return await self._keys(req, session)
        if req.path == "/keys":
            try:
                secret, record = await asyncio.to_thread(keys.create, req.form)
            except LLMSwitchError as exc:
                return await self._keys(req, session, error=str(exc), form=req.form)
            return await self._keys(req, session, created=(secret, record))
        parts = req.path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "keys" and parts[2] == "revoke":
            try:
                record = await asyncio.to_thread(keys.revoke, unquote(parts[1]))
            except LLMSwitchError as exc:
                return await self._keys(req, session, error=str(exc))
            return _redirect(f"{self.mount}/keys?revoked={quote(str(record['name']))}")
        return Response(404, b"not found", "text/plain")

    # -- data endpoints -------------------------------------------------------------------
    async def _api(self, req: Request) -> Response:
        parts = req.path.strip("/").split("/", 2)
        what, rest = parts[1] if len(parts) > 1 else "", unquote(parts[2]) if len(
            parts) > 2 else ""
        if what == "overview":
            return json_response(await self._overview(req))
        if what == "savings":
            return json_response(await self._savings(req))
        if what == "requests" and rest:
            detail = await self._detail(rest)
            return json_response(detail) if detail else json_response(
                {"error": {"type": "not_found", "message": f"no request {rest}"}}, 404)
        if what == "requests":
            rows, older = await self._find(self._filter(req))
            return json_response({"data": rows, "older": older})
        if what == "keys" and self.keys is not None:
            return json_response({"data": await self._list_keys()})
        if what == "plans":
            folders = await asyncio.to_thread(plans.find_run_folders, self.runs_dirs)
            if rest:
                view = await self.reader.run(lambda r: plans.run_view(
                    r, self.catalog, rest, folders, req.query.get("baseline") or None))
                return json_response(view) if view else json_response(
                    {"error": {"type": "not_found", "message": f"no plan run {rest}"}}, 404)
            return json_response({"data": await self.reader.run(
                lambda r: plans.all_runs(r, self.catalog, folders))})
        return json_response({"error": {"type": "not_found", "message": "no such endpoint"}},
                             404)


def _redirect(location: str, headers: list[tuple[bytes, bytes]] | None = None) -> Response:
    return Response(303, b"", "text/plain", [(b"location", location.encode()), *(headers or [])])


async def _read_form(receive: Receive) -> dict[str, str]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM:
            return {}
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    fields = parse_qs(b"".join(chunks).decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[0] for k, v in fields.items()}


async def _send(send: Send, response: Response) -> None:
    headers = [(b"content-type", response.content_type.encode()),
               (b"content-length", str(len(response.body)).encode()), *SECURITY_HEADERS,
               *response.headers]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})

