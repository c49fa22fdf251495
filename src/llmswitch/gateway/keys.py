"""Virtual keys: created, listed and revoked by `llmswitch keys` and `/admin/keys`, checked by
the gateway on every request.

A key's secret (`sk-llms-...`, 256 random bits) is shown once, when it is created; the database
keeps only its SHA-256 (a random 256-bit secret needs no slow hash: there is nothing to guess).
Keys live in the ledger's database (SQLite for one replica, PostgreSQL for several) in the
`gateway_keys` table, created by this module's own versioned migrations (`KEY_MIGRATIONS`,
version table `llmswitch_keys_schema`), applied under a lock like the ledger's.

`KeyAuthenticator` turns a request's `Authorization: Bearer` or `x-api-key` header into a
`Principal`. Lookups are cached for `gateway.key_cache_seconds` (2 s by default), so a key
revoked on any replica is refused everywhere within that time plus one database read.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import hmac
import json
import logging
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from llmswitch import LLMSwitchError
from llmswitch.gateway.policy import ANONYMOUS, Principal, bearer
from llmswitch.gateway.protocols.errors import GatewayError

log = logging.getLogger("llmswitch.gateway.keys")
SECRET_PREFIX = "sk-llms-"
PERIODS = ("day", "month", "total")
RESERVED_TAGS = frozenset({"key_id", "run_id", "stream_id", "user", "api", "route"})
"""Tag names the gateway sets itself; a key's `meta` may not use them."""

KEY_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE IF NOT EXISTS gateway_keys (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            secret_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            models TEXT,
            rpm BIGINT,
            tpm BIGINT,
            budget_usd DOUBLE PRECISION,
            period TEXT,
            expires_at DOUBLE PRECISION,
            meta TEXT,
            created_at DOUBLE PRECISION NOT NULL,
            revoked_at DOUBLE PRECISION
        )""",
        "CREATE UNIQUE INDEX IF NOT EXISTS gateway_keys_active_name ON gateway_keys (name) "
        "WHERE revoked_at IS NULL",
    ),
)
"""Each entry is one schema version of the keys table; append, never edit."""
SCHEMA_TABLE = "llmswitch_keys_schema"
_MIGRATION_LOCK = 0x11A5_0002  # PostgreSQL advisory lock (the ledger's is 0x11A5_0001)
_COLUMNS = ("id", "name", "secret_hash", "prefix", "models", "rpm", "tpm", "budget_usd",
            "period", "expires_at", "meta", "created_at", "revoked_at")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_LIMIT = 10**12
"""The largest `rpm`/`tpm` (a database integer, exact in Redis's Lua numbers)."""
MAX_BUDGET_USD = 1e9
"""The largest budget (its nano-dollars fit a 64-bit counter)."""
MAX_EXPIRY = 253402300799.0
"""9999-12-31T23:59:59Z: later expiries cannot be written as a date."""


class KeysError(LLMSwitchError):
    """A key operation that cannot be done as asked (bad option, duplicate name)."""

    type = "bad_request"


class KeyNotFoundError(KeysError):
    """No key has that id or name."""

    type = "not_found"


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A stored key, without its secret."""

    id: str
    name: str
    prefix: str
    """The secret's first characters, to recognise it (`sk-llms-AbCd`)."""
    created_at: float
    models: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    period: str | None = None
    expires_at: float | None = None
    meta: Mapping[str, str] = field(default_factory=dict)
    revoked_at: float | None = None

    def status(self, now: float | None = None) -> str:
        """`active`, `revoked` or `expired`."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and (time.time() if now is None else now) >= \
                self.expires_at:
            return "expired"
        return "active"

    def principal(self) -> Principal:
        """What the gateway knows about a caller holding this key."""
        return Principal(
            key_id=self.id, name=self.name,
            models=frozenset(self.models) if self.models is not None else None,
            tags=dict(self.meta),
            limits={"rpm": self.rpm, "tpm": self.tpm, "budget_usd": self.budget_usd,
                    "period": self.period})

    def to_dict(self) -> dict[str, Any]:
        """The public JSON object of a key (never the secret or its hash)."""
        return {"id": self.id, "name": self.name, "prefix": self.prefix,
                "status": self.status(),
                "models": list(self.models) if self.models is not None else None,
                "rpm": self.rpm, "tpm": self.tpm, "budget_usd": self.budget_usd,
                "period": self.period, "expires_at": iso(self.expires_at),
                "meta": dict(self.meta), "created_at": iso(self.created_at),
                "revoked_at": iso(self.revoked_at)}


def iso(epoch: float | None) -> str | None:
    """An epoch time as ISO 8601 UTC (`2026-12-31T00:00:00Z`)."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="seconds").replace(
        "+00:00", "Z")


