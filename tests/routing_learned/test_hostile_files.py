"""Untrusted router files: sizes are checked before anything is unpacked, nesting is bounded."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

from llmswitch.routing.learned.io import (
    FORMAT,
    MAX_META_DEPTH,
    MAX_UNCOMPRESSED_BYTES,
    VERSION,
    RouterFileError,
    load_router,
)

META = {"format": FORMAT, "version": VERSION, "kind": "knn", "models": ["a", "b"]}


def _npy_header(shape: tuple[int, ...], dtype: str = "<f8") -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def _meta_member(meta: object) -> bytes:
    raw = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, raw)
    return buffer.getvalue()


def _bomb(path: Path, n_bytes: int) -> None:
    """A few-hundred-KB file holding `n_bytes` of zeros as one float64 array."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("__meta__.npy", _meta_member(META))
        with archive.open("features/keep.npy", "w", force_zip64=True) as member:
            member.write(_npy_header((n_bytes // 8,)))
            chunk = bytes(1 << 20)
            for _ in range(n_bytes // len(chunk)):
                member.write(chunk)


def test_a_compression_bomb_is_refused_before_it_is_unpacked(tmp_path: Path) -> None:
    path = tmp_path / "bomb.npz"
    _bomb(path, MAX_UNCOMPRESSED_BYTES + (16 << 20))
    assert path.stat().st_size < 2 << 20
    tracemalloc.start()
    try:
        with pytest.raises(RouterFileError) as info:
            load_router(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(path) in str(info.value)
    assert "cap" in str(info.value)
    assert peak < 32 << 20  # the 272 MB array was never allocated


def test_a_smaller_cap_can_be_asked_for(tmp_path: Path) -> None:
    path = tmp_path / "medium.npz"
    _bomb(path, 8 << 20)
    with pytest.raises(RouterFileError, match="over the 1,048,576-byte cap"):
        load_router(path, max_bytes=1 << 20)


def test_an_array_header_that_lies_about_its_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "liar.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__meta__.npy", _meta_member(META))
        # claims 10^10 float64 (80 GB), holds 80 bytes
        archive.writestr("features/keep.npy", _npy_header((10**10,)) + bytes(80))
    tracemalloc.start()
    try:
        with pytest.raises(RouterFileError) as info:
            load_router(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(path) in str(info.value)
    assert "features/keep.npy" in str(info.value)
    assert "declares 80,000,000,000 bytes" in str(info.value)
    assert peak < 32 << 20


def test_entries_other_than_plain_arrays_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "extra.npz"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("__meta__.npy", _meta_member(META))
        archive.writestr("notes.txt", b"hello")
    with pytest.raises(RouterFileError, match=r"unexpected entry 'notes\.txt'"):
        load_router(path)


@pytest.mark.parametrize("depth", [MAX_META_DEPTH + 1, 100_000])
def test_deeply_nested_metadata_is_a_router_file_error(tmp_path: Path, depth: int) -> None:
    path = tmp_path / "deep.npz"
    meta = json.dumps({**META, "info": None}).replace(
        "null", "[" * depth + "]" * depth).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        buffer = io.BytesIO()
        np.lib.format.write_array(buffer, np.frombuffer(meta, dtype=np.uint8))
        archive.writestr("__meta__.npy", buffer.getvalue())
    with pytest.raises(RouterFileError) as info:
        load_router(path)
    assert str(path) in str(info.value)
    assert f"nested deeper than {MAX_META_DEPTH} levels" in str(info.value)


def test_brackets_inside_strings_do_not_count_as_nesting(tmp_path: Path) -> None:
    path = tmp_path / "strings.npz"
    meta = {**META, "info": {"note": "[" * 1000 + '\\"{' * 100}}
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("__meta__.npy", _meta_member(meta))
    with pytest.raises(RouterFileError) as info:
        load_router(path)
    assert "nested" not in str(info.value)  # it gets past the metadata, then fails as a router
