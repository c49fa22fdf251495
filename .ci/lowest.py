"""Print pip constraints pinning each core dependency to the lowest version pyproject.toml allows.

Used by .ci/run's lowest-versions job (pip has no "resolve to lowest" switch): every core
dependency must declare a lower bound (`name>=X`), which becomes `name==X`; the test tools keep
the versions pinned in constraints.txt. Transitive dependencies are left to the resolver.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEST_TOOLS = ("pytest", "pytest-asyncio")
_LOWER = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?\s*>=\s*([^,;\s]+)")


def lowest_pins() -> list[str]:
    """`name==lower` for every core dependency; raises if one has no lower bound."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    pins = []
    for spec in project["dependencies"]:
        match = _LOWER.match(spec)
        if match is None:
            raise SystemExit(f"core dependency {spec!r} has no lower bound (name>=X)")
        pins.append(f"{match.group(1)}=={match.group(3)}")
    return pins


def tool_pins() -> list[str]:
    """The test tools' exact versions from constraints.txt."""
    wanted = {t.lower() for t in TEST_TOOLS}
    lines = (ROOT / "constraints.txt").read_text("utf-8").splitlines()
    return [line for line in lines if line.split("==")[0].strip().lower() in wanted]


if __name__ == "__main__":
    sys.stdout.write("\n".join([*lowest_pins(), *tool_pins()]) + "\n")