def dollars(amount: float) -> str:
    """A budget as written (`$25`, `$0.01`, `$0.00001`): every digit down to the nano-dollar,
    no trailing zeros."""
    return "$" + (f"{amount:.9f}".rstrip("0").rstrip(".") or "0")


def hash_secret(secret: str) -> str:
    """The stored form of a secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_expiry(value: str | float | None, now: float | None = None) -> float | None:
    """`--expires`: an ISO date (`2026-12-31`: midnight UTC at the start of that day), an ISO
    time (`2026-12-31T18:00:00Z`; no zone = UTC), a duration from now (`30d`, `12h`, `45m`),
    or epoch seconds."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    now = time.time() if now is None else now
    match = re.fullmatch(r"(\d{1,9})\s*([dhm])", text)
    if match:
        unit = {"d": 86400, "h": 3600, "m": 60}[match.group(2)]
        return now + int(match.group(1)) * unit
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise KeysError(f"expires: {text!r} is not a date", hint="use 2026-12-31, "
                        "2026-12-31T18:00:00Z or a duration like 30d") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What a new key may do (validated by `check`)."""

    name: str
    models: tuple[str, ...] | None = None
    rpm: int | None = None
    tpm: int | None = None
    budget_usd: float | None = None
    period: str | None = None
    expires_at: float | None = None
    meta: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> KeySpec:
        """From the admin API's JSON body (`expires_at`: ISO time, duration or epoch)."""
        if not isinstance(data, Mapping):
            raise KeysError("the body must be a JSON object with at least `name`")
        known = {"name", "models", "rpm", "tpm", "budget_usd", "period", "expires_at", "meta"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise KeysError(f"unknown field(s) {', '.join(unknown)}",
                            hint="fields: " + ", ".join(sorted(known)))
        models = data.get("models")
        if models is not None and (not isinstance(models, list) or not all(
                isinstance(m, str) for m in models)):
            raise KeysError("models must be a list of model, alias or route names")
        meta = data.get("meta") or {}
        if not isinstance(meta, Mapping):
            raise KeysError("meta must be an object of string values")
        return cls(name=data.get("name"),  # type: ignore[arg-type]
                   models=tuple(models) if models is not None else None,
                   rpm=data.get("rpm"), tpm=data.get("tpm"), budget_usd=data.get("budget_usd"),
                   period=data.get("period"), expires_at=parse_expiry(data.get("expires_at")),
                   meta=dict(meta))

    def check(self, now: float | None = None) -> KeySpec:
        """The spec with defaults applied, or a `KeysError` naming the bad option. Every
        value must be one the store, the limiter and JSON can hold (no infinite budget, no
        limit past a 64-bit integer, no expiry in the past)."""
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise KeysError(f"name {self.name!r}: 1-64 letters, digits, '.', '_', '@' or '-', "
                            "starting with a letter or digit")
        if self.name.lower() == ADMIN.name:
            raise KeysError("the name 'admin' stands for the admin key in the ledger and the "
                            "dashboard; choose another name")
        self._check_models()
        for label, value in (("rpm", self.rpm), ("tpm", self.tpm)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or not 1 <= value <= MAX_LIMIT):
                raise KeysError(f"{label} must be a whole number from 1 to {MAX_LIMIT}, "
                                f"not {value!r}")
        budget = self.budget_usd
        if budget is not None and (isinstance(budget, bool) or not isinstance(
                budget, (int, float)) or not 0 <= budget <= MAX_BUDGET_USD):
            raise KeysError(f"budget must be a number of USD from 0 to {MAX_BUDGET_USD:.0f}, "
                            f"not {budget!r}")
        period = self.period
        if period is not None and period not in PERIODS:
            raise KeysError(f"period must be day, month or total, not {period!r}")
        if period is not None and budget is None:
            raise KeysError("a period needs a budget (--budget USD)")
        self._check_expiry(time.time() if now is None else now)
        for k, v in self.meta.items():
            if not isinstance(k, str) or not isinstance(v, str) or not k:
                raise KeysError("meta: keys and values must be strings")
            if _CONTROL.search(k) or _CONTROL.search(v):
                raise KeysError(f"meta: {k!r} holds a control character")
            if k in RESERVED_TAGS:
                raise KeysError(f"meta: {k!r} is set by the gateway itself; use another name")
        return KeySpec(self.name, self.models, self.rpm, self.tpm,
                       float(budget) if budget is not None else None,
                       period or ("month" if budget is not None else None),
                       self.expires_at, dict(self.meta))

    def _check_models(self) -> None:
        if self.models is None:
            return
        if not self.models:
            raise KeysError("models: the list is empty; name at least one model, alias or "
                            "route, or leave models out to allow all")
        for m in self.models:
            if not isinstance(m, str) or not m.strip() or _CONTROL.search(m):
                raise KeysError(f"models: {m!r} is not a model, alias or route name")

    def _check_expiry(self, now: float) -> None:
        when = self.expires_at
        if when is None:
            return
        if isinstance(when, bool) or not isinstance(when, (int, float)) or not (
                when <= MAX_EXPIRY):
            raise KeysError(f"expires: {when!r} is not a time before the year 10000")
        if when <= now:
            raise KeysError(f"expires: {iso(when)} is in the past",
                            hint="give a future date, or a duration like 30d")


class KeyStore:
    """The keys table in the ledger's database (thread-safe; every call is one short
    transaction). The connection opens on first use; `close()` releases it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._db: Any = None
        self._lock = threading.Lock()

    # -- connection and migrations --------------------------------------------------------
    def _open(self) -> Any:
        if self._db is None:
            from llmswitch.observe import Database

            db = Database(self.url)  # the ledger's own tables and migrations first
            try:
                migrate(db)
            except BaseException:
                db.close()
                raise
            self._db = db
        return self._db

    def _run(self, work: Callable[[Any], Any]) -> Any:
        """Run `work(db)` under the lock; a broken connection is reopened once."""
        with self._lock:
            for attempt in (1, 2):
                db = self._open()
                try:
                    return work(db)
                except database_errors() as exc:
                    with contextlib.suppress(Exception):
                        db.conn.rollback()
                    if attempt == 2 or not _connection_lost(db, exc):
                        raise
                    with contextlib.suppress(Exception):
                        db.close()
                    self._db = None
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._db is not None:
                with contextlib.suppress(Exception):
                    self._db.close()
                self._db = None

    # -- operations -----------------------------------------------------------------------
    def create(self, spec: KeySpec, now: float | None = None) -> tuple[str, KeyRecord]:
        """Store a new key; returns its secret (shown once) and its record."""
        spec = spec.check(now)
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        record = KeyRecord(
            id="key_" + secrets.token_hex(8), name=spec.name, prefix=secret[:12],
            created_at=time.time() if now is None else now, models=spec.models,
            rpm=spec.rpm, tpm=spec.tpm, budget_usd=spec.budget_usd, period=spec.period,
            expires_at=spec.expires_at, meta=dict(spec.meta))
        row = _row(record, hash_secret(secret))

        def insert(db: Any) -> None:
            marks = ", ".join("?" for _ in _COLUMNS)
            try:
                _execute(db, f"INSERT INTO gateway_keys ({', '.join(_COLUMNS)}) "
                             f"VALUES ({marks})", row)
            except integrity_errors():
                raise KeysError(f"a key named {spec.name!r} already exists",
                                hint="revoke it first, or choose another name") from None

        self._run(insert)
        return secret, record

    def list(self, include_revoked: bool = True) -> list[KeyRecord]:
        """Every key, oldest first."""
        where = "" if include_revoked else " WHERE revoked_at IS NULL"
        rows = self._run(lambda db: db.query(
            f"SELECT * FROM gateway_keys{where} ORDER BY created_at, id"))
        return [_record(r) for r in rows]

    def get(self, id_or_name: str) -> KeyRecord:
        """A key by id, else the active key of that name, else the newest of that name."""
        rows = [] if _CONTROL.search(id_or_name) else self._run(lambda db: db.query(
            "SELECT * FROM gateway_keys WHERE id = ? OR name = ? ORDER BY created_at DESC",
            (id_or_name, id_or_name)))
        if not rows:
            raise KeyNotFoundError(f"no key with id or name {id_or_name!r}",
                                   hint="`llmswitch keys list` shows them")
        by_id = [r for r in rows if r["id"] == id_or_name]
        active = [r for r in rows if r["revoked_at"] is None]
        return _record((by_id or active or rows)[0])

    def revoke(self, id_or_name: str, now: float | None = None) -> KeyRecord:
        """Revoke a key (by id or name); revoking a revoked key changes nothing."""
        record = self.get(id_or_name)
        if record.revoked_at is not None:
            return record
        when = time.time() if now is None else now
        self._run(lambda db: _execute(
            db, "UPDATE gateway_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
            (when, record.id)))
        return self.get(record.id)

    def find(self, secret_hash: str) -> KeyRecord | None:
        """The key whose secret hashes to `secret_hash` (revoked and expired ones included)."""
        rows = self._run(lambda db: db.query(
            "SELECT * FROM gateway_keys WHERE secret_hash = ?", (secret_hash,)))
        return _record(rows[0]) if rows else None

    def has_keys(self) -> bool:
        """Whether any key was ever created (then every request needs one)."""
        rows = self._run(lambda db: db.query("SELECT 1 AS one FROM gateway_keys LIMIT 1"))
        return bool(rows)

    def usage(self, key_id: str, since: float) -> dict[str, Any]:
        """A key's spend and requests since `since` (epoch s) and its last use, from the
        ledger's rows (written in batches: a second or so behind)."""
        rows = self._run(lambda db: db.query(
            "SELECT COALESCE(SUM(CASE WHEN ts >= ? THEN cost_usd END), 0) AS spent, "
            "COUNT(DISTINCT CASE WHEN ts >= ? THEN request_id END) AS requests, "
            "MAX(ts) AS last FROM attempts WHERE key_id = ?", (since, since, key_id)))
        row = rows[0] if rows else {}
        last = row.get("last")
        return {"spent_usd": float(row.get("spent") or 0.0),
                "requests": int(row.get("requests") or 0),
                "last_used_at": iso(float(last)) if last is not None else None}

    def spent_since(self, key_id: str, since: float) -> float:
        """What the ledger recorded for a key since `since` (seeds budgets)."""
        return float(self.usage(key_id, since)["spent_usd"])


def migrate(db: Any) -> int:
    """Apply the keys migrations this database lacks, under a lock (several replicas may
    start at once); returns the schema version."""
    cur = db.conn.cursor()
    try:
        if db.dialect == "postgres":
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        else:
            cur.execute("BEGIN IMMEDIATE")
        cur.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA_TABLE} (version INTEGER NOT NULL)")
        cur.execute(f"SELECT MAX(version) FROM {SCHEMA_TABLE}")
        row = cur.fetchone()
        current = int(row[0]) if row and row[0] is not None else 0
        for version, statements in enumerate(KEY_MIGRATIONS[current:], start=current + 1):
            for statement in statements:
                cur.execute(statement)
            cur.execute(db.sql(f"INSERT INTO {SCHEMA_TABLE} (version) VALUES (?)"), (version,))
        db.conn.commit()
    except BaseException:
        db.conn.rollback()
        raise
    return len(KEY_MIGRATIONS)


