"""Static (distilled) all-MiniLM-L6-v2 sentence embeddings in pure numpy.

``data/minilm_static.npz`` holds one vector per WordPiece token of all-MiniLM-L6-v2, made by running
each token alone through the transformer, mean-pooling, PCA and Zipf/SIF weighting (model2vec
style; see ``data/MINILM_STATIC.md`` and ``benchmarks/routing/distill_static.py``). A text is
embedded by BERT-uncased tokenization + WordPiece, the mean of its token vectors, L2-normalised.

Cost: no transformer at run time, only tokenization in Python and a row gather — a fraction of a
millisecond per prompt on one core (~0.1 ms mean, ~0.2 ms p95 on the dev tables; see
``benchmarks/routing/embed_speed.py``); loading the file takes ~0.1 s and ~30 MB of memory
(vectors are kept as float32). Only the first `MAX_WORDPIECES` wordpieces of a text count, and
a long text is read only that far, so very long prompts cost about as much as 512-piece ones.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

DEFAULT_PATH = Path(__file__).resolve().parent / "data" / "minilm_static.npz"
MAX_WORDPIECES = 512
"""Wordpieces per text that are embedded (after tokenization; the rest of the text is ignored)."""
MAX_WORD_CHARS = 100
"""BERT's ``max_input_chars_per_word``: a longer word becomes ``[UNK]``."""
CACHE_SIZE = 65_536
"""Words whose wordpiece ids are kept per embedder (the cache is emptied when full)."""

UNK = "[UNK]"
# After control characters are dropped and \t \n \r become spaces (see _ASCII_CLEAN), BERT splits
# lower-cased ASCII text into runs of letters/digits and single punctuation characters.
_ASCII_WORDS = re.compile(r"[a-z0-9]+|[^a-z0-9 ]")
_ASCII_CLEAN = {c: None for c in (*range(32), 127)} | {9: " ", 10: " ", 13: " "}

_F32 = npt.NDArray[np.float32]


def _is_cjk(cp: int) -> bool:
    """Return True for a CJK Unified Ideograph code point (BERT's `_is_chinese_char`)."""
    return (
        0x4E00 <= cp <= 0x9FFF
        or 0x3400 <= cp <= 0x4DBF
        or 0x20000 <= cp <= 0x2A6DF
        or 0x2A700 <= cp <= 0x2B73F
        or 0x2B740 <= cp <= 0x2B81F
        or 0x2B820 <= cp <= 0x2CEAF
        or 0xF900 <= cp <= 0xFAFF
        or 0x2F800 <= cp <= 0x2FA1F
    )


def _char_kind(ch: str) -> str:
    """Classify one character as BERT does: drop, space, split (own token) or keep."""
    if ch in " \t\n\r":
        return " "
    cp = ord(ch)
    cat = unicodedata.category(ch)
    if cp in {0, 0xFFFD} or cat.startswith("C") or cat == "Mn":
        return ""  # control/format chars are removed; Mn = accents left over by NFD
    if cat.startswith("Z"):  # Zs, and U+2028/U+2029 as the Rust (fast) BERT tokenizer does
        return " "
    if (
        33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126
    ) or cat.startswith("P"):
        return "split"
    if _is_cjk(cp):
        return "split"
    return "keep"


_KIND_CACHE: dict[str, str] = {}


def basic_tokenize(text: str) -> list[str]:
    """Split text like BERT's uncased BasicTokenizer: lower-case, strip accents, split on
    whitespace and punctuation, CJK ideographs as their own tokens; control characters dropped.
    """
    if text.isascii():
        return _ASCII_WORDS.findall(text.lower().translate(_ASCII_CLEAN))
    text = unicodedata.normalize("NFD", text).lower()
    out: list[str] = []
    kinds = _KIND_CACHE
    for ch in text:
        kind = kinds.get(ch)
        if kind is None:
            kind = _char_kind(ch)
            if len(kinds) < CACHE_SIZE:
                kinds[ch] = kind
        if kind == "keep":
            out.append(ch)
        elif kind == "split":
            out.append(" ")
            out.append(ch)
            out.append(" ")
        elif kind == " ":
            out.append(" ")
    return "".join(out).split(" ") if out else []


def _chunks(text: str, size: int = 4096) -> Iterator[str]:
    """Cut text at spaces (where BERT splits anyway) into pieces of about ``size`` characters."""
    start, n = 0, len(text)
    while start < n:
        end = start + size
        if end < n:
            cut = text.find(" ", end)
            end = n if cut < 0 else cut
        yield text[start:end]
        start = end


