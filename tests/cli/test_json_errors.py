"""With `--json`, every failure prints the JSON error object on stdout (never `internal`), and
`--schema` answers are validated over a real socket (issues 14 and 15).

The table runs `llmswitch.cli.main.main` in-process (what the installed `llmswitch` script
runs, usage errors and all); Ctrl-C and the schema checks run the real process.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import pytest

from llmswitch.cli.main import main
from tests.support.replay import Scripted, serving

ERROR_KEYS = {"type", "message", "provider", "model", "status"}
HOT_ALIAS = "models:\n  hot:\n    model: local/smollm2-135m\n    settings: {temperature: %s}\n"


def configs(tmp_path: Path) -> dict[str, Path]:
    files = {
        "hot9": HOT_ALIAS % "9",
        "hotword": HOT_ALIAS % "hot",
        "settings_str": "models:\n  hot:\n    model: local/smollm2-135m\n    settings: hot\n",
        "alias_schema": "models:\n  hot:\n    model: local/smollm2-135m\n    settings:\n"
                        "      response_format: {schema: {type: object, required: 5}}\n",
        "yaml": "routes:\n  a: [\n",
        "route_option": "routes:\n  r:\n    strategy: fallback\n    targets: [local/smollm2-135m]"
                        "\n    retrys: 2\n",
        "route_schema": "routes:\n  r:\n    strategy: structured\n    targets: [local/smollm2-135m]"
                        "\n    schema: {type: object, properties: 5}\n",
    }
    out = {}
    for name, text in files.items():
        out[name] = tmp_path / f"{name}.yaml"
        out[name].write_text(text)
    out["unreadable"] = unreadable(tmp_path)
    return out


def unreadable(tmp_path: Path) -> Path:
    """A file this process cannot read (root reads chmod-000 files: then a sysfs file)."""
    path = tmp_path / "unreadable.yaml"
    path.write_text("{}")
    path.chmod(0)
    if not os.access(path, os.R_OK):
        return path
    for candidate in (Path("/sys/bus/cpu/uevent"), Path("/sys/bus/pci/rescan")):
        try:
            candidate.read_bytes()
        except PermissionError:
            return candidate
        except OSError:
            continue
    return path


# (arguments, stdin, expected type, words the message must hold); {name} is a config file.
CASES: list[tuple[tuple[str, ...], str | None, str, tuple[str, ...]]] = [
    (("--schema", '{"type":"object","properties":5}'), None, "bad_request",
     ("--schema", "properties: 5 is not of type 'object'")),
    (("--schema", '{"type":"object","required":5}'), None, "bad_request", ("required",)),
    (("--schema", '{"$ref":"#/nope"}'), None, "bad_request", ("$ref", "does not resolve")),
    (("--schema", '{"type":"string","minLength":"x"}'), None, "bad_request", ("minLength",)),
    (("--schema", "[1,2]"), None, "bad_request", ("not a schema object",)),
    (("--schema", "5"), None, "bad_request", ("not a schema object",)),
    (("--schema", '{"type":"object","propertys":{}}'), None, "bad_request", ("propertys",)),
    (("--schema", "{bad"), None, "bad_request", ("not valid JSON",)),
    (("--schema", "no-such-file.json"), None, "bad_request", ("no such file",)),
    (("--schema", "{" + "x" * 5000), None, "bad_request", ("not valid JSON",)),
    (("--schema-retries", "-1"), None, "bad_request", ("--schema-retries",)),
    (("--config", "{hot9}"), None, "config", ("models.hot.settings", "temperature", "9")),
    (("--config", "{hotword}"), None, "config", ("models.hot.settings", "'hot'")),
    (("--config", "{settings_str}"), None, "config", ("models.hot.settings",)),
    (("--config", "{alias_schema}"), None, "config", ("models.hot.settings", "required")),
    (("--config", "{yaml}"), None, "config", ("not valid YAML",)),
    (("--config", "{route_option}"), None, "config", ("routes.r", "retrys")),
    (("--config", "{route_schema}"), None, "config", ("routes.r", "properties")),
    (("--config", "{unreadable}"), None, "config", ("cannot read",)),
    (("--config", "/nonexistent/llmswitch.yaml"), None, "config", ("does not exist",)),
    (("--meta", "novalue"), None, "bad_request", ("--meta",)),
    (("--temperature", "5"), None, "bad_request", ("--temperature",)),
    (("--max-tokens", "0"), None, "bad_request", ("--max-tokens",)),
    (("--nope",), None, "bad_request", ("--nope",)),
]


def run_main(args: list[str], stdin: str | None, capsys: pytest.CaptureFixture[str],
             monkeypatch: pytest.MonkeyPatch) -> tuple[int, str, str]:
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # main() replaces it
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO((stdin or "").encode())))
    with pytest.raises(SystemExit) as info:
        main(args)
    out, err = capsys.readouterr()
    code = info.value.code
    return code if isinstance(code, int) else 1, out, err


def the_error(code: int, out: str) -> dict[str, Any]:
    assert code == 1, out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    error: dict[str, Any] = json.loads(lines[0])["error"]
    assert set(error) >= ERROR_KEYS
    return error


@pytest.mark.parametrize(("extra", "stdin", "kind", "needles"), CASES,
                         ids=[f"{i}-{c[0][0]}" for i, c in enumerate(CASES)])
def test_chat_failures_print_one_json_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    extra: tuple[str, ...], stdin: str | None, kind: str, needles: tuple[str, ...],
) -> None:
    files = configs(tmp_path)
    if "{unreadable}" in extra and files["unreadable"].parent == tmp_path:
        try:
            files["unreadable"].read_bytes()
            pytest.skip("no unreadable file available to this user")
        except PermissionError:
            pass
    args = [a.format(**files) if a.startswith("{") and a.endswith("}") and a[1:-1] in files
            else a for a in extra]
    model = "hot" if "--config" in extra else "local/smollm2-135m"
    code, out, _ = run_main(["chat", model, "hi", "--json", *args], stdin, capsys, monkeypatch)
    error = the_error(code, out)
    assert error["type"] == kind, error
    for needle in needles:
        assert needle in error["message"], error["message"]


@pytest.mark.parametrize(("args", "stdin", "kind", "needle"), [
    (["chat", "nosuchmodel", "hi"], None, "model_not_found", "nosuchmodel"),
    (["chat", "local/smollm2-135m"], None, "bad_request", "PROMPT"),
    (["chat", "local/smollm2-135m", "-"], "", "bad_request", "nothing on standard input"),
    (["chat", "local/smollm2-135m", "   "], None, "bad_request", "empty"),
    (["chat"], None, "bad_request", "MODEL"),
    (["models", "--provider", "nope"], None, "config", "unknown provider"),
    (["models", "--bogus"], None, "bad_request", "--bogus"),
    (["traces", "%"], None, "config", "not a request id"),
    (["chta"], None, "bad_request", "chta"),
])
def test_other_failures_print_one_json_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    args: list[str], stdin: str | None, kind: str, needle: str,
) -> None:
    code, out, _ = run_main([*args, "--json"], stdin, capsys, monkeypatch)
    error = the_error(code, out)
    assert error["type"] == kind and needle in error["message"], error


def process(*args: str, env: dict[str, str] | None = None, **kw: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "llmswitch.cli.main", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
        env={**os.environ, "OPENAI_API_KEY": "test", **(env or {})}, **kw)


def test_ctrl_c_with_json_prints_a_cancelled_error_and_exits_130() -> None:
    with serving(Scripted(200, {"content-type": "application/json"}, b"{}", hang=15)) as server:
        proc = process("chat", "openai/gpt-4o-mini", "hi", "--json",
                       env={"LLMSWITCH_OPENAI_BASE_URL": server.url + "/v1"})
        deadline = time.monotonic() + 30
        while not server.received and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert server.received, "the request never reached the server"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    error = json.loads(out)["error"]
    assert error["type"] == "cancelled" and set(error) >= ERROR_KEYS
    assert "Traceback" not in err


def chat_body(content: str) -> bytes:
    return json.dumps({
        "id": "c1", "object": "chat.completion", "created": 1, "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }).encode()


def sse_body(content: str) -> bytes:
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": content}}]},
              {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
              {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3,
                                        "total_tokens": 8}}]
    head = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini"}
    frames = ["data: " + json.dumps({**head, **c}) + "\n\n" for c in chunks]
    return ("".join(frames) + "data: [DONE]\n\n").encode()


SCHEMA = '{"type":"object","properties":{"n":{"type":"integer","exclusiveMinimum":0}},' \
         '"required":["n"]}'


@pytest.mark.parametrize("stream", [False, True])
def test_chat_schema_answers_are_validated(stream: bool) -> None:
    def scripted(content: str) -> Scripted:
        if stream:
            return Scripted(200, {"content-type": "text/event-stream"}, sse_body(content))
        return Scripted(200, {"content-type": "application/json"}, chat_body(content))

    flags = ["--stream"] if stream else []
    env = {"LLMSWITCH_LEDGER": "off"}
    with serving(scripted('{"n": 0}'), scripted('{"n": 3}')) as server:
        env["LLMSWITCH_OPENAI_BASE_URL"] = server.url + "/v1"
        proc = process("chat", "openai/gpt-4o-mini", "count", "--json", "--schema", SCHEMA,
                       *flags, env=env)
        out, err = proc.communicate(timeout=60)
        sent = [json.loads(r.body) for r in server.received]
    assert proc.returncode == 0, out + err
    data = json.loads(out)
    assert json.loads(data["text"]) == {"n": 3} and len(sent) == 2
    assert sent[0]["response_format"]["type"] == "json_schema"
    assert "exclusiveMinimum" in sent[1]["messages"][-1]["content"] or \
        "less than or equal" in sent[1]["messages"][-1]["content"]
    with serving(scripted('"just a string"')) as server:
        env["LLMSWITCH_OPENAI_BASE_URL"] = server.url + "/v1"
        proc = process("chat", "openai/gpt-4o-mini", "count", "--json", "--schema", SCHEMA,
                       "--schema-retries", "1", *flags, env=env)
        out, err = proc.communicate(timeout=60)
        calls = len(server.received)
    assert proc.returncode == 1, out + err
    error = json.loads(out)["error"]
    assert error["type"] == "schema_failed" and "after 2 attempts" in error["message"]
    assert calls == 2


@pytest.mark.parametrize(("stdin", "needle"), [
    (None, "cannot read standard input"),  # closed: `llmswitch chat m - <&-`
    (bytes(range(256)), "not UTF-8 text"),
    (b"text\x00with a NUL", "NUL bytes"),
])
def test_a_prompt_from_a_closed_or_binary_stdin_is_a_bad_request(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    stdin: bytes | None, needle: str,
) -> None:
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)
    monkeypatch.setattr(sys, "stdin", None if stdin is None else
                        io.TextIOWrapper(io.BytesIO(stdin)))
    with pytest.raises(SystemExit) as info:
        main(["chat", "local/smollm2-135m", "-", "--json"])
    error = the_error(info.value.code if isinstance(info.value.code, int) else 1,
                      capsys.readouterr().out)
    assert error["type"] == "bad_request" and needle in error["message"], error


@pytest.mark.parametrize("args", [
    ["chat", "local/smollm2-135m", "hi \udcff\udcfe"],  # argv bytes that are not UTF-8
    ["chat", "local/smollm2-135m", "hi", "--system", "be \udcff"],
    ["chat", "local/smollm2-135m", "hi", "--schema", '{"items":' * 3000 + "{}" + "}" * 3000],
    ["chat", "local/smollm2-135m", "hi", "--schema", '{"items":' * 100 + "{}" + "}" * 100],
])
def test_undecodable_arguments_and_deep_schemas_are_bad_requests(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str],
) -> None:
    code, out, _ = run_main([*args, "--json"], None, capsys, monkeypatch)
    error = the_error(code, out)
    assert error["type"] == "bad_request", error


def test_a_binary_plan_input_file_is_a_plan_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("inputs:\n  x: {}\nstreams:\n  a:\n    model: local/smollm2-135m\n"
                    "    prompt: '{x}'\n    output: text\n")
    binary = tmp_path / "input.bin"
    binary.write_bytes(bytes(range(128, 256)))
    code, out, _ = run_main(["plan", "run", str(plan), "-i", f"x=@{binary}", "--dry-run",
                             "--json"], None, capsys, monkeypatch)
    assert code == 2, out  # a bad plan or bad arguments
    error = json.loads(out)["error"]
    assert error["type"] == "plan" and "not UTF-8 text" in error["message"], error


@pytest.mark.parametrize("source", [b"def f(:\n", b"\x00\x01binary", b"raise ValueError('boom')\n"])
def test_a_toolbox_module_that_fails_to_import_is_a_plan_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    source: bytes,
) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text("streams:\n  a:\n    model: local/smollm2-135m\n    prompt: hi\n"
                    "    output: text\n")
    tools = tmp_path / "mytools.py"
    tools.write_bytes(source)
    code, out, _ = run_main(["plan", "run", str(plan), "--tools", f"{tools}:tools",
                             "--dry-run", "--json"], None, capsys, monkeypatch)
    error = json.loads(out)["error"]
    assert code == 2 and error["type"] == "plan" and "importing" in error["message"], error
