"""Token counting: exact OpenAI counts from quicktok's files through tiktoken, offline; the
approximation's speed and rough accuracy; request and cost estimates."""

from __future__ import annotations

import base64
import hashlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmswitch import tokens
from llmswitch.catalog import Catalog
from llmswitch.messages import Message, ToolSpec
from llmswitch.request import Request, Settings

# sha256 of OpenAI's published .tiktoken files, as pinned in tiktoken_ext/openai_public.py.
OPENAI_FILE_SHA256 = {
    "cl100k": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
CATALOG = Catalog.shipped()


@pytest.fixture
def fresh_encodings() -> Iterator[None]:
    tokens.tiktoken_encoding.cache_clear()
    yield
    tokens.tiktoken_encoding.cache_clear()


@pytest.mark.extra("tokens")
@pytest.mark.parametrize("stem", ["cl100k", "o200k"])
def test_quicktok_vocab_is_byte_identical_to_openais_file(stem: str) -> None:
    folder = tokens.quicktok_data_dir()
    assert folder is not None
    ranks = tokens.read_ranks(folder / f"{stem}.vocab")
    text = b"".join(base64.b64encode(tok) + b" " + str(rank).encode() + b"\n"
                    for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]))
    assert hashlib.sha256(text).hexdigest() == OPENAI_FILE_SHA256[stem]


@pytest.mark.extra("tokens")
@pytest.mark.parametrize(("model", "text", "ids"), [
    ("gpt-4", "hello world", [15339, 1917]),
    ("gpt-3.5-turbo", "tiktoken is great!", [83, 1609, 5963, 374, 2294, 0]),
    ("gpt-4o", "hello world", [24912, 2375]),
    ("openai/gpt-5-pro", "Hello, world! How are you today?",
     [13225, 11, 2375, 0, 3253, 553, 481, 4044, 30]),
])
def test_exact_ids_and_counts(model: str, text: str, ids: list[int]) -> None:
    name = tokens.encoding_name(model)
    assert name is not None
    encoding = tokens.tiktoken_encoding(name)
    assert encoding.encode_ordinary(text) == ids
    assert tokens.count_tokens(text, model) == len(ids)


@pytest.mark.extra("tokens")
def test_special_token_text_is_counted_as_ordinary_text() -> None:
    assert tokens.count_tokens("<|endoftext|>", "gpt-4o") == 7


def test_no_download_and_no_cache_dir_even_with_the_network_gone(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fresh_encodings: None
) -> None:
    import tiktoken.load

    def refuse(*args: object, **kw: object) -> bytes:
        raise AssertionError("tiktoken tried to fetch or read an encoding file")

    monkeypatch.setattr(tiktoken.load, "read_file", refuse)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", refuse)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    # (the session also refuses every non-loopback socket connection: tests/conftest.py)
    assert tokens.count_tokens("hello world", "gpt-4") == 2
    assert tokens.count_tokens("hello world", "gpt-4o") == 2
    assert list(tmp_path.iterdir()) == []


def test_without_the_extra_it_falls_back_to_the_approximation(
    monkeypatch: pytest.MonkeyPatch, fresh_encodings: None
) -> None:
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    assert tokens.token_method("openai/gpt-4o") == "approx:o200k_base"
    assert not tokens.is_exact("gpt-4o")
    assert 8 <= tokens.count_tokens("Hello, world! How are you today?", "gpt-4o") <= 10


@pytest.mark.parametrize(("model", "expected"), [
    ("openai/gpt-4o-mini", "o200k_base"), ("gpt-4.1", "o200k_base"), ("o3-pro", "o200k_base"),
    ("openrouter/openai/gpt-5", "o200k_base"), ("ollama/gpt-oss:20b", "o200k_base"),
    ("gpt-4-turbo", "cl100k_base"), ("openai/gpt-3.5-turbo", "cl100k_base"),
    ("anthropic/claude-sonnet-4-5", None), ("gemini/gemini-2.5-pro", None), (None, None),
])
def test_encoding_by_model(model: str | None, expected: str | None) -> None:
    assert tokens.encoding_name(model) == expected


def test_cards_of_the_gpt_family_use_o200k_whatever_the_deployment_name() -> None:
    card = CATALOG.extended({"azure/my-deployment": {"family": "gpt"}}).get("azure/my-deployment")
    assert tokens.encoding_name(card) == "o200k_base"


