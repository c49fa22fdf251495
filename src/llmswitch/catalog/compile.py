"""Compile the shipped catalog: `models.yaml` (the source people edit) -> `models.json`.

The package reads the JSON at run time: `json.loads` takes well under a millisecond where even
libyaml's loader takes ~18 ms, and the catalog is read by every `Switch`. A test checks that the
JSON is exactly what this produces from the YAML, so edit the YAML and run

    python -m llmswitch.catalog.compile
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

DATA = Path(__file__).with_name("data")
SOURCE = DATA / "models.yaml"
COMPILED = DATA / "models.json"


def compile_catalog(yaml_text: str) -> str:
    """The JSON text for a catalog YAML document (same data; dates become ISO strings)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    data: Any = yaml.load(yaml_text, Loader=loader)  # a safe loader (C or pure Python)
    return json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n"


def main() -> None:
    """Rewrite `models.json` from `models.yaml`."""
    COMPILED.write_text(compile_catalog(SOURCE.read_text("utf-8")), "utf-8")
    print(f"wrote {COMPILED}")


if __name__ == "__main__":
    main()
