"""Load the recorded provider fixtures copied into tests/fixtures/providers."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent / "fixtures" / "providers"


def load(name: str) -> dict[str, Any]:
    """A fixture by `provider/stem` (e.g. `openai/chat_plain_raw`)."""
    data: dict[str, Any] = json.loads((ROOT / f"{name}.json").read_text(encoding="utf-8"))
    return data


def body_bytes(fixture: dict[str, Any]) -> bytes:
    """The recorded response body as bytes."""
    response = fixture["response"]
    if response.get("body_encoding") == "base64":
        return base64.b64decode(response["body"])
    return str(response["body"]).encode("utf-8")


def names(*apis: str) -> list[str]:
    """`provider/stem` of every fixture whose `api` is one of `apis`."""
    index = json.loads((ROOT / "INDEX.json").read_text(encoding="utf-8"))
    return sorted(e["id"] for e in index if e["api"] in apis)
