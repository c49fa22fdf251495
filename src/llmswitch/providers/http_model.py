"""`HttpModel`: one provider model reached over HTTP, for any adapter. All the I/O is here."""

from __future__ import annotations

import asyncio
import contextvars
import json
import re
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

import orjson

from llmswitch.adapters.base import Adapter, HttpCall, Reply, StreamParser, Target
from llmswitch.adapters.framing import FrameDecoder
from llmswitch.adapters.http_errors import body_snippet
from llmswitch.calls import ATTEMPT_ID, current_call, interruption_status, is_interruption
from llmswitch.capabilities import prepare_request
from llmswitch.catalog.pricing import cost_usd
from llmswitch.errors import (
    BadRequestError,
    LLMSwitchError,
    ModelNotFoundError,
    ResponseError,
    TimeoutError,
)
from llmswitch.models import Model
from llmswitch.observe.trace import Span
from llmswitch.providers.provider import Provider
from llmswitch.providers.transport import (
    HttpRequest,
    HttpResponse,
    join_url,
    quote_url,
    url_with_query,
)
from llmswitch.request import Request
from llmswitch.results import (
    Completion,
    StreamEnd,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    Usage,
    UsageUpdate,
)

T = TypeVar("T")
FREE_PROVIDERS = frozenset({"ollama", "local"})


class UnknownPriceWarning(UserWarning):
    """A model's price is not in the catalog: its cost is reported as `None`."""


