"""Signing in to the dashboard: only the admin key (`LLMSWITCH_ADMIN_KEY`) opens a session.

A session is a cookie `llmswitch_session=<expiry>.<nonce>.<mac>` (HttpOnly, SameSite=Strict,
Path=<mount>, Secure behind https), where the MAC is HMAC-SHA256 under a key derived from the
admin key. Every worker and replica with the same admin key accepts it; changing the admin key
ends every session. The CSRF token of a session is another MAC of its nonce, sent in each
form and checked on every POST (SameSite=Strict already keeps other sites' forms out).
Signing out forgets the nonce in this process and clears the cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote, urlsplit

COOKIE = "llmswitch_session"
SESSION_S = 12 * 3600
_MAX_REVOKED = 10_000


@dataclass(frozen=True, slots=True)
class Session:
    """A signed-in browser."""

    nonce: str
    expires: int
    csrf: str


class Sessions:
    """Issues and checks session cookies for one admin key."""

    def __init__(self, admin_key: str | None, lifetime: float = SESSION_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.admin_key = admin_key
        self.lifetime = lifetime
        self.clock = clock
        self._mac_key = (hashlib.sha256(b"llmswitch-dashboard-session\0"
                                        + admin_key.encode()).digest() if admin_key else b"")
        self._revoked: set[str] = set()

    @property
    def enabled(self) -> bool:
        """Whether anyone can sign in (an admin key is set)."""
        return bool(self.admin_key)

    def check_key(self, offered: str) -> bool:
        """Whether `offered` is the admin key (constant time)."""
        if not self.admin_key:
            return False
        return hmac.compare_digest(offered.strip().encode(), self.admin_key.encode())

    def _mac(self, purpose: str, text: str) -> str:
        return hmac.new(self._mac_key, f"{purpose}:{text}".encode(),
                        hashlib.sha256).hexdigest()

    def issue(self) -> tuple[str, Session]:
        """A new session and its cookie value."""
        nonce = secrets.token_urlsafe(24)
        expires = int(self.clock() + self.lifetime)
        value = f"{expires}.{nonce}.{self._mac('session', f'{expires}.{nonce}')}"
        return value, Session(nonce, expires, self._mac("csrf", nonce))

    def read(self, cookies: Mapping[str, str]) -> Session | None:
        """The session a request's cookies carry, if valid, unexpired and not signed out."""
        if not self.enabled:
            return None
        value = cookies.get(COOKIE, "")
        parts = value.split(".")
        if len(parts) != 3 or not parts[0].isdigit():
            return None
        expires, nonce, mac = parts
        if not hmac.compare_digest(mac, self._mac("session", f"{expires}.{nonce}")):
            return None
        if int(expires) <= self.clock() or nonce in self._revoked:
            return None
        return Session(nonce, int(expires), self._mac("csrf", nonce))

    def end(self, session: Session) -> None:
        """Sign a session out (in this process; the cookie is cleared in the browser)."""
        if len(self._revoked) >= _MAX_REVOKED:
            self._revoked.clear()
        self._revoked.add(session.nonce)

    @staticmethod
    def csrf_ok(session: Session, token: str) -> bool:
        """Whether a form's token belongs to the session."""
        return bool(token) and hmac.compare_digest(token, session.csrf)


def cookie_header(value: str, path: str, secure: bool, max_age: int) -> bytes:
    """A `set-cookie` header value for the session cookie."""
    parts = [f"{COOKIE}={value}", f"Path={path}", f"Max-Age={max_age}", "HttpOnly",
             "SameSite=Strict"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts).encode()


def parse_cookies(header: str) -> dict[str, str]:
    """Cookie name -> value from a `cookie` request header."""
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name and name not in out:
            out[name] = value.strip().strip('"')
    return out


_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")


def safe_next(mount: str, value: str | None) -> str:
    """Where signing in may send the browser: `value` when it is a path inside the dashboard
    (with its query; no scheme, host, dot segments, backslash or control character), sent
    percent-encoded; else the dashboard's first page."""
    home = mount or "/"
    if not value or _UNSAFE.search(value) or _UNSAFE.search(unquote(value)):
        return home
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or parts.fragment or "//" in parts.path:
        return home
    if any(seg in (".", "..") for seg in unquote(parts.path).split("/")):
        return home
    if parts.path != mount and not parts.path.startswith(mount + "/"):
        return home
    path = quote(parts.path, safe="/%-._~!$&'()*+,;=:@")
    query = quote(parts.query, safe="/%-._~!$&'()*+,;=:@?")
    return f"{path}?{query}" if query else path
