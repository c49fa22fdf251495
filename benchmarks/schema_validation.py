"""Cost of checking a structured answer: jsonschema (Draft 2020-12) versus fastjsonschema.

A typical structured answer (an invoice-like object: strings, numbers with bounds, an enum, an
array of 5 line items, `$defs`/`$ref`) is validated many times; each library's one-off costs
(import, meta-schema check, compile) are timed separately. fastjsonschema is optional here:
without it installed only jsonschema is measured (it implements drafts 4-7 and 2019-09, not
2020-12: `prefixItems` is ignored). Then the whole `Switch.complete` call on a fake model,
without a schema (the guard's pass-through), with the dict schema, and with a pydantic model.

    python benchmarks/schema_validation.py   # prints a table; writes results/schema_validation.json
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SCHEMA: dict[str, Any] = {
    "type": "object",
    "$defs": {"item": {"type": "object", "properties": {
        "sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$"},
        "qty": {"type": "integer", "exclusiveMinimum": 0},
        "price": {"type": "number", "minimum": 0, "multipleOf": 0.01}},
        "required": ["sku", "qty", "price"], "additionalProperties": False}},
    "properties": {
        "customer": {"type": "string", "minLength": 1, "maxLength": 80},
        "currency": {"enum": ["EUR", "USD", "GBP"]},
        "items": {"type": "array", "items": {"$ref": "#/$defs/item"}, "minItems": 1,
                  "uniqueItems": True},
        "note": {"type": ["string", "null"]},
    },
    "required": ["customer", "currency", "items"],
    "additionalProperties": False,
}
ANSWER = {"customer": "Ada Lovelace", "currency": "EUR", "note": None,
          "items": [{"sku": f"ABC-{i}", "qty": i + 1, "price": 9.99 + i} for i in range(5)]}
N = 5000


def per_call_us(fn: Any, n: int = N) -> float:
    """Median of 5 runs of `n` calls, in microseconds per call (CPU time)."""
    runs = []
    for _ in range(5):
        start = time.process_time()
        for _ in range(n):
            fn()
        runs.append((time.process_time() - start) / n * 1e6)
    return statistics.median(runs)


def import_ms(module: str) -> float:
    """CPU time of importing `module` in a fresh interpreter, above a bare interpreter."""
    def cpu(code: str) -> float:
        out = []
        for _ in range(5):
            proc = subprocess.run([sys.executable, "-c", "import os,time;" + code +
                                   ";t=os.times();print(t.user+t.system)"],
                                  capture_output=True, text=True, check=True)
            out.append(float(proc.stdout))
        return statistics.median(out)
    return (cpu(f"import {module}") - cpu("pass")) * 1000


def measure_jsonschema() -> dict[str, float]:
    """Import, meta-schema check, validator build and per-answer validation."""
    from jsonschema import Draft202012Validator

    check = per_call_us(lambda: Draft202012Validator.check_schema(SCHEMA), 500)
    build = per_call_us(lambda: Draft202012Validator(SCHEMA), 500)
    validator = Draft202012Validator(SCHEMA)
    assert validator.is_valid(ANSWER)
    return {"import_ms": import_ms("jsonschema"), "check_schema_us": check,
            "build_us": build, "is_valid_us": per_call_us(lambda: validator.is_valid(ANSWER)),
            "iter_errors_us": per_call_us(lambda: list(validator.iter_errors(ANSWER)))}


def measure_fastjsonschema() -> dict[str, float] | None:
    """Import, compile and per-answer validation (None when not installed)."""
    try:
        import fastjsonschema
    except ImportError:
        return None
    compiled = fastjsonschema.compile(SCHEMA)
    compiled(ANSWER)
    return {"import_ms": import_ms("fastjsonschema"),
            "compile_us": per_call_us(lambda: fastjsonschema.compile(SCHEMA), 200),
            "validate_us": per_call_us(lambda: compiled(ANSWER))}


def measure_switch() -> dict[str, float]:
    """CPU µs per `Switch.complete` on a fake model: direct model call, no schema, schemas."""
    import asyncio

    from pydantic import BaseModel

    from llmswitch import Switch
    from llmswitch.testing import FakeModel

    class Item(BaseModel):
        sku: str
        qty: int
        price: float

    class Invoice(BaseModel):
        customer: str
        currency: str
        items: list[Item]
        note: str | None = None

    fake = FakeModel("m", [json.dumps(ANSWER)])
    switch = Switch({}, models={"m": fake}, observers=[])
    async def per_call(n: int = 2000, **kw: Any) -> float:
        await switch.complete("m", "q", **kw)
        runs = []
        for _ in range(5):
            fake.calls.clear()
            start = time.process_time()
            for _ in range(n):
                await switch.complete("m", "q", **kw)
            runs.append((time.process_time() - start) / n * 1e6)
        return statistics.median(runs)

    async def direct(n: int = 2000) -> float:
        built = switch.request("q")
        runs = []
        for _ in range(5):
            fake.calls.clear()
            start = time.process_time()
            for _ in range(n):
                await fake.complete(built)
            runs.append((time.process_time() - start) / n * 1e6)
        return statistics.median(runs)

    async def all_of_them() -> dict[str, float]:
        return {"fake_model_direct_us": await direct(),
                "switch_no_schema_us": await per_call(),
                "switch_dict_schema_us": await per_call(response_format=SCHEMA),
                "switch_pydantic_us": await per_call(response_format=Invoice)}

    return asyncio.run(all_of_them())


def main() -> None:
    """Measure, print, and save the figures."""
    results: dict[str, Any] = {"python": platform.python_version(), "n": N,
                               "jsonschema": measure_jsonschema(),
                               "fastjsonschema": measure_fastjsonschema(),
                               "switch": measure_switch()}
    for name in ("jsonschema", "fastjsonschema", "switch"):
        figures = results[name]
        if figures is None:
            print(f"{name:15} not installed")
            continue
        print(f"{name:15} " + "  ".join(f"{k}={v:,.1f}" for k, v in figures.items()))
    out = Path(__file__).parent / "results" / "schema_validation.json"
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
