"""Saving and loading routers as versioned ``.npz`` files that load without pickle.

A router file is a NumPy ``.npz`` archive holding only numeric arrays: ``__meta__`` is the UTF-8
bytes of a JSON document (format name and version, kind, models, hyper-parameters, training
info) and every other entry is ``<component>/<array>``. Files are read with
``numpy.load(..., allow_pickle=False)``, so a malicious file cannot execute code; it can only fail
to validate. Before anything is decompressed, the archive's declared sizes (each member's
uncompressed size and its ``.npy`` header's shape and dtype) are checked against
`MAX_UNCOMPRESSED_BYTES`, and the metadata's nesting depth is bounded, so a small hostile file
cannot make the loader allocate gigabytes or overflow the stack.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from llmswitch.routing.learned.cascade import CascadeRouter
from llmswitch.routing.learned.parts import RouterFileError, router_from_arrays, router_to_arrays

__all__ = [
    "FORMAT", "MAX_UNCOMPRESSED_BYTES", "VERSION", "RouterFileError", "check_archive",
    "load_router", "read_router_file", "router_from_arrays", "router_to_arrays", "save_router",
    "write_router_file",
]

FORMAT = "llmswitch-router"
VERSION = 1

MAX_UNCOMPRESSED_BYTES = 256 * 1024 * 1024
"""Cap on a router file's total uncompressed size (the largest routers we train are far below)."""
MAX_MEMBERS = 4096
MAX_META_DEPTH = 64
"""Metadata nesting beyond this is refused (ours is a few levels deep)."""


def write_router_file(path: str | Path, meta: dict[str, Any], arrays: dict[str, Any]) -> None:
    """Write ``meta`` (JSON) and ``arrays`` as a compressed ``.npz`` router file."""
    doc = {"format": FORMAT, "version": VERSION, **meta}
    payload = {"__meta__": np.frombuffer(json.dumps(doc).encode("utf-8"), dtype=np.uint8), **arrays}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **payload)
    Path(path).write_bytes(buffer.getvalue())


