"""Token counts before a call: to pre-check context windows and estimate cost.

OpenAI models (ids or cards of the `gpt` family: `gpt-4o`, `gpt-4.1`, `gpt-5*`, `o1`/`o3`/`o4`,
`gpt-oss` → `o200k_base`; `gpt-4`, `gpt-3.5` → `cl100k_base`) are counted exactly with
`tiktoken`, from the encoding files bundled in `quicktok-v1` (the `tokens` extra). The files are
read from the installed package and handed to `tiktoken.Encoding` directly, so tiktoken never
downloads anything and never looks at its cache directory.

Every other model, and OpenAI models when the `tokens` extra is not installed, gets an
approximation: a weighted count of ASCII word characters, ASCII punctuation, CJK characters and
other non-ASCII characters (weights fitted against real BPE vocabularies; see docs/tokens.md for
the measured error), times a per-family factor. It takes well under a millisecond for 2k chars.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmswitch.catalog.card import ModelCard
from llmswitch.catalog.pricing import cost_usd
from llmswitch.messages import Message
from llmswitch.request import Request
from llmswitch.results import Usage

# --- exact counting: tiktoken with quicktok's bundled vocabularies ---------------------------

# The split patterns of OpenAI's encodings, as in tiktoken_ext/openai_public.py (tiktoken 0.14).
CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
ENCODINGS: dict[str, tuple[str, str]] = {
    "cl100k_base": ("cl100k", CL100K_PATTERN),
    "o200k_base": ("o200k", O200K_PATTERN),
}
"""Encoding name → (quicktok data file stem, split pattern)."""

O200K_MODELS = ("gpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4", "chatgpt-4o",
                "gpt-oss", "codex")
CL100K_MODELS = ("gpt-4", "gpt-3.5", "text-embedding-3", "text-embedding-ada")


def encoding_name(model: ModelCard | str | None) -> str | None:
    """The tiktoken encoding of an OpenAI model, or `None` for other models."""
    if model is None:
        return None
    name = model.wire_name if isinstance(model, ModelCard) else model
    name = name.rsplit("/", 1)[-1].lower()
    if name.startswith(O200K_MODELS):
        return "o200k_base"
    if name.startswith(CL100K_MODELS):
        return "cl100k_base"
    if isinstance(model, ModelCard) and model.family in ("gpt", "gpt-oss"):
        return "o200k_base"  # a newer OpenAI model or an Azure deployment name
    return None


def quicktok_data_dir() -> Path | None:
    """The folder holding quicktok-v1's vocabulary files (found without importing it)."""
    spec = importlib.util.find_spec("quicktok")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def read_ranks(path: Path) -> dict[bytes, int]:
    """A quicktok `.vocab` file: u32 count, then per token u16 length, bytes, u32 rank."""
    data = path.read_bytes()
    (count,) = struct.unpack_from("<I", data, 0)
    ranks: dict[bytes, int] = {}
    offset = 4
    while offset < len(data):
        (size,) = struct.unpack_from("<H", data, offset)
        token = data[offset + 2 : offset + 2 + size]
        (rank,) = struct.unpack_from("<I", data, offset + 2 + size)
        ranks[token] = rank
        offset += 6 + size
    if len(ranks) != count:
        raise ValueError(f"{path}: expected {count} tokens, read {len(ranks)}")
    return ranks


def read_specials(path: Path) -> dict[str, int]:
    """A quicktok `.special` file: u32 count, then per token u32 rank, u16 length, bytes."""
    data = path.read_bytes()
    (count,) = struct.unpack_from("<I", data, 0)
    out: dict[str, int] = {}
    offset = 4
    for _ in range(count):
        rank, size = struct.unpack_from("<IH", data, offset)
        out[data[offset + 6 : offset + 6 + size].decode("utf-8")] = rank
        offset += 6 + size
    return out


