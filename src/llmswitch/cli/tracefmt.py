"""Render a trace tree readably for `llmswitch chat --trace`."""

from __future__ import annotations

from typing import Any

from llmswitch import Span

SHOWN = (
    ("gen_ai.provider.name", "provider"),
    ("gen_ai.request.model", "model"),
    ("gen_ai.usage.input_tokens", "in"),
    ("gen_ai.usage.output_tokens", "out"),
    ("llmswitch.cost_usd", "cost"),
    ("llmswitch.ttft_ms", "ttft_ms"),
    ("llmswitch.reason", "reason"),
    ("llmswitch.chosen", "chosen"),
    ("llmswitch.retry_wait_s", "wait_s"),
    ("llmswitch.policy", "policy"),
    ("llmswitch.skipped", "skipped"),
    ("llmswitch.stream_failover", "failovers"),
    ("llmswitch.stream_failed_after_chars", "failed_after_chars"),
    ("llmswitch.escalate", "escalate"),
    ("llmswitch.failed_step", "failed_step"),
    ("llmswitch.cancelled", "cancelled"),
    ("llmswitch.emulated", "emulated"),
)
ERROR_CHARS = 120
"""An error message longer than this is cut (with an ellipsis) to keep one line per span."""


def render_trace(span: Span) -> str:
    """An indented tree: one line per span with its outcome and key attributes."""
    lines: list[str] = []
    _render(span, "", True, lines, root=True)
    return "\n".join(lines)


def _render(span: Span, prefix: str, last: bool, lines: list[str], root: bool = False) -> None:
    branch = "" if root else ("└─ " if last else "├─ ")
    status = "ok" if span.status == "ok" else f"ERROR {_error(span.error)}"
    details = " ".join(f"{label}={_fmt(span.attributes[key])}" for key, label in SHOWN
                       if span.attributes.get(key) is not None)
    lines.append(f"{prefix}{branch}{span.name} [{span.kind}] {status} "
                 f"{span.duration_ms:.0f}ms {details}".rstrip())
    child_prefix = prefix + ("" if root else ("   " if last else "│  "))
    for i, child in enumerate(span.children):
        _render(child, child_prefix, i == len(span.children) - 1, lines)


def _error(error: dict[str, Any] | None) -> str:
    if not error:
        return ""
    return f"{error.get('type')}: {_one_line(str(error.get('message')), ERROR_CHARS)}"


def _one_line(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ",".join(_one_line(str(v), 80) for v in value)
    return _one_line(str(value), 160)