class HttpModel(Model):
    """A model of a provider, spoken to through an adapter. Usage, cost and trace on every call."""

    def __init__(
        self,
        name: str,
        provider: Provider,
        adapter: Adapter,
        target: Target,
        suggest: Callable[[str], Sequence[str]] | None = None,
    ) -> None:
        self.name = name
        self.provider = provider
        self.adapter = adapter
        self.target = target
        self._suggest = suggest
        self._warned_price = False
        self._span_of: tuple[Target, str, dict[str, Any]] | None = None

    @property
    def id(self) -> str:
        """`provider/model`."""
        return f"{self.target.provider}/{self.target.model}"

    def describe(self) -> dict[str, Any]:
        """Name, provider and wire model."""
        return {"name": self.name, "kind": "model", "provider": self.target.provider,
                "model": self.target.model}

    async def complete(self, request: Request) -> Completion:
        """One non-streaming call, bounded by `attempt_limit` from send to the last byte."""
        span = self._span(request)
        started = time.perf_counter()
        try:
            request, call = self._prepared(request, span, stream=False)
            response, body, ttft = await _Budget(self.attempt_limit(request)).run(
                self._exchange(call, span, started))
            if response.status >= 400:
                raise self.adapter.error(response.status, response.headers, body, self.target)
            reply = self.adapter.parse(body, self.target)
        except BaseException as exc:
            if is_interruption(exc):
                self._interrupted(exc, span, started, request, None, ())
                raise
            error = self._failed(exc, span, started, None)
            if error is exc:
                raise
            raise error from exc
        return self._completion(reply, span, started, ttft)

    def attempt_limit(self, request: Request) -> float:
        """Seconds one attempt may spend waiting on the provider: the provider's `timeout`,
        or the call's `timeout` when smaller."""
        limit = self.provider.config.timeout
        asked = request.settings.timeout
        return asked if asked is not None and asked < limit else limit

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """One streaming call; ends with `StreamEnd` or raises (never a silent truncation).

        `attempt_limit` bounds the time spent waiting on the provider (sending, then every
        read), never the consumer's own time between events, so a slow reader is not
        mistaken for a slow provider; `providers.<name>.stall_timeout` bounds each silence.
        """
        span = self._span(request)
        started = time.perf_counter()
        ttft: float | None = None
        parser = self.adapter.stream_parser(request, self.target)
        delivered: list[str] = []  # text and tool-call pieces, to estimate a cut stream's usage
        try:
            request, call = self._prepared(request, span, stream=True)
            budget = _Budget(self.attempt_limit(request))
            stall = min(self.provider.config.stall_timeout, budget.seconds)
            response = await budget.run(self._send(call, span, stall))
            try:
                source = await self._opening(response, budget)
                ended = False
                while not ended:  # one loop, not a generator per layer: this runs per token
                    events, ended = await self._next_events(source, response, parser, budget)
                    for item in events:
                        if isinstance(item, TextDelta):
                            delivered.append(item.text)
                        elif isinstance(item, ToolCallDelta):
                            delivered.append((item.name or "") + item.arguments)
                        else:
                            yield item
                            continue
                        if ttft is None:
                            ttft = _ms(started)
                        yield item
                reply = source if isinstance(source, Reply) else parser.finish()
            finally:
                await response.aclose()
        except BaseException as exc:
            if is_interruption(exc):
                self._interrupted(exc, span, started, request, parser.usage, delivered)
                raise
            error = self._stream_failed(exc, span, started, request, parser.usage, delivered)
            if error is exc:
                raise
            raise error from exc
        yield UsageUpdate(reply.usage)
        yield StreamEnd(self._completion(reply, span, started, ttft))

    def _prepared(self, request: Request, span: Span, stream: bool) -> tuple[Request, HttpCall]:
        """The request as sent (capabilities emulated where needed) and its HTTP call."""
        request, emulated = prepare_request(request, self.target.card)
        if emulated:
            span.attributes["llmswitch.emulated"] = emulated
        try:
            return request, self.adapter.build(request, self.target, stream=stream)
        except LLMSwitchError:
            raise
        except Exception as exc:
            raise _unsendable(exc) from exc

    async def _opening(self, response: HttpResponse, budget: _Budget) -> FrameDecoder | Reply:
        """The decoder for a streamed response; the reply when the server answered in one
        piece; raises for an error status or a page that is not a stream."""
        if response.status >= 400:
            body = await budget.run(response.read())
            raise self.adapter.error(response.status, response.headers, body, self.target)
        content_type = response.headers.get("content-type", "").lower()
        if content_type.startswith("application/json") and self.adapter.plain_json_stream:
            # The server ignored `stream: true` and answered in one piece.
            return self.adapter.parse(await budget.run(response.read()), self.target)
        if content_type.startswith("text/html"):
            body = await budget.run(response.read())
            raise ResponseError(f"expected a stream, got {content_type}: {body_snippet(body)!r}")
        return self.adapter.decoder(content_type)

    @staticmethod
    async def _next_events(source: FrameDecoder | Reply, response: HttpResponse,
                           parser: StreamParser, budget: _Budget
                           ) -> tuple[Iterable[StreamEvent], bool]:
        """The events of the next piece of the body (parsed as they are taken, so the events
        before a frame that raises are delivered first), and whether the body is done."""
        if isinstance(source, Reply):
            return _replay_reply(source), True
        chunk = await budget.run(response.chunk())
        frames = source.feed(chunk) if chunk else source.close()
        return (event for frame in frames for event in parser.feed(frame)), not chunk

    async def _exchange(self, call: HttpCall, span: Span,
                        started: float) -> tuple[HttpResponse, bytes, float]:
        """Send and read the whole body: the response, the body and the time to the headers.
        No read timeout of the transport's own: a whole answer is silent until it is ready,
        and the attempt's budget bounds it."""
        response = await self._send(call, span, None)
        try:
            ttft = _ms(started)
            body = await response.read()
        finally:
            await response.aclose()
        return response, body, ttft

    async def _send(self, call: HttpCall, span: Span,
                    read_timeout: float | None) -> HttpResponse:
        transport = self.provider.transport()
        headers = {"content-type": "application/json", "accept": "application/json",
                   **self.provider.auth_headers(self.target.model), **call.headers}
        url = quote_url(call.url or join_url(self.provider.base_url, call.path))
        try:
            body = b"" if call.body is None else request_body(call.body)
        except (TypeError, ValueError) as exc:
            raise _unsendable(exc) from exc
        request = HttpRequest(call.method, url_with_query(url, call.query), headers, body)
        request = await self.provider.sign(request)
        registered = False

        def sent() -> None:  # from here on the provider may bill the attempt
            nonlocal registered
            if not registered:
                registered = True
                _register(span)

        response = await transport.send(request, read_timeout=read_timeout, on_sent=sent)
        sent()  # a transport that does not report it: an answer proves the request went out
        return response

    def _span(self, request: Request) -> Span:
        known = self._span_of
        if known is None or known[0] is not self.target:  # the name and fixed attributes
            target = self.target
            known = self._span_of = (target, f"chat {target.model}", {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": target.provider,
                "gen_ai.request.model": target.model,
            })
        s = request.settings
        attrs = known[2].copy()
        if s.temperature is not None:
            attrs["gen_ai.request.temperature"] = s.temperature
        if s.top_p is not None:
            attrs["gen_ai.request.top_p"] = s.top_p
        if s.max_tokens is not None:
            attrs["gen_ai.request.max_tokens"] = s.max_tokens
        if s.seed is not None:
            attrs["gen_ai.request.seed"] = s.seed
        return Span(known[1], "attempt", attrs)

    def _completion(
        self, reply: Reply, span: Span, started: float, ttft: float | None
    ) -> Completion:
        latency = _ms(started)
        usage = reply.usage
        cost = self._cost(usage)
        a = span.attributes
        _set_usage(a, usage, cost)
        a["gen_ai.response.finish_reasons"] = [reply.finish_reason]
        if reply.response_model:
            a["gen_ai.response.model"] = reply.response_model
        a["llmswitch.latency_ms"] = latency
        if ttft is not None:
            a["llmswitch.ttft_ms"] = ttft
        span.finish(started)
        return Completion(
            text=reply.text,
            finish_reason=reply.finish_reason,
            usage=reply.usage,
            cost_usd=cost,
            provider=self.target.provider,
            model=self.target.model,
            tool_calls=reply.tool_calls,
            latency_ms=latency,
            ttft_ms=ttft if ttft is not None else latency,
            trace=span,
            refusal=reply.refusal,
            trace_id=record.trace_id if (record := current_call()) is not None else "",
            raw=reply.raw,
        )

    def _cost(self, usage: Usage) -> float | None:
        cost = cost_usd(self.target.card, usage)
        if cost is None and self.target.card is None and self.target.provider in FREE_PROVIDERS:
            return 0.0  # models on this machine cost nothing unless the config prices them
        if cost is None and not self._warned_price:
            self._warned_price = True
            warnings.warn(
                f"{self.id} has no price in the catalog: its cost is reported as unknown "
                "(add prices under models in llmswitch.yaml)",
                UnknownPriceWarning,
                stacklevel=3,
            )
        return cost

    def _estimate(self, request: Request, reported: Usage | None,
                  delivered: Sequence[str]) -> Usage:
        """Usage of an attempt that ended early: what the provider reported, else input counted
        by the tokenizer and output counted from the text delivered (an estimate)."""
        from llmswitch.tokens import count_text, estimate_request_tokens

        card = self.target.card or self.target.model
        input_tokens = (reported.input_tokens if reported and reported.input_tokens
                        else estimate_request_tokens(request, card))
        output = (reported.output_tokens if reported and reported.output_tokens
                  else count_text("".join(delivered), card) if delivered else 0)
        return Usage(input_tokens=input_tokens, output_tokens=output,
                     cached_input_tokens=reported.cached_input_tokens if reported else 0)

    def _stream_failed(self, exc: BaseException, span: Span, started: float,
                       request: Request, reported: Usage, delivered: Sequence[str]
                       ) -> BaseException:
        """The error of a failed stream; one cut after its first token is billed for what it
        streamed (reported usage, else estimated) and marked `llmswitch.stream_cut`."""
        estimated = bool(delivered) and not reported.output_tokens
        usage = self._estimate(request, reported, delivered) if estimated else reported
        error = self._failed(exc, span, started, usage)
        if delivered:
            span.attributes["llmswitch.stream_cut"] = True
            if estimated:
                span.attributes["llmswitch.usage_estimated"] = True
        return error

    def _interrupted(self, exc: BaseException, span: Span, started: float, request: Request,
                     reported: Usage | None, delivered: Sequence[str]) -> None:
        """Close the span of an attempt the caller cancelled or stopped reading, with the usage
        billed up to then (reported, else estimated and flagged)."""
        try:
            status = interruption_status(exc)
            span.status = status
            span.error = {"type": status, "message": f"the attempt was {status} by the caller"}
            if span.attributes.get(ATTEMPT_ID) is None:
                return  # never sent: nothing was billed
            usage = reported if reported is not None and reported.output_tokens else None
            if usage is None:
                usage = self._estimate(request, reported, delivered)
                span.attributes["llmswitch.usage_estimated"] = True
            _set_usage(span.attributes, usage, cost_usd(self.target.card, usage))
        finally:
            span.finish(started)

    def _failed(
        self, exc: BaseException, span: Span, started: float, usage: Usage | None
    ) -> BaseException:
        error = _as_llmswitch_error(exc)
        if error is None:
            return exc
        error.provider = error.provider or self.target.provider
        error.model = error.model or self.target.model
        if isinstance(error, ModelNotFoundError) and not error.suggestions and self._suggest:
            error = ModelNotFoundError(
                error.message,
                suggestions=[x for x in self._suggest(self.id) if x != self.id],
                provider=error.provider, model=error.model, status=error.status, body=error.body,
            )
        if usage is not None and usage.total_tokens and error.usage is None:
            error.usage = usage
            error.cost_usd = cost_usd(self.target.card, usage)
        if error.usage is not None:
            _set_usage(span.attributes, error.usage, error.cost_usd)
        if error.status is not None:
            span.attributes["http.response.status_code"] = error.status
        span.attributes["error.type"] = error.type
        self.provider.scrub(error, exc)  # provider text may quote our keys (scrub.py)
        error.trace = span.fail(error).finish(started)
        return error