@functools.cache
def tiktoken_encoding(name: str) -> Any | None:
    """A `tiktoken.Encoding` built from quicktok's files; `None` without the `tokens` extra.

    Loaded once per process, on first use (about 0.1-0.3 s for o200k_base).
    """
    stem, pattern = ENCODINGS[name]
    folder = quicktok_data_dir()
    if folder is None or not (folder / f"{stem}.vocab").exists():
        return None
    try:
        tiktoken = importlib.import_module("tiktoken")
    except ImportError:
        return None
    return tiktoken.Encoding(
        name=name,
        pat_str=pattern,
        mergeable_ranks=read_ranks(folder / f"{stem}.vocab"),
        special_tokens=read_specials(folder / f"{stem}.special"),
    )


# --- the approximation ----------------------------------------------------------------------

_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_PUNCT = re.compile(r"[!-/:-@\[-`{-~]")
_CJK = re.compile(r"[\u1100-\u11ff\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]")


@dataclass(frozen=True, slots=True)
class Weights:
    """Tokens per character, by kind of character."""

    word: float
    """ASCII letters, digits and whitespace."""
    punct: float
    cjk: float
    other: float
    """Non-ASCII characters outside CJK (accents, Cyrillic, Arabic, Devanagari, …)."""


# Least-squares fits (weighted by 1/tokens) on English prompts, Python code, JSON and nine
# languages; see docs/tokens.md.
APPROX_WEIGHTS: dict[str, Weights] = {
    "cl100k_base": Weights(0.218, 0.475, 1.23, 0.627),
    "o200k_base": Weights(0.208, 0.518, 0.679, 0.223),
    "generic": Weights(0.22, 0.467, 0.712, 0.334),  # fitted on the Llama 3 vocabulary
}
FAMILY_FACTORS: dict[str, float] = {
    "claude": 1.15,  # Anthropic's tokenizers yield more tokens per text than OpenAI's
    "nova": 1.1,
}
"""Per-family multipliers on the generic weights (1.0 for families not listed)."""


def approximate_tokens(text: str, weights: Weights = APPROX_WEIGHTS["generic"]) -> int:
    """A fast estimate of the tokens in `text` (no tokenizer)."""
    if not text:
        return 0
    non_ascii = len(_NON_ASCII.findall(text)) if not text.isascii() else 0
    cjk = len(_CJK.findall(text)) if non_ascii else 0
    punct = len(_PUNCT.findall(text))
    word = len(text) - non_ascii - punct
    estimate = (word * weights.word + punct * weights.punct + cjk * weights.cjk
                + (non_ascii - cjk) * weights.other)
    return max(1, round(estimate))


# --- public API -----------------------------------------------------------------------------

def family_of(model: ModelCard | str | None) -> str:
    """The model family: the card's, else guessed from the id (`gpt`, `claude`, `gemini`, …)."""
    if isinstance(model, ModelCard) and model.family:
        return model.family
    if encoding_name(model) is not None:
        return "gpt"
    name = (model.id if isinstance(model, ModelCard) else model or "").lower()
    for family in ("claude", "gemini", "nova", "llama", "qwen", "mistral", "deepseek"):
        if family in name:
            return family
    return ""


def token_method(model: ModelCard | str | None) -> str:
    """How `count_tokens` counts for a model: `tiktoken:<encoding>` or `approx:<family>`."""
    name = encoding_name(model)
    if name is not None and tiktoken_encoding(name) is not None:
        return f"tiktoken:{name}"
    return f"approx:{name or family_of(model) or 'generic'}"


def is_exact(model: ModelCard | str | None) -> bool:
    """Whether counts for this model come from its real tokenizer."""
    return token_method(model).startswith("tiktoken:")


def count_text(text: str, model: ModelCard | str | None = None) -> int:
    """Tokens in a piece of text for a model (exact for OpenAI models with the extra)."""
    name = encoding_name(model)
    encoding = tiktoken_encoding(name) if name is not None else None
    if encoding is not None:
        return len(encoding.encode_ordinary(text))
    weights = APPROX_WEIGHTS.get(name or "generic", APPROX_WEIGHTS["generic"])
    factor = FAMILY_FACTORS.get(family_of(model), 1.0)
    return round(approximate_tokens(text, weights) * factor)


def count_tokens(value: str | Request, model: ModelCard | str | None = None) -> int:
    """Tokens in a text, or the estimated input tokens of a whole request."""
    if isinstance(value, Request):
        return estimate_request_tokens(value, model)
    return count_text(value, model)


