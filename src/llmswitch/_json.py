"""JSON on the hot path: orjson where it gives what the standard library gives, else `json`.

orjson parses a provider body or a stream event 3-5x faster than `json` (a streamed answer is
one parse per token; benchmarks/engine.py, docs/architecture.md). Whatever it refuses (NaN and
Infinity, integers beyond 64 bits, a byte order mark, lone surrogates, other encodings than
UTF-8, deep nesting) goes to `json.loads`, so every value and every error is `json`'s.
"""

from __future__ import annotations

import json
from typing import Any

import orjson

_DUMPS_OPTIONS = (orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
                  | orjson.OPT_PASSTHROUGH_DATACLASS)


def loads(data: str | bytes | bytearray) -> Any:
    """`json.loads(data)`, faster."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def dumps_text(value: Any) -> str:
    """Compact-enough UTF-8 JSON text for stored records (traces): `json.dumps(value,
    default=str, ensure_ascii=False)`'s values, except that NaN and Infinity are stored as
    `null` and numbers may be spelled differently (`0.00001` for `1e-05`)."""
    try:
        return orjson.dumps(value, default=str, option=_DUMPS_OPTIONS).decode()
    except orjson.JSONEncodeError:  # e.g. an integer beyond 64 bits
        return json.dumps(value, default=str, ensure_ascii=False)
