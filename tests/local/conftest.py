"""Fixtures for the local engine tests.

Tests marked `local_model` run the real SmolLM2 GGUF; they are skipped (with the reason
printed) only when xllamacpp or the model file is not installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch.local import (
    LocalEngine,
    LocalModelError,
    close_engines,
    default_smollm2_path,
    get_engine,
)


def _find_model() -> tuple[Path | None, str]:
    try:
        import xllamacpp  # noqa: F401
    except ImportError as exc:
        return None, f"xllamacpp is not installed (pip install 'llmswitch[local]'): {exc}"
    try:
        return default_smollm2_path(), ""
    except LocalModelError as exc:
        return None, str(exc)


MODEL_PATH, SKIP_REASON = _find_model()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if MODEL_PATH is not None:
        return
    print(f"\ntests/local: skipping real-model tests: {SKIP_REASON}")
    skip = pytest.mark.skipif(True, reason=f"SmolLM2 GGUF not installed: {SKIP_REASON}")
    for item in items:
        if item.get_closest_marker("local_model") and "tests/local/" in item.nodeid:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def engine() -> Iterator[LocalEngine]:
    """The cached engine for the default model, loaded once for the whole session."""
    assert MODEL_PATH is not None
    # One thread: on a shared 2-core machine two llama.cpp threads that spin-wait for each
    # other slow decoding ~10x when other processes take a core (measured 3 vs 30 tok/s).
    # LocalTransport() reuses this cached engine: the cache key is (path, n_ctx).
    eng = get_engine(MODEL_PATH, n_threads=1)
    eng.load()
    yield eng
    close_engines()
