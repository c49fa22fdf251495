"""docs/gateway.md and the README's Gateway section cannot drift from the code: the error
table is the code's table, every `gateway:` key is documented, the synopsis' options exist,
and the README's SDK snippet runs against a real `llmswitch serve`."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from llmswitch.gateway.protocols.errors import KINDS
from llmswitch.gateway.settings import GatewaySettings
from tests.gateway.served import serving

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "gateway.md"


def error_table() -> str:
    """The Markdown error table, from KINDS."""
    rows = ["| kind | HTTP status | OpenAI `type` / `code` | Anthropic `type` |",
            "|---|---:|---|---|"]
    rows += [f"| `{kind}` | {s.status} | `{s.openai_type}` / `{s.code or kind}` | "
             f"`{s.anthropic_type}` |" for kind, s in KINDS.items()]
    return "\n".join(rows)


def test_error_table_is_the_codes() -> None:
    text = DOC.read_text()
    shown = text.split("<!-- error-table:start -->\n", 1)[1].split("<!-- error-table:end -->")[0]
    assert shown.strip() == error_table(), (
        "docs/gateway.md's error table differs from gateway/protocols/errors.py KINDS; "
        "replace it with:\n" + error_table())


def test_every_gateway_key_is_documented() -> None:
    text = DOC.read_text()
    missing = [k for k in GatewaySettings.model_fields if f"| `{k}` |" not in text]
    assert not missing, f"docs/gateway.md does not document gateway.{', '.join(missing)}"


def test_serve_synopsis_options_exist() -> None:
    from click.testing import CliRunner

    from llmswitch.cli.serve import serve

    help_text = CliRunner().invoke(serve, ["--help"]).output
    synopsis = next(line for line in DOC.read_text().splitlines()
                    if line.startswith("llmswitch serve ["))
    for option in re.findall(r"--[a-z-]+", synopsis):
        assert option in help_text


def readme_gateway_python() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Gateway", 1)[1].split("\n## ", 1)[0]
    return section.split("```python\n", 1)[1].split("```", 1)[0]


@pytest.mark.local_model
async def test_readme_sdk_snippet_runs_against_llmswitch_serve(tmp_path: Path) -> None:
    code = readme_gateway_python()
    assert "http://127.0.0.1:4000" in code
    async with serving(env={"LLMSWITCH_HOME": str(tmp_path / "home")}, cwd=str(tmp_path)) as gw:
        script = tmp_path / "snippet.py"
        script.write_text(code.replace("http://127.0.0.1:4000", gw.url))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(script), cwd=tmp_path, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 300)
        assert proc.returncode == 0, err.decode()
        assert out.strip()