_JSON_OPTIONS = (orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS
                 | orjson.OPT_PASSTHROUGH_DATETIME)
# Where orjson's text may differ from json's: NaN and Infinity (orjson writes null; json with
# allow_nan=False refuses them) and numbers either writes with an exponent (1e-05 is 0.00001
# to orjson, 1e+16 is 1e16; orjson writes an exponent as a digit, `e`, then a digit or `-`).
# Text in strings can match too ("1e5"): such bodies take json's path, which is only slower;
# a bare `e-` ("claude-3", "re-run") does not.
_EXPONENT = re.compile(rb"[0-9]e[-0-9]")


def request_body(body: Any) -> bytes:
    """`json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)` as
    UTF-8, byte for byte (and its errors), through orjson when that gives the same bytes:
    1.2 instead of 3.9 µs for a two-message body. orjson takes only exact built-in types
    here (subclasses, dataclasses, big integers, non-string keys and lone surrogates go to
    json), except that it writes a UUID or an Enum member, which json refuses."""
    try:
        out = orjson.dumps(body, option=_JSON_OPTIONS)
    except orjson.JSONEncodeError:
        out = b"null"
    if b"null" in out or b"0.0000" in out or _EXPONENT.search(out) is not None:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"),
                          allow_nan=False).encode()
    return out