# Per-message framing, as in OpenAI's published counting recipe (3 per message, 3 to prime
# the reply); other chat templates are of the same order.
TOKENS_PER_MESSAGE = 3
REPLY_PRIMING = 3
TOOLS_OVERHEAD = 16
TOKENS_PER_TOOL = 8
IMAGE_TOKENS: dict[str, int] = {"gpt": 765, "claude": 1600, "gemini": 258, "nova": 1600}
"""Tokens for one image of unknown size (OpenAI: 1024x1024 at high detail; Anthropic: a
~1.15-megapixel image; Gemini: a fixed 258 per image)."""
DEFAULT_IMAGE_TOKENS = 1000


def estimate_request_tokens(request: Request, model: ModelCard | str | None = None) -> int:
    """Estimated input tokens of a request: messages, tool calls, images, tool definitions
    and the JSON Schema of the response format."""
    total = REPLY_PRIMING
    image_tokens = IMAGE_TOKENS.get(family_of(model), DEFAULT_IMAGE_TOKENS)
    for message in request.messages:
        total += TOKENS_PER_MESSAGE + _message_tokens(message, model, image_tokens)
    settings = request.settings
    if settings.tools:
        specs = [{"name": t.name, "description": t.description,
                  "parameters": dict(t.parameters)} for t in settings.tools]
        total += (TOOLS_OVERHEAD + TOKENS_PER_TOOL * len(specs)
                  + count_text(_dumps(specs), model))
    if settings.response_format.schema is not None:
        total += count_text(_dumps(settings.response_format.schema), model)
    return total


def upper_bound_tokens(request: Request, model: ModelCard | str | None = None) -> int:
    """A cheap bound that no estimate exceeds: one token per UTF-8 byte (a BPE token is at
    least one byte) plus the same framing and image allowances. Lets a window check skip
    tokenizing requests that are obviously small."""
    image_tokens = IMAGE_TOKENS.get(family_of(model), DEFAULT_IMAGE_TOKENS)
    total = REPLY_PRIMING
    for m in request.messages:
        total += TOKENS_PER_MESSAGE + len(m.text.encode()) + image_tokens * len(m.images) + 1
        total += sum(TOKENS_PER_MESSAGE + len((c.name + c.arguments).encode())
                     for c in m.tool_calls)
    settings = request.settings
    if settings.tools:
        specs = [{"name": t.name, "description": t.description,
                  "parameters": dict(t.parameters)} for t in settings.tools]
        total += TOOLS_OVERHEAD + TOKENS_PER_TOOL * len(specs) + len(_dumps(specs).encode())
    if settings.response_format.schema is not None:
        total += len(_dumps(settings.response_format.schema).encode())
    return total


def _message_tokens(message: Message, model: ModelCard | str | None, image_tokens: int) -> int:
    total = count_text(message.text, model) if message.text else 0
    total += image_tokens * len(message.images)
    if message.name:
        total += 1
    for call in message.tool_calls:
        total += TOKENS_PER_MESSAGE + count_text(call.name + call.arguments, model)
    return total


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


TYPICAL_OUTPUT_TOKENS = 400
TYPICAL_REASONING_OUTPUT_TOKENS = 2000


def expected_output_tokens(request: Request, card: ModelCard | None) -> int:
    """`max_tokens` when set, else a typical answer length (longer for reasoning models)."""
    if request.settings.max_tokens is not None:
        return request.settings.max_tokens
    typical = (TYPICAL_REASONING_OUTPUT_TOKENS if card is not None and card.has("reasoning")
               else TYPICAL_OUTPUT_TOKENS)
    return min(typical, card.max_output_tokens) if card is not None else typical


def estimate_cost(
    request: Request, card: ModelCard | None, output_tokens: int | None = None
) -> float | None:
    """Estimated USD of a call before making it: the estimated input at the input price plus
    `output_tokens` (default: `expected_output_tokens`) at the output price. `None` when the
    card or its prices are unknown. An upper-ish bound when `max_tokens` is set."""
    if card is None or not card.priced:
        return None
    out = expected_output_tokens(request, card) if output_tokens is None else output_tokens
    return cost_usd(card, Usage(estimate_request_tokens(request, card), out))
