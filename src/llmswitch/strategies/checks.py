"""Cascade checks: is a stage's answer good enough to stop, or should the cascade escalate?

A check implements the small `Check` protocol: `prepare(request)` may adjust the request sent to
every stage (e.g. ask for log-probabilities) and `evaluate(request, answer, model)` returns a
`Verdict` (passed, score, reason, and any calls the check itself made, so the cascade can
sum their cost and trace them). Built-in kinds, configured under `checks:`:

- `heuristics` (`min_chars`=1, `reject`=[empty, refusal, hedging, truncated, too_short]):
  passes when none of the rejected signs shows.
- `schema` (`schema`, default the request's response_format schema): the answer is valid JSON.
- `self_consistency` (`samples`=3, `agree`=0.66, `temperature`=0.8): enough samples agree.
- `judge` (`model` required, `threshold`=7 of 10): the judge's score reaches the threshold.
- `logprob` (`threshold`=0.5, `request`=false, `missing`=pass): exp(mean logprob) ≥ threshold.
- `learned` (`path` or `scorer`, `threshold`=0.5): the learned P(good) ≥ threshold.

**Plugging in a learned scorer.** The `learned` check needs an object with
`score(request, answer) -> float` in [0, 1] (the `AnswerScorer` protocol). With `scorer:
"package.module:factory"` the factory is called with the check's options; with `path: FILE`
the check imports `llmswitch.routing.learned` lazily (at build time, never at import) and calls
its `load_answer_scorer(path)`. Either way a missing module or attribute is a config error that
names the route.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from llmswitch.errors import LLMSwitchError
from llmswitch.messages import Message
from llmswitch.models import Model
from llmswitch.request import Request
from llmswitch.results import Completion
from llmswitch.schemacheck import SchemaProblem, compile_schema, validate
from llmswitch.structured import extract_json

_REFUSAL = re.compile(r"\b(?:I can(?:no|')t (?:help|assist|do that|provide)|I(?: am|'m) (?:unable|"
                      r"not able) to|I won't|as an AI(?: language model)?|I must decline)\b",
                      re.IGNORECASE)
_HEDGING = re.compile(r"\b(?:I(?: am|'m) not (?:sure|certain)|I don't know|it(?: is|'s) unclear|"
                      r"I cannot be certain|I think maybe|hard to say)\b", re.IGNORECASE)
SIGNS = ("empty", "refusal", "hedging", "truncated", "too_short")
_SCORE = re.compile(r"(?<![\d.])(10|[0-9])(?:\.\d+)?(?![\d])")


@dataclass(frozen=True)
class Verdict:
    """A check's outcome; `calls`/`errors` are the check's own model calls (billed)."""

    passed: bool
    reason: str
    score: float | None = None
    calls: tuple[Completion, ...] = ()
    errors: tuple[BaseException, ...] = ()


@runtime_checkable
class Check(Protocol):
    """What a cascade needs from a check."""

    name: str

    def prepare(self, request: Request) -> Request:
        """The request each stage receives (return it unchanged if nothing is needed)."""
        ...

    async def evaluate(self, request: Request, answer: Completion, model: Model) -> Verdict:
        """Judge `answer`, which `model` gave to `request`."""
        ...


@runtime_checkable
class AnswerScorer(Protocol):
    """A learned estimate that an answer is acceptable (issue 7's routers provide one)."""

    def score(self, request: Request, answer: Completion) -> float:
        """P(answer is good) in [0, 1]."""
        ...


class _Base:
    name = "check"

    def prepare(self, request: Request) -> Request:
        return request


class Heuristics(_Base):
    """Cheap signs of a bad answer: empty, refusal, hedging, cut off, too short."""

    name = "heuristics"

    def __init__(self, min_chars: int = 1, reject: tuple[str, ...] = SIGNS) -> None:
        unknown = set(reject) - set(SIGNS)
        if unknown:
            raise ValueError(f"heuristics.reject: unknown sign(s) {sorted(unknown)}; "
                             f"known: {', '.join(SIGNS)}")
        self.min_chars = min_chars
        self.reject = frozenset(reject)

    def signs(self, answer: Completion) -> list[str]:
        """The bad signs present in an answer."""
        text = answer.text.strip()
        found = {
            "empty": not text and not answer.tool_calls,
            "refusal": bool(_REFUSAL.search(text)) or answer.refusal is not None,
            "hedging": bool(_HEDGING.search(text)),
            "truncated": answer.finish_reason == "length",
            "too_short": 0 < len(text) < self.min_chars,
        }
        return [k for k, v in found.items() if v and k in self.reject]

    async def evaluate(self, request: Request, answer: Completion, model: Model) -> Verdict:
        signs = self.signs(answer)
        if signs:
            return Verdict(False, "answer looks " + ", ".join(signs), 0.0)
        return Verdict(True, "no bad signs", 1.0)


class SchemaCheck(_Base):
    """The answer is JSON valid against a schema (the option, else the request's)."""

    name = "schema"

    def __init__(self, schema: Mapping[str, Any] | None = None) -> None:
        if schema is not None:
            try:
                compile_schema(schema)
            except SchemaProblem as exc:  # a ValueError naming the bad keyword
                raise exc.within("schema check") from None
        self.schema = schema

    async def evaluate(self, request: Request, answer: Completion, model: Model) -> Verdict:
        schema = self.schema or request.settings.response_format.schema
        text = answer.tool_calls[0].arguments if answer.tool_calls else answer.text
        try:
            value = extract_json(text)
        except ValueError:
            return Verdict(False, "answer is not JSON", 0.0)
        try:
            errors = validate(value, schema) if schema else []
        except SchemaProblem as exc:  # a request's schema is checked when it is made
            return Verdict(False, f"schema: {exc}", 0.0)
        if errors:
            return Verdict(False, f"{len(errors)} schema error(s): {errors[0]}", 0.0)
        return Verdict(True, "valid JSON" + (" for the schema" if schema else ""), 1.0)


def normalise(text: str) -> str:
    """An answer reduced for comparison: lower case, single spaces, no edge punctuation."""
    return re.sub(r"\s+", " ", text.strip().lower()).strip(" .!?\"'`")


class SelfConsistency(_Base):
    """Ask the same model `samples - 1` more times; pass when enough agree with the answer."""

    name = "self_consistency"

    def __init__(self, samples: int = 3, agree: float = 0.66, temperature: float = 0.8) -> None:
        if samples < 2:
            raise ValueError("self_consistency.samples must be at least 2")
        self.samples, self.agree, self.temperature = samples, agree, temperature

    async def evaluate(self, request: Request, answer: Completion, model: Model) -> Verdict:
        sampled = request.with_settings(temperature=self.temperature)
        results = await asyncio.gather(
            *(model.complete(sampled) for _ in range(self.samples - 1)), return_exceptions=True)
        calls = tuple(r for r in results if isinstance(r, Completion))
        errors = tuple(r for r in results if isinstance(r, LLMSwitchError))
        others = [r for r in results if isinstance(r, BaseException)
                  and not isinstance(r, LLMSwitchError)]
        if others:
            raise others[0]
        target = normalise(answer.text)
        same = 1 + sum(normalise(c.text) == target for c in calls)
        share = same / (1 + len(calls))
        ok = share >= self.agree and bool(calls)
        return Verdict(ok, f"{same} of {1 + len(calls)} samples agree", round(share, 4),
                       calls, errors)


JUDGE_PROMPT = (
    "Rate how well the answer responds to the request, from 1 (useless or wrong) to 10 "
    "(fully correct and complete). Reply with only the number.\n\n"
    "Request:\n{request}\n\nAnswer:\n{answer}"
)


def parse_score(text: str) -> float | None:
    """The first 0–10 number in a judge's reply, or `None`."""
    match = _SCORE.search(text)
    return float(match.group(0)) if match else None


class Judge(_Base):
    """A judge model scores the answer 1–10; an unparsable reply fails the check."""

    name = "judge"

    def __init__(self, judge: Model, threshold: float = 7.0, prompt: str = JUDGE_PROMPT,
                 max_tokens: int = 8) -> None:
        self.judge, self.threshold = judge, threshold
        self.prompt, self.max_tokens = prompt, max_tokens

    async def evaluate(self, request: Request, answer: Completion, model: Model) -> Verdict:
        ask = self.prompt.format(request=request.last_user_text, answer=answer.text)
        judging = Request((Message.user(ask),)).with_settings(max_tokens=self.max_tokens,
                                                            temperature=0.0)
        try:
            reply = await self.judge.complete(judging)
        except LLMSwitchError as exc:
            return Verdict(False, f"judge {self.judge.name!r} failed: {exc.type}", None, (),
                           (exc,))
        score = parse_score(reply.text)
        if score is None:
            shown = json.dumps(reply.text[:40])
            return Verdict(False, f"judge {self.judge.name!r} returned no score: {shown}",
                           None, (reply,))
        ok = score >= self.threshold
        return Verdict(ok, f"judge scored {score:g} (need {self.threshold:g})", score / 10,
                       (reply,))


def mean_logprob_confidence(raw: Any) -> float | None:
    """exp(mean token logprob) from an OpenAI-style body (`choices[0].logprobs.content`)."""
    try:
        content = raw["choices"][0]["logprobs"]["content"]
        values = [float(t["logprob"]) for t in content]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return math.exp(sum(values) / len(values)) if values else None


class LogprobConfidence(_Base):
    """Token log-probability confidence, where the provider returns it."""

    name = "logprob"

    def __init__(self, threshold: float = 0.5, request: bool = False,
                 missing: str = "pass") -> None:
        if missing not in ("pass", "fail"):
            raise ValueError("logprob.missing must be 'pass' or 'fail'")
        self.threshold, self.ask, self.missing = threshold, request, missing

    def prepare(self, request: Request) -> Request:
        if not self.ask:
            return request
        return request.with_settings(extra={**request.settings.extra, "logprobs": True})

    async def evaluate(self, request: Request, answer: Completion, model: Model) -> Verdict:
        confidence = mean_logprob_confidence(answer.raw)
        if confidence is None:
            return Verdict(self.missing == "pass", f"no logprobs returned ({self.missing})")
        ok = confidence >= self.threshold
        return Verdict(ok, f"token confidence {confidence:.3f} (need {self.threshold:g})",
                       round(confidence, 4))


class Learned(_Base):
    """A learned scorer's P(answer is good) against a threshold."""

    name = "learned"

    def __init__(self, scorer: AnswerScorer, threshold: float = 0.5) -> None:
        self.scorer, self.threshold = scorer, threshold

    async def evaluate(self, request: Request, answer: Completion, model: Model) -> Verdict:
        p = float(self.scorer.score(request, answer))
        return Verdict(p >= self.threshold, f"learned P(good) {p:.3f} (need {self.threshold:g})",
                       round(p, 4))


def load_scorer(options: Mapping[str, Any]) -> AnswerScorer:
    """The learned check's scorer from `scorer: module:factory` or `path:` (see module doc)."""
    ref = options.get("scorer")
    if ref:
        module_name, _, attr = str(ref).partition(":")
        factory: Any = getattr(importlib.import_module(module_name), attr or "scorer")
        made = factory(**{k: v for k, v in options.items()
                          if k not in ("kind", "scorer", "threshold")})
    elif options.get("path"):
        module = importlib.import_module("llmswitch.routing.learned")
        made = module.load_answer_scorer(str(options["path"]))
    else:
        raise ValueError("learned check needs 'path' (a saved scorer) or 'scorer: module:factory'")
    if not isinstance(made, AnswerScorer):
        raise ValueError("learned scorer has no score(request, answer) -> float method")
    return made


def build_check(spec: Any, resolve: Any) -> Check:
    """A check from config: a kind name, or a mapping with `kind` and options.

    `resolve` turns a model name into a `Model` (for the judge). `ValueError` when invalid.
    """
    options: dict[str, Any] = {"kind": spec} if isinstance(spec, str) else dict(spec or {})
    kind = options.get("kind")
    opts = {k: v for k, v in options.items() if k != "kind"}
    try:
        if kind == "heuristics":
            return Heuristics(int(opts.get("min_chars", 1)), tuple(opts.get("reject", SIGNS)))
        if kind == "schema":
            return SchemaCheck(opts.get("schema"))
        if kind == "self_consistency":
            return SelfConsistency(int(opts.get("samples", 3)), float(opts.get("agree", 0.66)),
                                   float(opts.get("temperature", 0.8)))
        if kind == "judge":
            if not isinstance(opts.get("model"), str):
                raise ValueError("judge check needs 'model' (a model or route name)")
            return Judge(resolve(opts["model"]), float(opts.get("threshold", 7)),
                         str(opts.get("prompt", JUDGE_PROMPT)), int(opts.get("max_tokens", 8)))
        if kind == "logprob":
            return LogprobConfidence(float(opts.get("threshold", 0.5)),
                                     bool(opts.get("request", False)),
                                     str(opts.get("missing", "pass")))
        if kind == "learned":
            return Learned(load_scorer(opts), float(opts.get("threshold", 0.5)))
    except (ImportError, AttributeError, TypeError) as exc:
        raise ValueError(f"{kind} check: {exc}") from None
    raise ValueError(f"unknown check kind {kind!r}; known: heuristics, schema, "
                     "self_consistency, judge, logprob, learned")