def _register(span: Span) -> None:
    """Count the attempt in the running top-level call (if any) before it is sent."""
    record = current_call()
    if record is not None:
        record.register(span)


def _unsendable(exc: Exception) -> BadRequestError:
    """A request that cannot be built or encoded (a NaN, a Python object in a tool's schema or
    in `extra`): every provider would refuse it alike, so it is not retried elsewhere."""
    return BadRequestError(f"could not build the request ({type(exc).__name__}: {exc})",
                           hint="every value in the request must be JSON: no NaN, Infinity "
                           "or Python objects")


def _as_llmswitch_error(exc: BaseException) -> LLMSwitchError | None:
    """Transports raise typed errors already; what else can reach here becomes one."""
    if isinstance(exc, LLMSwitchError):
        return exc
    if isinstance(exc, asyncio.TimeoutError):
        return TimeoutError(f"no complete answer in time ({type(exc).__name__})",
                            hint="raise the timeout or try another model")
    if isinstance(exc, Exception):
        # A reply our adapter could not read (wrong types, missing fields): the provider's
        # answer was malformed, which is retryable; never a raw Python error for the caller.
        return ResponseError(f"could not read the response ({type(exc).__name__}: {exc})")
    return None


def _timed_out(seconds: float) -> TimeoutError:
    return TimeoutError(f"no complete answer within {seconds:g}s",
                        hint="raise providers.<name>.timeout or the call's timeout, "
                        "or try another model")


def _replay_reply(reply: Reply) -> list[StreamEvent]:
    events: list[StreamEvent] = [TextDelta(reply.text)] if reply.text else []
    events.extend(ToolCallDelta(i, c.id, c.name, c.arguments)
                  for i, c in enumerate(reply.tool_calls))
    return events


class _Budget:
    """An attempt's time limit, spent only while waiting on the provider: applied to each
    await separately (never across a `yield`, so the consumer's time is not counted).

    What `asyncio.timeout` does, with one timer and no context object per await (this runs
    for every read of every stream)."""

    __slots__ = ("expired", "left", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.left = seconds
        self.expired = False

    async def run(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable` within what is left; `TimeoutError` when the time runs out."""
        left = self.left
        if left <= 0:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
            raise _timed_out(self.seconds)
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        start = loop.time()
        # No copy of the caller's context: a cancelled timer stays in the loop's heap for a
        # while, and a copied context would keep the call's record and request alive with it.
        timer = loop.call_at(start + left, self._expire, task, context=contextvars.Context())
        try:
            return await awaitable
        except asyncio.CancelledError:
            if self.expired and task is not None and task.uncancel() == 0:
                raise _timed_out(self.seconds) from None
            raise
        finally:
            timer.cancel()
            self.left = left - (loop.time() - start)

    def _expire(self, task: asyncio.Task[Any] | None) -> None:
        self.expired = True
        if task is not None:
            task.cancel()


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _set_usage(attributes: dict[str, Any], usage: Usage, cost: float | None) -> None:
    """An attempt's usage and cost attributes, set in place (this runs on every call)."""
    attributes["gen_ai.usage.input_tokens"] = usage.input_tokens
    attributes["gen_ai.usage.output_tokens"] = usage.output_tokens
    attributes["gen_ai.usage.cached_input_tokens"] = usage.cached_input_tokens
    attributes["gen_ai.usage.cache_write_tokens"] = usage.cache_write_tokens
    attributes["gen_ai.usage.reasoning_tokens"] = usage.reasoning_tokens
    attributes["llmswitch.cost_usd"] = cost
