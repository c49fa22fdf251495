"""The shipped static MiniLM embedder: BERT tokenization, shapes, norms, meaning, edge cases."""

import json

import numpy as np
import pytest

from llmswitch.routing.learned import embed as embed_mod
from llmswitch.routing.learned.embed import (
    DEFAULT_PATH,
    MAX_WORD_CHARS,
    MAX_WORDPIECES,
    StaticEmbedder,
    basic_tokenize,
    wordpiece,
)

# Expected tokens were produced by the model's own (Hugging Face) BERT tokenizer.
HF_TOKENS = {
    "unaffable": ["una", "##ffa", "##ble"],
    "Tokenization is unbelievably straightforward!": [
        "token", "##ization", "is", "un", "##bel", "##ie", "##va", "##bly", "straightforward", "!"],
    "Café naïve façade ÅNGSTRÖM": ["cafe", "naive", "facade", "ang", "##strom"],
    "中文字符 and 日本語": ["中", "文", "[UNK]", "[UNK]", "and", "日", "本", "語"],
    "emoji 🙂 here": ["em", "##oj", "##i", "[UNK]", "here"],
    "a\x00b\u200bc\tx\u2028y\u00a0z": ["abc", "x", "y", "z"],
    "Привет, мир!": ["п", "##р", "##и", "##в", "##е", "##т", ",", "м", "##и", "##р", "!"],
    "don't re-run e.g. 3.14": [
        "don", "'", "t", "re", "-", "run", "e", ".", "g", ".", "3", ".", "14"],
    "naïve\u0301": ["naive"],
    "\ufffd\x7f\x1f": [],
    "https://example.com/a_b?c=1": [
        "https", ":", "/", "/", "example", ".", "com", "/", "a", "_", "b", "?", "c", "=", "1"],
}


@pytest.fixture(scope="module")
def emb() -> StaticEmbedder:
    return StaticEmbedder.load()


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b)


