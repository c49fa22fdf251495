"""How long-running training reports progress: a stage name, and how far it is when countable.

`progress("cross-validating ridge", 2, 5)` says two of five folds are done; a call without
counts announces a stage of unknown length. The CLI draws these as rich progress bars on a
terminal and as status lines otherwise (`cli/router.py`); library callers may pass any callable.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives progress: ``(stage, done, total)``; ``done``/``total`` are `None` if uncounted."""

    def __call__(self, stage: str, done: int | None = None, total: int | None = None) -> None:
        """Report that ``done`` of ``total`` units of ``stage`` are finished."""