def wordpiece(word: str, vocab: dict[str, int], unk_id: int) -> list[int]:
    """Greedy longest-match-first WordPiece (``##`` marks a continuation); [UNK] if it fails."""
    if len(word) > MAX_WORD_CHARS:
        return [unk_id]
    ids: list[int] = []
    start, n = 0, len(word)
    while start < n:
        end = n
        found = -1
        while start < end:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            found = vocab.get(piece, -1)
            if found >= 0:
                break
            end -= 1
        if found < 0:
            return [unk_id]
        ids.append(found)
        start = end
    return ids


class StaticEmbedder:
    """Token-vector lookup embedder; see the module docstring."""

    def __init__(self, vectors: _F32, vocab: Sequence[str], meta: str = "") -> None:
        """Wrap ``vectors`` (vocab × D float32) and the WordPiece vocabulary (same order)."""
        if vectors.ndim != 2 or vectors.shape[0] != len(vocab):
            raise ValueError(f"vectors {vectors.shape} do not match a vocabulary of {len(vocab)}")
        self.vectors: _F32 = np.ascontiguousarray(vectors, dtype=np.float32)
        self.vocab: dict[str, int] = {tok: i for i, tok in enumerate(vocab)}
        self.tokens: tuple[str, ...] = tuple(vocab)
        self.unk_id = self.vocab[UNK]
        self.meta = meta
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def load(cls, path: str | Path | None = None) -> StaticEmbedder:
        """Load an ``.npz`` artifact; without ``path`` the shipped one, loaded once per process."""
        if path is None:
            with _DEFAULT_LOCK:
                if "shipped" not in _DEFAULT:
                    _DEFAULT["shipped"] = cls._read(DEFAULT_PATH)
                return _DEFAULT["shipped"]
        return cls._read(Path(path))

    @classmethod
    def _read(cls, path: Path) -> StaticEmbedder:
        with np.load(path, allow_pickle=False) as z:
            if "scales" in z.files:  # int8 rows with one float scale per row
                vectors = z["vectors"].astype(np.float32) * z["scales"].astype(np.float32)[:, None]
            else:
                vectors = z["vectors"].astype(np.float32)
            vocab = [str(t) for t in z["vocab"]]
            meta = str(z["meta"]) if "meta" in z.files else ""
        return cls(vectors, vocab, meta)

    @property
    def dim(self) -> int:
        """Embedding dimension D."""
        return int(self.vectors.shape[1])

    def token_ids(self, text: str, limit: int = MAX_WORDPIECES) -> list[int]:
        """WordPiece ids of ``text`` (no [CLS]/[SEP]), at most ``limit`` of them."""
        ids: list[int] = []
        cache, vocab, unk = self._cache, self.vocab, self.unk_id
        for chunk in _chunks(text):  # a long text is only read as far as needed
            for word in basic_tokenize(chunk):
                if not word:
                    continue
                pieces = cache.get(word)
                if pieces is None:
                    pieces = wordpiece(word, vocab, unk)
                    if len(cache) >= CACHE_SIZE:
                        cache.clear()
                    cache[word] = pieces
                ids.extend(pieces)
                if len(ids) >= limit:
                    return ids[:limit]
        return ids

    def tokenize(self, text: str, limit: int = MAX_WORDPIECES) -> list[str]:
        """WordPiece strings of ``text`` (for inspection and tests)."""
        return [self.tokens[i] for i in self.token_ids(text, limit)]

    def embed_one(self, text: str) -> _F32:
        """Embed one text: a length-D float32 unit vector (zeros if it has no tokens)."""
        ids = self.token_ids(text)
        if not ids:
            return np.zeros(self.dim, dtype=np.float32)
        vec: _F32 = self.vectors[ids].sum(axis=0)
        norm = float(np.sqrt(vec @ vec))
        if norm > 0.0:
            vec /= norm
        return vec

    def embed(self, texts: Sequence[str]) -> _F32:
        """Embed texts: an n × D float32 array of L2-normalised rows (zero row for no tokens)."""
        if isinstance(texts, str):
            raise TypeError("embed() takes a sequence of texts, not one string")
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            out[i] = self.embed_one(text)
        return out


_DEFAULT: dict[str, StaticEmbedder] = {}
_DEFAULT_LOCK = threading.Lock()