TEXTS = {
    "prose": "The committee reviewed the proposal in detail and agreed to fund a pilot "
             "programme in three regions, with a report due at the end of next year. " * 4,
    "code": "def area(radius: float) -> float:\n    \"\"\"Area of a circle.\"\"\"\n"
            "    return 3.14159 * radius ** 2\n\n\nprint(area(2.0))\n" * 4,
    "german": "Die Bundesregierung hat am Mittwoch ein umfangreiches Maßnahmenpaket "
              "beschlossen, das die Energiekosten senken soll. " * 4,
    "chinese": "政府周三宣布了一项新的经济刺激计划，旨在支持中小企业并促进就业。" * 4,
}


@pytest.mark.parametrize("kind", sorted(TEXTS))
def test_approximation_is_within_a_third_of_the_real_count(kind: str) -> None:
    text = TEXTS[kind]
    exact = tokens.count_tokens(text, "gpt-4o")
    approx = tokens.approximate_tokens(text, tokens.APPROX_WEIGHTS["o200k_base"])
    assert abs(approx - exact) / exact < 0.35, (approx, exact)
    assert tokens.count_tokens(text, "anthropic/claude-sonnet-4-5") > 0


def test_approximation_is_deterministic_and_scales_with_text() -> None:
    # Its speed (well under 1 ms for 2k characters) is a benchmark's business, not a test's.
    text = (TEXTS["prose"] + TEXTS["german"] + TEXTS["chinese"])[:2000]
    card = CATALOG.get("anthropic/claude-sonnet-4-5")
    counts = {tokens.count_tokens(text, card) for _ in range(3)}
    assert len(counts) == 1
    assert tokens.count_tokens(text + text, card) > counts.pop()


def test_family_factor_applies_to_claude() -> None:
    text = TEXTS["prose"]
    claude = tokens.count_tokens(text, CATALOG.get("anthropic/claude-sonnet-4-5"))
    llama = tokens.count_tokens(text, CATALOG.get("ollama/llama3.2"))
    assert claude == round(llama * tokens.FAMILY_FACTORS["claude"])


def test_request_estimate_matches_openais_count_on_a_recorded_call() -> None:
    # azure/chat_plain_2.json: one user message, recorded prompt_tokens = 9
    from tests.support.fixtures import load

    fixture = load("azure/chat_plain_2")
    text = fixture["request"]["body_json"]["messages"][0]["content"]
    estimate = tokens.estimate_request_tokens(Request((Message.user(text),)), "gpt-4o")
    assert abs(estimate - 9) <= 1


def test_request_estimate_counts_tools_images_and_schema() -> None:
    from llmswitch.messages import ImagePart, TextPart

    base = Request((Message.user("hi"),))
    with_tool = base.with_settings(tools=(ToolSpec("lookup", "Find a thing",
                                                   {"type": "object"}),))
    with_image = Request((Message.user([TextPart("hi"), ImagePart(url="http://x/y.png")]),))
    with_schema = base.with_settings(response_format={"type": "object", "properties": {
        "answer": {"type": "string"}}})
    n = tokens.estimate_request_tokens(base, "gpt-4o")
    assert tokens.estimate_request_tokens(with_tool, "gpt-4o") > n + 10
    assert tokens.estimate_request_tokens(with_image, "gpt-4o") == n + 765
    assert tokens.estimate_request_tokens(with_schema, "gpt-4o") > n + 5
    assert tokens.count_tokens(base, "gpt-4o") == n


def test_estimate_cost() -> None:
    card = CATALOG.get("openai/gpt-4o")
    assert card is not None and card.input_per_mtok is not None
    assert card.output_per_mtok is not None
    request = Request((Message.user("hello world"),), Settings(max_tokens=1000))
    n_in = tokens.estimate_request_tokens(request, card)
    expected = (n_in * card.input_per_mtok + 1000 * card.output_per_mtok) / 1e6
    assert tokens.estimate_cost(request, card) == pytest.approx(expected)
    assert tokens.estimate_cost(request, card, output_tokens=0) == pytest.approx(
        n_in * card.input_per_mtok / 1e6)
    assert tokens.estimate_cost(request, None) is None
    unpriced = CATALOG.extended({"vllm/m": {}}).get("vllm/m")
    assert tokens.estimate_cost(request, unpriced) is None


def test_typical_output_when_max_tokens_is_unset() -> None:
    request = Request((Message.user("hi"),))
    assert tokens.expected_output_tokens(request, CATALOG.get("openai/gpt-4o")) == 400
    assert tokens.expected_output_tokens(request, CATALOG.get("openai/o3")) == 2000
