"""What a real replay harness may do differently from the recording's ideal delivery: small
delayed chunks, chunked transfer encoding (no content-length), CRLF line ends, and a missing or
generic content type. The normalised answer must not change."""

from __future__ import annotations

import pytest

from tests.heldout_style.expect import expected
from tests.heldout_style.harness import Delivery, base_env, cli_args, load, run_inprocess, serve
from tests.heldout_style.test_cli_replay import check
from tests.support.fixtures import body_bytes

# Unpriced models (claude-3-opus, gpt-5-nano …) warn once per run; the cost is not checked here.
pytestmark = pytest.mark.filterwarnings(
    "ignore::llmswitch.providers.http_model.UnknownPriceWarning")


# A few per protocol: tool calls, comments, reasoning, Azure's empty first chunk, JSON arrays.
STREAMS = [
    "openai/chat_tools_parallel_stream", "openrouter/chat_stream",
    "azure/chat_stream_include_usage", "deepseek/chat_reasoner_stream",
    "openai/responses_tools_stream", "deepseek/responses_stream",
    "anthropic/messages_tools_stream_haiku45", "anthropic/messages_thinking_stream",
    "gemini/tools_stream", "gemini/stream_json_array",
    "bedrock/converse_stream_tool_use", "bedrock/converse_stream_reasoning",
    "ollama/api_chat_think", "ollama/doc_api_chat_tools_stream",
]
WHOLE = [
    "openai/chat_tools_parallel", "openrouter/chat_plain", "openai/responses_tools_parallel",
    "anthropic/messages_tools_parallel", "gemini/tools_parallel", "bedrock/converse_tools_parallel",
    "ollama/api_generate_nonstream",
]
ERRORS = ["openai/chat_err_404_model_not_found", "gemini/err_400_api_key_invalid_stream",
          "anthropic/messages_err_401_stream_request", "openrouter/chat_stream_error_midstream",
          "ollama/doc_api_generate_error_midstream"]
TEXT_STREAMS = [n for n in STREAMS if not n.startswith("bedrock/")]


def run(name: str, how: Delivery, stream: bool | None = None) -> None:
    """Replay `name` delivered as `how`, and check the answer."""
    fixture = load(name)
    with serve(fixture, how) as server:
        out = run_inprocess(cli_args(fixture, fixture["stream"] if stream is None else stream),
                            base_env(fixture, server, with_key=True))
    check(name, out, expected(fixture))


def _paced(name: str) -> Delivery:
    """At most ~150 chunks, 1 ms apart, so each arrives as its own read."""
    size = max(7, len(body_bytes(load(name))) // 150)
    return Delivery(chunk_size=size, delay=0.001)


@pytest.mark.parametrize("name", STREAMS + WHOLE + ERRORS)
def test_small_delayed_chunks(name: str) -> None:
    run(name, _paced(name))


@pytest.mark.parametrize("name", STREAMS[::3])
def test_tiny_chunks_split_everywhere(name: str) -> None:
    """3-byte pieces: inside UTF-8 characters, CRLF pairs, frame preludes."""
    run(name, Delivery(chunk_size=3))


@pytest.mark.parametrize("name", STREAMS + WHOLE + ERRORS)
def test_chunked_transfer_without_content_length(name: str) -> None:
    run(name, Delivery(chunked=True, chunk_size=61))


@pytest.mark.parametrize("name", STREAMS + WHOLE + ERRORS)
def test_close_delimited_body(name: str) -> None:
    """No content-length and no chunking: the body runs until the server closes."""
    run(name, Delivery(close_delimited=True, chunk_size=113))


@pytest.mark.parametrize("name", TEXT_STREAMS)
def test_crlf_line_ends(name: str) -> None:
    """SSE allows CRLF; NDJSON and Gemini's JSON array tolerate it as whitespace."""
    run(name, Delivery(crlf=True, chunk_size=40, chunked=True))


TEXT_PLAIN = "text/plain"


@pytest.mark.parametrize("content_type", [None, "application/json", "application/octet-stream",
                                          TEXT_PLAIN])
@pytest.mark.parametrize("name", STREAMS)
def test_stream_with_missing_or_generic_content_type(name: str, content_type: str | None) -> None:
    """A harness that does not replay the recorded content type (or sends a generic one)."""
    headers = dict(load(name)["response"]["headers"])
    headers.pop("content-type", None)
    if content_type is not None:
        headers["content-type"] = content_type
    run(name, Delivery(headers=headers, chunk_size=512))


@pytest.mark.parametrize("name", STREAMS)
def test_stream_recording_for_a_non_stream_call(name: str) -> None:
    """The harness never passes --stream: the streamed body answers a plain call."""
    run(name, Delivery(chunked=True, chunk_size=256), stream=False)