def _execute(db: Any, text: str, params: Sequence[Any]) -> None:
    cur = db.conn.cursor()
    try:
        cur.execute(db.sql(text), tuple(params))
        db.conn.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            db.conn.rollback()
        raise


def _row(record: KeyRecord, secret_hash: str) -> tuple[Any, ...]:
    return (record.id, record.name, secret_hash, record.prefix,
            json.dumps(list(record.models)) if record.models is not None else None,
            record.rpm, record.tpm, record.budget_usd, record.period, record.expires_at,
            json.dumps(dict(record.meta), sort_keys=True) if record.meta else None,
            record.created_at, record.revoked_at)


def _record(row: Mapping[str, Any]) -> KeyRecord:
    models = row.get("models")
    meta = row.get("meta")
    return KeyRecord(
        id=row["id"], name=row["name"], prefix=row["prefix"],
        created_at=float(row["created_at"]),
        models=tuple(json.loads(models)) if models is not None else None,
        rpm=_int(row.get("rpm")), tpm=_int(row.get("tpm")),
        budget_usd=float(row["budget_usd"]) if row.get("budget_usd") is not None else None,
        period=row.get("period"),
        expires_at=float(row["expires_at"]) if row.get("expires_at") is not None else None,
        meta=json.loads(meta) if meta else {},
        revoked_at=float(row["revoked_at"]) if row.get("revoked_at") is not None else None)


