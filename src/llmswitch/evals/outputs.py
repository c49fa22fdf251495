"""Output files of the eval commands: make sure they can be written before any slow work."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class OutputError(ValueError):
    """An output file cannot be written (the message names the option and the folder)."""


def prepare_output(path: str | Path, option: str = "--out") -> Path:
    """Create the folder of the output file ``path`` and check that a file can be written there.

    Runs before training, collecting or plotting, so a typo costs nothing. The check writes (and
    removes) a temporary file: permission bits say yes for root even on read-only file systems.
    """
    target = Path(path).expanduser()
    if target.is_dir():
        raise OutputError(f"{option}: {path} is a directory; give a file name")
    folder = target.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{option}: cannot create the folder {folder}: {_why(exc)}") from None
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".llmswitch-check-"):
            pass
    except OSError as exc:
        raise OutputError(f"{option}: cannot write in {folder}: {_why(exc)}") from None
    if target.exists() and not os.access(target, os.W_OK):
        raise OutputError(f"{option}: cannot write {target} (permission denied)")
    return target


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__