def test_artifact_loads_without_pickle_and_is_documented() -> None:
    with np.load(DEFAULT_PATH, allow_pickle=False) as z:
        assert {"vectors", "scales", "vocab", "meta"} <= set(z.files)
        assert z["vectors"].dtype == np.int8
        assert z["vocab"].dtype.kind == "U"
        assert len(z["vocab"]) == z["vectors"].shape[0] == 30522
        meta = json.loads(str(z["meta"]))
    assert meta["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert "Apache-2.0" in meta["license"]
    assert DEFAULT_PATH.stat().st_size <= 8_000_000
    assert (DEFAULT_PATH.parent / "MINILM_STATIC.md").is_file()


def test_default_is_cached_once_and_matches_explicit_path(emb: StaticEmbedder) -> None:
    assert StaticEmbedder.load() is emb
    other = StaticEmbedder.load(DEFAULT_PATH)
    assert other is not emb
    texts = ["Route this prompt to a cheap model.", "Solve 2x + 3 = 7."]
    np.testing.assert_array_equal(other.embed(texts), emb.embed(texts))


def test_shape_dtype_norm_and_determinism(emb: StaticEmbedder) -> None:
    texts = ["What is the capital of France?", "Write a Python function that sorts a list.",
             "", "   \t\n", "!!!"]
    out = emb.embed(texts)
    assert emb.dim in (128, 256)
    assert out.shape == (len(texts), emb.dim)
    assert out.dtype == np.float32
    norms = np.linalg.norm(out, axis=1)
    np.testing.assert_allclose(norms[[0, 1, 4]], 1.0, atol=1e-5)
    assert not out[2].any() and not out[3].any()  # no tokens → zero row
    np.testing.assert_array_equal(emb.embed(texts), out)
    np.testing.assert_array_equal(emb.embed(texts[::-1]), out[::-1])
    assert emb.embed([]).shape == (0, emb.dim)


def test_embed_rejects_a_bare_string(emb: StaticEmbedder) -> None:
    with pytest.raises(TypeError):
        emb.embed("one text")


def test_paraphrases_are_closer_than_unrelated_texts(emb: StaticEmbedder) -> None:
    a, b, c = emb.embed(["How do I reset my password?",
                         "What are the steps to change my account password?",
                         "The volcano erupted and covered the village in ash."])
    assert cos(a, b) > cos(a, c) + 0.1
    x, y, z = emb.embed(["Write a Python function that reverses a string.",
                         "Implement a function in Python to reverse a string.",
                         "Which planet is the largest in the solar system?"])
    assert cos(x, y) > cos(x, z) + 0.1


@pytest.mark.parametrize(("text", "expected"), list(HF_TOKENS.items()))
def test_tokenization_matches_bert(emb: StaticEmbedder, text: str, expected: list[str]) -> None:
    assert emb.tokenize(text) == expected


def test_wordpiece_is_greedy_longest_match_against_the_vocab(emb: StaticEmbedder) -> None:
    pieces = emb.tokenize("unaffable")
    assert pieces[0] in emb.vocab and all(p.startswith("##") for p in pieces[1:])
    assert "".join(p.removeprefix("##") for p in pieces) == "unaffable"
    assert "unaffable" not in emb.vocab
    # greedy: no longer prefix of the word is in the vocabulary than the first piece
    word = "unaffable"
    longest = max(k for k in range(1, len(word) + 1) if word[:k] in emb.vocab)
    assert pieces[0] == word[:longest]
    assert emb.tokenize("playing") == ["playing"]  # whole words stay whole


def test_accents_case_and_unicode_forms_agree(emb: StaticEmbedder) -> None:
    a, b, c = emb.embed(["Café NAÏVE", "cafe naive", "Cafe\u0301 nai\u0308ve"])
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert basic_tokenize("Hello,World") == ["hello", ",", "world"]


def test_very_long_input_is_capped(emb: StaticEmbedder) -> None:
    long_text = "the quick brown fox jumps over the lazy dog " * 5000
    assert len(emb.token_ids(long_text)) == MAX_WORDPIECES
    v = emb.embed([long_text])[0]
    assert np.isfinite(v).all() and abs(np.linalg.norm(v) - 1.0) < 1e-5
    assert emb.tokenize("x" * (MAX_WORD_CHARS + 1)) == ["[UNK]"]
    assert emb.tokenize("x" * 200 + " ok") == ["[UNK]", "ok"]
    assert len(emb.token_ids("a " * 10, limit=3)) == 3


def test_reading_long_text_in_chunks_changes_nothing(emb: StaticEmbedder) -> None:
    text = "".join(f"Wörd{i}, naïve\tline {i}!\n  " + "x" * (i % 150) + " " for i in range(900))
    assert len(text) > 3 * 4096
    whole = [i for w in basic_tokenize(text) for i in wordpiece(w, emb.vocab, emb.unk_id)]
    assert emb.token_ids(text, limit=10**9) == whole
    assert emb.token_ids(text) == whole[:MAX_WORDPIECES]


def test_word_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    fresh = StaticEmbedder.load(DEFAULT_PATH)
    monkeypatch.setattr(embed_mod, "CACHE_SIZE", 50)
    fresh.embed([" ".join(f"word{i}" for i in range(500))])
    assert 0 < len(fresh._cache) <= 50
    assert fresh.tokenize("word7") == StaticEmbedder.load().tokenize("word7")


def test_mismatched_vocab_is_rejected() -> None:
    with pytest.raises(ValueError):
        StaticEmbedder(np.zeros((3, 4), dtype=np.float32), ["[UNK]", "a"])


def test_featurizer_mixes_embedding_cosine_into_similarity(tmp_path) -> None:
    from pathlib import Path

    from llmswitch.evals.table import load_table
    from llmswitch.routing.learned import load_router, save_router
    from llmswitch.routing.learned.features import Featurizer, Prepared
    from llmswitch.training.router import train_router

    texts = ["How do I bake bread at home?", "Recipe for baking a loaf of bread", "Stocks fell."]
    plain = Featurizer.fit(texts)
    mixed = Featurizer.fit(texts, embed_weight=0.5)
    a, b = plain.transform(texts).tfidf, mixed.transform(texts).tfidf
    emb = StaticEmbedder.load().embed(texts).astype(np.float64)
    expected = 0.5 * (a @ a.T).toarray() + 0.5 * emb @ emb.T
    assert np.allclose((b @ b.T).toarray(), expected, atol=1e-5)
    # prepared prompts without embeddings are refused, not silently embedded as zeros
    with pytest.raises(ValueError, match="embeddings"):
        mixed.transform(Prepared.of(texts))
    with pytest.raises(ValueError, match="embed_weight"):
        Featurizer.fit(texts, embed_weight=1.0)
    # a router trained with the embedding saves it and predicts the same after loading
    table = load_table(Path(__file__).resolve().parents[1] / "data/routing/outcomes_sample.parquet")
    router = train_router(table, "knn", {"k": 10, "embed_weight": 0.4})
    save_router(router, tmp_path / "r.npz")
    loaded = load_router(tmp_path / "r.npz")
    assert loaded.featurizer.embed_weight == pytest.approx(0.4)
    prompts = list(table.prompts[:5])
    assert np.allclose(router.predict(prompts).quality, loaded.predict(prompts).quality, atol=1e-3)
