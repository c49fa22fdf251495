"""Secrets we send never come back out.

A provider knows every secret a call used (API key, bearer token, AWS secret key and session
token, configured headers, a password or `?key=` in its base URL). When provider text enters
the library as an error (an error body, a message quoting a header, a URL in a connection
error), `HttpModel` passes it through that provider's `Scrubber` before it reaches an error, a
span, a log line or a ledger row. Only error paths scrub; a successful call costs nothing.

A secret is replaced wherever it appears: as sent, percent-encoded, JSON-escaped, with HTML
character references (`sk&#45;proj&#45;…`), any mix of those, and cut short (16 or more of its
first characters, then the rest of the token, so a body cut in the middle of the key is caught
too). The marker keeps at most a vendor prefix: `sk-...[redacted]`.
Values shorter than `MIN_SECRET` characters are not scrubbed (they would redact ordinary words).
"""

from __future__ import annotations

import contextlib
import functools
import html
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

MIN_SECRET = 8
"""Shorter values are not treated as secrets."""
PREFIX_MATCH = 16
"""How many first characters of a (longer) secret identify a truncated echo of it."""
REDACTED = "[redacted]"
_TAIL = r"(?:[^\s\"'<>&,;()\[\]{}|%\\]|%[0-9A-Fa-f]{2}|&#?[0-9A-Za-z]+;|\\u[0-9A-Fa-f]{4}|\\/)*"
"""The rest of a token after a secret's prefix (up to a blank, quote, bracket or separator;
its characters may be percent-encoded, JSON-escaped or HTML character references)."""
_VENDOR_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9]{0,3}[-_]")
_SECRET_PARAM = re.compile(
    r"key|token|secret|sig|password|passwd|pwd|auth|credential|session", re.IGNORECASE)
_AUTH_SCHEME = re.compile(r"^\s*(?:Bearer|Basic|Token|Bot|AWS4-HMAC-SHA256)\s+", re.IGNORECASE)


class Scrubber:
    """Replaces a fixed set of secrets in text and JSON-like values (built once per set)."""

    __slots__ = ("_markers", "_pattern", "secrets")

    def __init__(self, secrets: Iterable[str | None] = (), min_length: int = MIN_SECRET) -> None:
        found = {s for s in secrets if s and len(s) >= min_length}
        self.secrets: tuple[str, ...] = tuple(sorted(found, key=lambda s: (-len(s), s)))
        self._markers: dict[str, str] = {}
        groups = []
        for i, secret in enumerate(self.secrets):
            name = f"s{i}"
            self._markers[name] = marker(secret)
            groups.append(f"(?P<{name}>{_pattern(secret)})")
        self._pattern = re.compile("|".join(groups)) if groups else None

    def __bool__(self) -> bool:
        return self._pattern is not None

    def __repr__(self) -> str:
        return f"Scrubber({len(self.secrets)} secrets)"

    def text(self, text: str) -> str:
        """`text` with every secret replaced by its marker."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(self._marker, text)

    def _marker(self, match: re.Match[str]) -> str:
        return self._markers[match.lastgroup or ""]

    def value(self, value: Any) -> Any:
        """A copy of a JSON-like value (str, bytes, dict, list, tuple) with secrets replaced."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8", "replace")).encode("utf-8")
        if isinstance(value, Mapping):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(self.value(v) for v in value)
        return value

    def error(self, error: BaseException) -> None:
        """Scrub an exception in place: its message, hint, body and args (and a group's causes,
        and any exception it was raised from)."""
        if self._pattern is None:
            return
        seen: set[int] = set()
        todo: list[BaseException | None] = [error]
        while todo:
            exc = todo.pop()
            if exc is None or id(exc) in seen:
                continue
            seen.add(id(exc))
            for attr in ("message", "hint", "body", "args"):
                value = getattr(exc, attr, None)
                if isinstance(value, str | bytes | dict | list | tuple):
                    with contextlib.suppress(AttributeError, TypeError):  # read-only in some
                        setattr(exc, attr, self.value(value))
            span = getattr(exc, "trace", None)
            if span is not None:
                self.span(span)
            todo.extend(getattr(exc, "errors", ()) or ())
            todo.extend((exc.__cause__, exc.__context__))

    def span(self, span: Any) -> None:
        """Scrub a trace tree (`observe.trace.Span`) in place: error messages and attributes."""
        if self._pattern is None:
            return
        for node in span.walk():
            if node.error is not None:
                node.error = self.value(node.error)
            node.attributes = self.value(node.attributes)

    def merged(self, other: Scrubber) -> Scrubber:
        """A scrubber for both sets of secrets."""
        return Scrubber((*self.secrets, *other.secrets))


NO_SECRETS = Scrubber()


def marker(secret: str) -> str:
    """What replaces a secret: a short vendor prefix at most (`sk-...[redacted]`)."""
    prefix = _VENDOR_PREFIX.match(secret)
    keep = prefix.group(0) if prefix and len(secret) >= 4 * len(prefix.group(0)) else ""
    return f"{keep}...{REDACTED}" if keep else REDACTED


