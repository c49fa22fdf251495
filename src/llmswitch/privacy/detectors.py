"""Detectors of sensitive values in text: regex candidates confirmed by checksums or parsers.

Kinds: `email`, `phone`, `card` (Luhn), `iban` (mod-97), `national_id` (US SSN, UK NINO),
`secret` (API keys, tokens, private keys, `password=` assignments), `ip` (v4 and v6).
Names are not detected: no maintained offline name recogniser ships with llmswitch (a
spaCy/Presidio NER model would be a large optional dependency); see docs/patterns/privacy.md.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

KINDS = ("secret", "email", "iban", "card", "national_id", "ip", "phone")
"""Detection order: earlier kinds win when matches overlap."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One sensitive value: its kind and where it is (`value` never goes into a trace)."""

    kind: str
    start: int
    end: int
    value: str


def luhn_ok(digits: str) -> bool:
    """Whether a digit string passes the Luhn checksum (card numbers)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_ok(text: str) -> bool:
    """Whether an IBAN (spaces allowed) passes the ISO 13616 mod-97 check."""
    s = text.replace(" ", "").upper()
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    number = "".join(str(int(c, 36)) for c in moved)
    return int(number) % 97 == 1


def _ssn_ok(text: str) -> bool:
    area, group, serial = text.split("-")
    return area not in ("000", "666") and not area.startswith("9") and group != "00" and (
        serial != "0000")


def _ip_ok(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _phone_ok(text: str) -> bool:
    """International (`+`), bracketed area code, trunk `0` prefix, or 10-digit NANP."""
    digits = re.sub(r"\D", "", text)
    if text.startswith(("+", "(")):
        return 8 <= len(digits) <= 15
    if text.startswith("0"):
        return 10 <= len(digits) <= 12
    return len(digits) == 10 and bool(re.fullmatch(r"\d{3}[ .-]\d{3}[ .-]\d{4}", text))


def _digits(check: Callable[[str], bool]) -> Callable[[str], bool]:
    return lambda t: check(re.sub(r"\D", "", t))


_SECRET = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----"
    r"|\b(?:sk|pk|rk)-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{20,}"
    r"|\bAKIA[0-9A-Z]{16}\b|\bgh[pousr]_[A-Za-z0-9]{36,}\b|\bxox[abprs]-[A-Za-z0-9-]{10,}"
    r"|\bAIza[0-9A-Za-z_-]{35}\b|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+"
    r"|(?i:\b(?:api[_-]?key|secret|token|password|passwd)\b\s*[:=]\s*)[\"']?[^\s\"']{8,}")

PATTERNS: dict[str, tuple[re.Pattern[str], Callable[[str], bool] | None]] = {
    "secret": (_SECRET, None),
    "email": (re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"),
              None),
    "iban": (re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"), iban_ok),
    "card": (re.compile(r"\b(?:\d[ -]?){12,18}\d\b"), _digits(luhn_ok)),
    "national_id": (re.compile(r"\b\d{3}-\d{2}-\d{4}\b|\b[A-CEGHJ-PR-TW-Z]{2} ?\d{2} ?\d{2} ?"
                               r"\d{2} ?[A-D]\b"),
                    lambda t: _ssn_ok(t) if "-" in t else True),
    "ip": (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b|(?<![\w:])(?:[0-9A-Fa-f]{1,4}:){2,7}"
                      r"[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{1,4})*(?![\w:])"), _ip_ok),
    "phone": (re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}"
                         r"(?:[ .-]?\d{2,4}){2,4}(?!\w)"),
              _phone_ok),
}


def detect(text: str, kinds: Iterable[str] = KINDS) -> list[Finding]:
    """Non-overlapping findings in text order (earlier kinds in `KINDS` win overlaps)."""
    wanted = [k for k in KINDS if k in set(kinds)]
    taken: list[tuple[int, int]] = []
    found: list[Finding] = []
    for kind in wanted:
        pattern, check = PATTERNS[kind]
        for match in pattern.finditer(text):
            start, end = match.span()
            value = match.group(0)
            if check is not None and not check(value):
                continue
            if any(start < e and s < end for s, e in taken):
                continue
            taken.append((start, end))
            found.append(Finding(kind, start, end, value))
    return sorted(found, key=lambda f: f.start)


def counts(findings: Sequence[Finding]) -> dict[str, int]:
    """Findings per kind (what a trace may record)."""
    return dict(Counter(f.kind for f in findings))
