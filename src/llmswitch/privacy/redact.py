"""Redact-and-restore: replace sensitive values with placeholders, put them back after.

`Redactor` numbers placeholders per kind (`[EMAIL_1]`); the same value gets the same
placeholder across all messages of a request, so the model can still refer to it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from llmswitch.privacy.detectors import KINDS, Finding, detect

_PLACEHOLDER = re.compile(r"\[([A-Z_]+_\d+)\]")


@dataclass
class Redactor:
    """Holds one request's value ↔ placeholder table (make one per request)."""

    kinds: Iterable[str] = KINDS
    table: dict[str, str] = field(default_factory=dict)
    """placeholder (without brackets) → original value"""
    findings: list[Finding] = field(default_factory=list)

    def redact(self, text: str) -> str:
        """`text` with every finding replaced by its placeholder."""
        found = detect(text, self.kinds)
        self.findings.extend(found)
        reverse = {v: k for k, v in self.table.items()}
        out, last = [], 0
        for f in found:
            key = reverse.get(f.value)
            if key is None:
                n = sum(1 for k in self.table if k.startswith(f.kind.upper() + "_")) + 1
                key = f"{f.kind.upper()}_{n}"
                self.table[key] = f.value
                reverse[f.value] = key
            out += [text[last:f.start], f"[{key}]"]
            last = f.end
        out.append(text[last:])
        return "".join(out)

    def restore(self, text: str) -> str:
        """`text` with known placeholders replaced by the original values."""
        return _PLACEHOLDER.sub(lambda m: self.table.get(m.group(1), m.group(0)), text)
