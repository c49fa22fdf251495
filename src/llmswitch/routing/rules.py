"""Rule routing: ordered conditions on a request; the first rule that matches wins.

A rule's `when` holds conditions that must all be true:

- `min_tokens` / `max_tokens`: estimated input tokens (characters / 4, images count 765 each)
- `has_images`, `has_tools`: booleans
- `needs`: capabilities the request needs (`vision`, `tools`, `json_schema`, `json_mode`)
- `regex`: a pattern searched in the last user message (or all text with `in: all`)
- `keywords`: any of these words (case-insensitive, whole words)
- `metadata`: request metadata entries that must be equal (e.g. `{tier: premium}`)
- `key`: the caller's key name (`metadata["key"]`, set by the gateway), one name or a list

The router is a pure decision (`decide(request) -> Decision`); no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmswitch.request import Request
from llmswitch.routing.decision import Decision

TOKENS_PER_IMAGE = 765
CHARS_PER_TOKEN = 4
CONDITIONS = frozenset({"min_tokens", "max_tokens", "has_images", "has_tools", "needs", "regex",
                        "keywords", "metadata", "key", "in"})


def estimate_tokens(request: Request) -> int:
    """A fast input-token estimate: characters / 4, plus a fixed amount per image."""
    chars = sum(len(m.text) for m in request.messages)
    images = sum(len(m.images) for m in request.messages)
    return chars // CHARS_PER_TOKEN + TOKENS_PER_IMAGE * images


def request_needs(request: Request) -> set[str]:
    """The capabilities a request needs from a model."""
    needs: set[str] = set()
    if request.has_images:
        needs.add("vision")
    if request.settings.tools:
        needs.add("tools")
    kind = request.settings.response_format.kind
    if kind == "json_schema":
        needs.add("json_schema")
    elif kind == "json":
        needs.add("json_mode")
    return needs


@dataclass(frozen=True)
class Rule:
    """One rule: conditions (all must hold) and the target to use when they do."""

    target: str
    when: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""
    _regex: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    _keywords: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def parse(cls, data: Any, index: int) -> Rule:
        """A rule from config (`{when: {...}, target: NAME, name: ...}`); `ValueError` if bad."""
        if not isinstance(data, Mapping) or not isinstance(data.get("target"), str):
            raise ValueError(f"rules[{index}] needs a 'target' (a model or route name)")
        when = data.get("when") or {}
        if not isinstance(when, Mapping):
            raise ValueError(f"rules[{index}].when must be a mapping of conditions")
        unknown = set(when) - CONDITIONS
        if unknown:
            raise ValueError(f"rules[{index}].when: unknown condition(s) {sorted(unknown)}; "
                             f"known: {', '.join(sorted(CONDITIONS))}")
        regex = None
        if "regex" in when:
            try:
                regex = re.compile(str(when["regex"]))
            except re.error as exc:
                raise ValueError(f"rules[{index}].when.regex: {exc}") from None
        words = when.get("keywords")
        keywords = None
        if words:
            if isinstance(words, str):
                words = [words]
            keywords = re.compile(
                r"\b(?:" + "|".join(re.escape(str(w)) for w in words) + r")\b", re.IGNORECASE)
        name = str(data.get("name") or f"rules[{index}]")
        return cls(data["target"], dict(when), name, regex, keywords)

    def mismatch(self, request: Request, tokens: int, needs: set[str]) -> str | None:
        """`None` when every condition holds, else the first condition that failed."""
        w = self.when
        text = request.prompt_text if w.get("in") == "all" else request.last_user_text
        tools = bool(request.settings.tools)
        checks: list[tuple[str, bool]] = [
            ("min_tokens", "min_tokens" not in w or tokens >= int(w["min_tokens"])),
            ("max_tokens", "max_tokens" not in w or tokens <= int(w["max_tokens"])),
            ("has_images", "has_images" not in w or request.has_images == bool(w["has_images"])),
            ("has_tools", "has_tools" not in w or tools == bool(w["has_tools"])),
            ("needs", "needs" not in w or set(_names(w["needs"])) <= needs),
            ("regex", self._regex is None or self._regex.search(text) is not None),
            ("keywords", self._keywords is None or self._keywords.search(text) is not None),
            ("metadata", all(request.metadata.get(k) == v
                             for k, v in (w.get("metadata") or {}).items())),
            ("key", "key" not in w or request.metadata.get("key") in _names(w["key"])),
        ]
        for label, ok in checks:
            if not ok:
                return label
        return None

    def describe(self) -> str:
        """The rule's conditions as text, for reasons."""
        if not self.when:
            return f"{self.name} (always)"
        return f"{self.name} ({', '.join(f'{k}={v}' for k, v in self.when.items())})"


def _names(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value]


@dataclass(frozen=True)
class RuleRouter:
    """Ordered rules plus a default target (or `None`: no match is an error for the caller)."""

    rules: Sequence[Rule]
    default: str | None = None

    @classmethod
    def parse(cls, rules: Any, default: str | None) -> RuleRouter:
        """From config: a list of rule mappings."""
        if not isinstance(rules, list) or not rules:
            raise ValueError("'rules' must be a non-empty list of {when: ..., target: ...}")
        return cls(tuple(Rule.parse(r, i) for i, r in enumerate(rules)), default)

    def targets(self) -> list[str]:
        """Every target the router can choose."""
        names = [r.target for r in self.rules]
        return [*names, self.default] if self.default else names

    def decide(self, request: Request) -> Decision | None:
        """The first matching rule's target, else the default, else `None`."""
        tokens = estimate_tokens(request)
        needs = request_needs(request)
        for rule in self.rules:
            if rule.mismatch(request, tokens, needs) is None:
                return Decision(rule.target, f"matched {rule.describe()}")
        if self.default is not None:
            return Decision(self.default, f"no rule matched (~{tokens} tokens); default")
        return None
