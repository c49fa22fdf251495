"""The admin API (`/admin/...`), behind the admin key (`LLMSWITCH_ADMIN_KEY`): what
`llmswitch keys` does on the database, over HTTP, for the dashboard and for scripts.

    POST   /admin/keys                  create: {"name", "models", "rpm", "tpm", "budget_usd",
                                        "period", "expires_at", "meta"} -> 201, the key's
                                        object plus "key" (the secret, shown this once)
    GET    /admin/keys                  {"data": [key objects with "usage"]}
    GET    /admin/keys/{id or name}     one key object with "usage"
    DELETE /admin/keys/{id or name}     revoke -> the key object (status "revoked")
    POST   /admin/keys/{id or name}/revoke   the same, for clients that cannot send DELETE

A key object's `usage` is the spend in the current budget period (the calendar month when
the key has no budget) from the ledger: `spent_usd`, `requests`, `period`, `period_start`,
`resets_at`, `remaining_usd` (with a budget), `last_used_at`. Errors use the OpenAI error
shape: 401 without the admin key, 403 with another key, 400 for a bad field, 404 for an
unknown key, 503 when the database is unreachable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from llmswitch.gateway.keys import (
    KeyNotFoundError,
    KeyRecord,
    KeysError,
    KeySpec,
    KeyStore,
    database_errors,
    iso,
    period_bounds,
)
from llmswitch.gateway.policy import Authenticator
from llmswitch.gateway.protocols.common import dumps, loads
from llmswitch.gateway.protocols.errors import GatewayError, render

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
MAX_BODY = 64 * 1024


class AdminApi:
    """The `/admin/*` endpoints as an ASGI callable (mounted by the gateway at `/admin/`)."""

    def __init__(self, store: KeyStore | None, authenticator: Authenticator,
                 has_admin_key: bool, on_change: Callable[[], None] | None = None,
                 wall: Callable[[], float] = time.time) -> None:
        self.store = store
        self.auth = authenticator
        self.has_admin_key = has_admin_key
        self.on_change = on_change
        self.wall = wall

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Authenticate the admin, dispatch, answer JSON."""
        try:
            await self._admin_only(dict(scope["headers"]))
            status, body = await self._dispatch(scope["method"], scope["path"], receive)
        except KeyNotFoundError as exc:
            status, body, headers = _error(GatewayError("not_found", str(exc)))
        except KeysError as exc:
            status, body, headers = _error(GatewayError("invalid_request", str(exc)))
        except GatewayError as exc:
            status, body, headers = _error(exc)
        except database_errors() as exc:
            status, body, headers = _error(GatewayError(
                "unavailable", f"the keys database is unreachable ({type(exc).__name__})"))
        else:
            headers = []
        data = dumps(body)
        await send({"type": "http.response.start", "status": status, "headers": [
            (b"content-type", b"application/json"), (b"cache-control", b"no-store"),
            (b"content-length", str(len(data)).encode()), *headers]})
        await send({"type": "http.response.body", "body": data})

    async def _admin_only(self, headers: dict[bytes, bytes]) -> None:
        if not self.has_admin_key:
            raise GatewayError("unauthenticated", "the admin API is off: set "
                               "LLMSWITCH_ADMIN_KEY on the gateway and send it as "
                               "'Authorization: Bearer <admin key>'")
        principal = await self.auth.authenticate(headers)
        if not principal.admin:
            raise GatewayError("forbidden", "the admin API needs the admin key, not a "
                               "virtual key")
        if self.store is None:
            raise GatewayError("unavailable", "virtual keys need the ledger's database "
                               "(observe.ledger is off)")

    async def _dispatch(self, method: str, path: str, receive: Receive
                        ) -> tuple[int, Any]:
        parts = [unquote(p) for p in path.strip("/").split("/")]
        if parts[:2] != ["admin", "keys"] or len(parts) > 4:
            raise GatewayError("not_found", f"no admin endpoint {path}")
        store = self.store
        assert store is not None
        if len(parts) == 2:
            if method == "GET":
                keys = await asyncio.to_thread(store.list)
                return 200, {"object": "list", "data": await asyncio.to_thread(
                    lambda: [self._with_usage(store, k) for k in keys])}
            if method == "POST":
                spec = KeySpec.from_json(await _read_json(receive))
                secret, record = await asyncio.to_thread(store.create, spec)
                return 201, {**record.to_dict(), "key": secret}
            raise _method(path, "GET or POST")
        name = parts[2]
        if len(parts) == 4:
            if parts[3] != "revoke" or method != "POST":
                raise GatewayError("not_found", f"no admin endpoint {method} {path}")
            return 200, await self._revoke(store, name)
        if method == "GET":
            record = await asyncio.to_thread(store.get, name)
            return 200, await asyncio.to_thread(self._with_usage, store, record)
        if method == "DELETE":
            return 200, await self._revoke(store, name)
        raise _method(path, "GET or DELETE")

    async def _revoke(self, store: KeyStore, name: str) -> dict[str, Any]:
        record = await asyncio.to_thread(store.revoke, name)
        if self.on_change is not None:
            self.on_change()  # this replica refuses it at once; the others within the TTL
        return record.to_dict()

    def _with_usage(self, store: KeyStore, record: KeyRecord) -> dict[str, Any]:
        return {**record.to_dict(), "usage": key_usage(store, record, self.wall())}


def key_usage(store: KeyStore, record: KeyRecord, now: float) -> dict[str, Any]:
    """A key's spend in its budget period (the calendar month without a budget)."""
    period = record.period or "month"
    _, start, resets = period_bounds(period, now)
    usage = store.usage(record.id, start)
    out = {"period": period, "period_start": iso(start) if period != "total" else None,
           "resets_at": iso(resets), **usage}
    if record.budget_usd is not None:
        out["budget_usd"] = record.budget_usd
        out["remaining_usd"] = max(0.0, record.budget_usd - usage["spent_usd"])
    return out


async def _read_json(receive: Receive) -> Any:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise GatewayError("invalid_request", "the client left")
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_BODY:
            raise GatewayError("body_too_large", f"the body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    try:
        return loads(b"".join(chunks) or b"{}")
    except ValueError as exc:
        raise GatewayError("invalid_json", f"the body is not valid JSON: {exc}") from None


def _method(path: str, allowed: str) -> GatewayError:
    return GatewayError("method_not_allowed", f"use {allowed} for {path}")


def _error(exc: GatewayError) -> tuple[int, Any, list[tuple[bytes, bytes]]]:
    out = render(exc, "openai")
    return out.status, out.body, [(k.encode(), v.encode()) for k, v in out.headers.items()]

