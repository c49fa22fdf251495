"""Start-up stays lazy: what `import llmswitch` and `llmswitch --help` load (not how fast: that
is benchmarks/startup.py's job), the help text they print without importing commands, and the
shipped catalog read from JSON compiled from its YAML."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from click.utils import make_default_short_help

from llmswitch.cli.main import COMMANDS, SHORT_HELP, LazyGroup, _exists, cli

HEAVY = ("httpx", "pydantic", "yaml", "rich", "pygments", "numpy", "llmswitch.switch",
         "llmswitch.catalog", "llmswitch.config")


def _loaded_after(code: str) -> list[str]:
    probe = (f"{code}\nimport json, sys\n"
             "print(json.dumps(sorted(m for m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    return list(json.loads(done.stdout.splitlines()[-1]))


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if m in HEAVY or m.startswith(tuple(h + "." for h in HEAVY))]


def test_import_llmswitch_loads_no_dependency() -> None:
    assert _heavy(_loaded_after("import llmswitch")) == []


def test_a_public_name_is_imported_on_first_use() -> None:
    loaded = _loaded_after("import llmswitch\nassert llmswitch.Switch.__name__ == 'Switch'")
    assert "llmswitch.switch" in loaded


def test_help_imports_no_command_and_no_heavy_dependency() -> None:
    code = ("import sys\nfrom llmswitch.cli.main import main\nsys.argv = ['llmswitch', '--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass")
    loaded = _loaded_after(code)
    assert _heavy(loaded) == []
    assert [m for m in loaded if m.startswith("llmswitch.cli.") and m != "llmswitch.cli.main"] == []


def test_httpx_is_imported_without_its_command_line_client() -> None:
    loaded = _loaded_after("import llmswitch.providers.httpx_transport\n"
                           "import llmswitch.local.transport")
    assert "httpx" in loaded
    assert "httpx._main" not in loaded and "pygments" not in loaded
    # nothing stays blocked: an explicit import of httpx's CLI still works afterwards
    loaded = _loaded_after("from llmswitch._httpx import httpx\nimport httpx._main")
    assert "httpx._main" in loaded


@pytest.mark.parametrize("name", [n for n in COMMANDS if _exists(n)])
def test_static_short_help_matches_each_command(name: str) -> None:
    command = LazyGroup._load(name)
    assert command is not None
    assert name in SHORT_HELP, f"add {name!r} to SHORT_HELP in cli/main.py"
    for limit in (30, 45, 70, 10_000):
        assert make_default_short_help(SHORT_HELP[name], limit) == command.get_short_help_str(
            limit)


def test_help_lists_every_existing_command() -> None:
    # make_context applies the group's context settings (`-h`); a bare click.Context would
    # cache a help option without `-h` on the shared `cli` object for later tests
    with cli.make_context("llmswitch", [], resilient_parsing=True) as ctx:
        text = cli.get_help(ctx)
    for name in COMMANDS:
        assert (f"  {name} " in text) == _exists(name)


def test_the_shipped_json_is_the_compiled_yaml() -> None:
    from llmswitch.catalog.compile import COMPILED, SOURCE, compile_catalog

    assert COMPILED.read_text("utf-8") == compile_catalog(SOURCE.read_text("utf-8")), (
        "models.json is stale: run `python -m llmswitch.catalog.compile`")


def test_the_shipped_catalog_is_read_from_json_with_the_yamls_cards() -> None:
    from llmswitch.catalog.catalog import _shipped_cards, parse_catalog
    from llmswitch.catalog.compile import SOURCE

    from_yaml = parse_catalog(yaml.safe_load(SOURCE.read_text("utf-8")), source="yaml")
    assert list(_shipped_cards()) == from_yaml
    assert len(from_yaml) > 40


def test_the_catalog_loads_without_yaml() -> None:
    loaded = _loaded_after("from llmswitch.catalog import Catalog; Catalog.shipped()")
    assert "yaml" not in loaded