def read_router_file(
    path: str | Path, max_bytes: int = MAX_UNCOMPRESSED_BYTES
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a router file's meta document and arrays (never unpickles).

    Declared sizes are checked before decompressing: more than ``max_bytes`` in total is a
    `RouterFileError`, and so is metadata nested deeper than `MAX_META_DEPTH`.
    """
    p = Path(path)
    if not p.is_file():
        raise RouterFileError(f"router file {str(p)!r} does not exist")
    if not zipfile.is_zipfile(p):
        raise RouterFileError(f"{p}: not a router file (not an .npz archive)")
    try:
        check_archive(p, max_bytes)
        with np.load(p, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except RouterFileError as exc:
        raise RouterFileError(f"{p}: {exc}") from None
    except ValueError as exc:
        if "pickle" in str(exc):  # numpy's refusal, whose advice (allow_pickle) we never take
            raise RouterFileError(f"{p}: not a router file (it holds pickled objects, which "
                                  "llmswitch never loads)") from None
        raise RouterFileError(f"{p}: not a router file ({exc})") from None
    except (OSError, zipfile.BadZipFile, EOFError) as exc:
        raise RouterFileError(f"{p}: not a router file ({exc})") from None
    raw = arrays.pop("__meta__", None)
    if raw is None:
        raise RouterFileError(f"{p}: not a router file (no __meta__ entry)")
    meta = _parse_meta(p, bytes(raw.astype(np.uint8)))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RouterFileError(f"{p}: not an {FORMAT} file")
    if meta.get("version") != VERSION:
        raise RouterFileError(
            f"{p}: router file version {meta.get('version')} is not supported "
            f"(this llmswitch reads version {VERSION}); retrain it with `llmswitch router train`"
        )
    return meta, arrays


def check_archive(path: Path, max_bytes: int = MAX_UNCOMPRESSED_BYTES) -> None:
    """Refuse an archive whose declared contents are too large or disagree with themselves.

    Reads only the zip directory and the first bytes of each member (the ``.npy`` header): a
    member's shape times its item size must be exactly the bytes it declares, members must be
    plain-data ``.npy`` arrays, and their declared sizes must sum to at most ``max_bytes``.
    """
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise RouterFileError(f"not a router file ({len(members)} entries; at most "
                                  f"{MAX_MEMBERS} are read)")
        total = sum(info.file_size for info in members)
        if total > max_bytes:
            raise RouterFileError(
                f"refused: it would unpack to {total:,} bytes, over the {max_bytes:,}-byte cap "
                "for router files (is it really a router file?)")
        for info in members:
            _check_member(archive, info)


def _check_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    name = info.filename
    if not name.endswith(".npy") or info.is_dir():
        raise RouterFileError(f"not a router file (unexpected entry {name!r})")
    try:
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise ValueError(f"unsupported .npy version {version}")
            header = member.tell()
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise RouterFileError(f"not a router file (entry {name!r}: {exc})") from None
    if dtype.hasobject:
        raise RouterFileError(f"not a router file (entry {name!r} holds pickled objects, which "
                              "llmswitch never loads)")
    declared = math.prod(int(n) for n in shape) * dtype.itemsize
    if header + declared != info.file_size:
        raise RouterFileError(
            f"corrupt entry {name!r}: its header declares {declared:,} bytes of data, the "
            f"archive {max(info.file_size - header, 0):,}")


_JSON_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')  # a string, or a bracket


def _parse_meta(path: Path, raw: bytes) -> Any:
    depth = deepest = 0
    for token in _JSON_TOKEN.finditer(raw):
        char = token.group()[:1]
        if char in b"[{":
            depth += 1
            deepest = max(deepest, depth)
            if deepest > MAX_META_DEPTH:
                raise RouterFileError(f"{path}: unreadable metadata (nested deeper than "
                                      f"{MAX_META_DEPTH} levels)")
        elif char in b"]}":
            depth -= 1
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise RouterFileError(f"{path}: unreadable metadata ({exc})") from None


def save_router(router: Any, path: str | Path) -> None:
    """Save a `LearnedRouter` or `CascadeRouter` to ``path``."""
    to_arrays = getattr(router, "to_file_parts", None)
    meta, arrays = to_arrays() if to_arrays is not None else router_to_arrays(router)
    write_router_file(path, meta, arrays)


def load_router(path: str | Path, max_bytes: int = MAX_UNCOMPRESSED_BYTES) -> Any:
    """Load a router file written by `save_router` (a `LearnedRouter` or `CascadeRouter`).

    The loaded router must predict, for a probe prompt, one finite quality and cost per model
    of its ``models`` list; a file whose parts disagree fails here, not on the first request.
    A file declaring more than ``max_bytes`` uncompressed is refused before it is unpacked.
    """
    meta, arrays = read_router_file(path, max_bytes)
    models = meta.get("models")
    if not (isinstance(models, list) and models and all(isinstance(m, str) and m for m in models)
            and len(set(models)) == len(models)):
        raise RouterFileError(f"{path}: router file is inconsistent: 'models' must be a list of "
                              "distinct names")
    try:
        if meta.get("kind") == "cascade":
            router: Any = CascadeRouter.from_file_parts(meta, arrays)
        else:
            router = router_from_arrays(meta, arrays)
        _check_predicts(router, len(models))
    except RouterFileError as exc:
        raise RouterFileError(f"{path}: {exc}") from None
    return router


def _check_predicts(router: Any, n_models: int) -> None:
    """Raise `RouterFileError` unless the router predicts one finite value per model."""
    base = getattr(router, "base", router)
    lam = getattr(router, "lam", 0.0)
    if not (isinstance(lam, float) and np.isfinite(lam) and lam >= 0):
        raise RouterFileError(f"router file is inconsistent: stored λ {lam!r} is not >= 0")
    if not base.quality_models:
        raise RouterFileError("router file is inconsistent: no quality model")
    try:
        pred = base.predict(["probe prompt: is this router file whole?"])
    except (ValueError, IndexError, KeyError, TypeError) as exc:
        raise RouterFileError(f"router file is inconsistent: {exc}") from None
    for name, values in (("quality", pred.quality), ("cost", pred.cost)):
        if values.shape != (1, n_models) or not np.isfinite(values).all():
            raise RouterFileError(
                f"router file is inconsistent: predicted {name} has shape {values.shape} for "
                f"{n_models} models" if values.shape != (1, n_models) else
                f"router file is inconsistent: predicted {name} is not finite"
            )
    if len(base.models) != n_models:
        raise RouterFileError("router file is inconsistent: base router models differ")
