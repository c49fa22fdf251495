"""`Decision`: what a pure router chose for one request, and why (lands in the trace)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Decision:
    """The chosen target name, a human-readable reason and optional per-candidate scores."""

    chosen: str
    reason: str
    scores: dict[str, float] = field(default_factory=dict)