def _int(value: Any) -> int | None:
    return int(value) if value is not None else None


def database_errors() -> tuple[type[BaseException], ...]:
    """What a ledger database raises (SQLite, and PostgreSQL when psycopg is installed)."""
    errors: list[type[BaseException]] = [sqlite3.Error]
    with contextlib.suppress(ImportError):
        import psycopg

        errors.append(psycopg.Error)
    return tuple(errors)


def integrity_errors() -> tuple[type[BaseException], ...]:
    """A unique constraint broken (a second active key of the same name)."""
    errors: list[type[BaseException]] = [sqlite3.IntegrityError]
    with contextlib.suppress(ImportError):
        import psycopg

        errors.append(psycopg.IntegrityError)
    return tuple(errors)


def _connection_lost(db: Any, exc: BaseException) -> bool:
    """Whether an error means the connection is gone (worth one reconnect)."""
    if db.dialect != "postgres":
        return False
    import psycopg

    return isinstance(exc, psycopg.OperationalError) or bool(db.conn.closed)


ADMIN = Principal(key_id="admin", name="admin", admin=True)


class KeyAuthenticator:
    """Virtual keys and the admin key. With no admin key and no key ever created, everyone
    may call (a fresh single-user gateway); from the first key on, every request needs one.

    Lookups (found, unknown, revoked or expired alike) are cached for `ttl` seconds, at most
    `max_cached` of them; concurrent requests with the same uncached key share one read.
    """

    def __init__(self, store: KeyStore, admin_key: str | None = None, ttl: float = 2.0,
                 clock: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, max_cached: int = 10_000,
                 names: Callable[[str], frozenset[str]] | None = None) -> None:
        self.store = store
        self.names = names
        """Every name of the same model (`access.model_names`): a key's allowed models are
        widened to them once per lookup."""
        self.admin_key = admin_key
        self.ttl = ttl
        self.clock = clock
        self.wall = wall
        self.max_cached = max_cached
        self._cache: dict[str, tuple[float, KeyRecord | None, Principal | None]] = {}
        self._pending: dict[str, asyncio.Future[KeyRecord | None]] = {}
        self._keys_exist: bool | None = None
        self._keys_checked = -1e18

    @property
    def required(self) -> bool:
        """Whether callers must present a key (an admin key is set, or a key exists)."""
        if self.admin_key is not None:
            return True
        if self._keys_exist is None:
            try:
                self._keys_exist = self.store.has_keys()
            except database_errors():
                return True  # cannot tell: assume keys are needed
        return self._keys_exist

    async def _open_access(self) -> bool:
        """No admin key and no key in the store: anyone may call (rechecked every `ttl`)."""
        if self.admin_key is not None or self._keys_exist:
            return False
        now = self.clock()
        if self._keys_exist is None or now - self._keys_checked >= self.ttl:
            try:
                self._keys_exist = await asyncio.to_thread(self.store.has_keys)
            except Exception as exc:  # the database (or the path to it) is unusable
                raise _unavailable(exc) from None
            self._keys_checked = now
        return not self._keys_exist

    async def authenticate(self, headers: Mapping[bytes, bytes]) -> Principal:
        """The caller's principal, or `unauthenticated` (401): no key, an unknown, revoked or
        expired one."""
        secret = bearer(headers)
        if secret is not None and self.admin_key is not None and hmac.compare_digest(
                secret.encode(), self.admin_key.encode()):
            return ADMIN
        if secret is None:
            if await self._open_access():
                return ANONYMOUS
            raise GatewayError("unauthenticated", "missing API key: send 'Authorization: "
                               "Bearer <key>' or 'x-api-key: <key>'")
        record, principal = await self._lookup(hash_secret(secret))
        if record is None or principal is None:
            if await self._open_access():
                return ANONYMOUS
            raise GatewayError("unauthenticated", "invalid API key (create one with "
                               "`llmswitch keys create`)")
        if record.revoked_at is not None:
            raise GatewayError("unauthenticated", f"the key {record.name!r} was revoked "
                               f"at {iso(record.revoked_at)}")
        if record.expires_at is not None and self.wall() >= record.expires_at:
            raise GatewayError("unauthenticated", f"the key {record.name!r} expired at "
                               f"{iso(record.expires_at)}")
        return principal

    async def _lookup(self, digest: str) -> tuple[KeyRecord | None, Principal | None]:
        now = self.clock()
        entry = self._cache.get(digest)
        if entry is not None and entry[0] > now:
            return entry[1], entry[2]
        pending = self._pending.get(digest)
        if pending is None:
            pending = asyncio.ensure_future(asyncio.to_thread(self.store.find, digest))
            self._pending[digest] = pending
            pending.add_done_callback(lambda _: self._pending.pop(digest, None))
        try:
            record = await asyncio.shield(pending)
        except Exception as exc:  # the database (or the path to it) is unusable
            raise _unavailable(exc) from None
        principal = self._principal(record) if record is not None else None
        if self.ttl > 0:
            if len(self._cache) >= self.max_cached:
                self._cache.clear()
            self._cache[digest] = (now + self.ttl, record, principal)
        return record, principal

    def _principal(self, record: KeyRecord) -> Principal:
        principal = record.principal()
        if self.names is None or principal.models is None:
            return principal
        names = self.names
        allowed = frozenset(n for m in principal.models for n in names(m))
        return dataclasses.replace(principal, models=allowed)

    def forget(self) -> None:
        """Drop every cached lookup (the next request reads the store)."""
        self._cache.clear()


def _unavailable(exc: BaseException) -> GatewayError:
    log.error("llmswitch gateway: cannot read the keys: %s: %s", type(exc).__name__, exc)
    return GatewayError("unavailable", "the key store (the ledger's database) is unreachable; "
                        f"retry shortly ({type(exc).__name__})")


def period_bounds(period: str, now: float) -> tuple[str, float, float | None]:
    """A budget period's id, start and reset time (epoch s, UTC calendar): `day`, `month`, or
    `total` (never resets)."""
    if period == "total":
        return "total", 0.0, None
    moment = datetime.fromtimestamp(now, UTC)
    if period == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return start.strftime("d%Y-%m-%d"), start.timestamp(), (
            start + timedelta(days=1)).timestamp()
    if period == "month":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        following = (start + timedelta(days=32)).replace(day=1)
        return start.strftime("m%Y-%m"), start.timestamp(), following.timestamp()
    raise KeysError(f"unknown budget period {period!r} (day, month or total)")