def _pattern(secret: str) -> str:
    """The secret with each character in any of its encodings (so mixed encodings match too),
    and, for a long one, its first `PREFIX_MATCH` characters followed by the rest of a token
    (a body cut in the middle of the key)."""
    chars = [_char(c) for c in secret]
    whole = "".join(chars)
    if len(secret) < PREFIX_MATCH + 4:
        return whole
    return f"{whole}|{''.join(chars[:PREFIX_MATCH])}{_TAIL}"


@functools.lru_cache(maxsize=512)
def _char(c: str) -> str:
    r"""A character of a secret as sent, percent-encoded (either hex case, `+` for a blank),
    JSON-escaped (`\/`, `\uXXXX`) or as an HTML character reference (`&#45;`, `&#x2d;`,
    `&sol;`)."""
    if c.isascii() and c.isalnum():
        return c
    code = ord(c)
    forms = {c, quote(c, safe=""), quote(c, safe="").lower(), json.dumps(c)[1:-1],
             json.dumps(c, ensure_ascii=False)[1:-1], f"\\u{code:04x}", f"\\u{code:04X}",
             f"&#{code};", f"&#x{code:x};", f"&#x{code:X};", html.escape(c),
             *(f"&{name}" for name in _entities().get(c, ()))}
    if c == "/":
        forms.add("\\/")
    if c == " ":
        forms.add("+")
    return "(?:" + "|".join(re.escape(f) for f in sorted(forms, key=lambda f: (-len(f), f))) + ")"


@functools.lru_cache(maxsize=1)
def _entities() -> dict[str, tuple[str, ...]]:
    """ASCII characters by their HTML5 named references (`/` → `sol;`, `_` → `lowbar;`, …)."""
    from html.entities import html5

    by_char: dict[str, list[str]] = {}
    for name, value in html5.items():
        if name.endswith(";") and len(value) == 1 and value.isascii():
            by_char.setdefault(value, []).append(name)
    return {c: tuple(names) for c, names in by_char.items()}


def header_secrets(headers: Mapping[str, str]) -> list[str]:
    """Secrets in header values: the whole value, and the credential after an auth scheme
    (`Bearer …`, `Basic …`)."""
    out: list[str] = []
    for value in headers.values():
        if not isinstance(value, str):
            continue
        out.append(value)
        bare = _AUTH_SCHEME.sub("", value)
        if bare != value:
            out.append(bare.strip())
    return out


def url_secrets(url: str | None) -> list[str]:
    """A URL's password and the values of query parameters that look like credentials
    (`key`, `token`, `sig`, `password`, ...), as written and percent-decoded."""
    if not url:
        return []
    try:
        parts = urlsplit(url)
        password, query = parts.password, parts.query
    except ValueError:  # e.g. an unclosed `[` in the host: drivers quote such URLs whole
        password, query = _password_as_written(url), url.partition("?")[2]
    out = [password] if password else []
    out += [v for k, v in _query_pairs(query.partition("#")[0]) if _SECRET_PARAM.search(k)]
    return list(dict.fromkeys([*out, *(unquote(v) for v in out)]))


def _password_as_written(url: str) -> str | None:
    """The password of `scheme://user:password@host...`, read without parsing the host."""
    netloc = url.partition("://")[2].split("/", 1)[0].split("?", 1)[0]
    userinfo, at, _ = netloc.rpartition("@")
    _, colon, password = userinfo.partition(":")
    return password if at and colon and password else None


def _query_pairs(query: str) -> list[tuple[str, str]]:
    """`k=v` pairs as written (not percent-decoded, so a malformed value is still found)."""
    pairs = (part.partition("=") for part in query.split("&") if part)
    return [(k, v) for k, _, v in pairs if v]


MIN_PASSWORD = 4
"""Database passwords are scrubbed from 4 characters (they are chosen, not random tokens)."""


def url_scrubber(url: str) -> Scrubber:
    """A scrubber for the secrets of one URL (e.g. a PostgreSQL DSN's password), for text
    that may quote them (a driver's error message)."""
    return Scrubber(url_secrets(url), min_length=MIN_PASSWORD)


def redact_url(url: str) -> str:
    """`url` fit to print: its password and credential-like query values replaced
    (`postgresql://app:[redacted]@db/ledger`). Text that is not a URL comes back unchanged."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url_scrubber(url).text(url)
    netloc = parts.netloc
    if password is not None:
        user, _, host = netloc.rpartition("@")
        name = user.split(":", 1)[0]
        netloc = f"{name}:{REDACTED}@{host}"
    query = "&".join(
        f"{k}={REDACTED}" if v and _SECRET_PARAM.search(k) else f"{k}{sep}{v}"
        for k, sep, v in (p.partition("=") for p in parts.query.split("&") if p))
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
