"""`Switch`: the entry point. Built from a config file, a dict or defaults; completes and
streams on any model, alias or route by name."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from llmswitch._sync import SyncBridge
from llmswitch.calls import CallRecord, activate, deactivate, is_trace_id, new_trace_id
from llmswitch.catalog.catalog import Catalog
from llmswitch.config.loader import config_from_dict, load_config
from llmswitch.config.schema import Config
from llmswitch.errors import BadRequestError, ConfigError, LLMSwitchError, ResponseError
from llmswitch.messages import MessagesInput, to_messages
from llmswitch.models import Model, collect
from llmswitch.providers.provider import TransportFactory
from llmswitch.request import Request, Settings, coerce_settings
from llmswitch.resolve import Resolver, extend_catalog
from llmswitch.results import Completion, StreamEnd, StreamEvent

if TYPE_CHECKING:
    from llmswitch.estimate import CallEstimate
    from llmswitch.plans import Plan, PlanRun


class Observer(Protocol):
    """Receives every top-level outcome (the ledger and trace store implement this).

    An observer may also define `on_end(record: CallRecord)`: then it is called instead of
    these two, for every outcome, including cancelled calls and streams the caller abandoned
    (`record.status`), with every attempt that reached a provider (`record.all_attempts()`).
    """

    def on_completion(self, name: str, request: Request, completion: Completion) -> None:
        """A call succeeded."""

    def on_error(self, name: str, request: Request, error: BaseException) -> None:
        """A call failed."""


class Switch:
    """Complete, stream and route across providers.

    >>> switch = Switch()                      # defaults: the embedded local model
    >>> switch = Switch("llmswitch.yaml")      # or a dict, or a Config
    >>> answer = await switch.complete("openai/gpt-4o-mini", "Hello", max_tokens=50)
    """

    def __init__(
        self,
        config: Config | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        *,
        env: Mapping[str, str] | None = None,
        transports: Mapping[str, TransportFactory] | None = None,
        observers: Sequence[Observer] | None = None,
        catalog: Catalog | None = None,
        models: Mapping[str, Model] | None = None,
        services: Mapping[str, Any] | None = None,
    ) -> None:
        if config is None or isinstance(config, (str, os.PathLike)):
            config = load_config(config, env=env)
        elif not isinstance(config, Config):
            config = config_from_dict(config, env=env)
        self.config = config
        self.catalog = extend_catalog(catalog or Catalog.shipped(), config)
        self._resolver = Resolver(config, self.catalog, env, transports)
        self._resolver.models.update(models or {})
        self._resolver.services.update(services or {})
        _check_routes(config, self.catalog, self._resolver)
        # `None`: the config's observers (ledger, trace store, OpenTelemetry); `[]`: none.
        self.observers = list(observers) if observers is not None else _default_observers(
            config, env)
        self._bridge = SyncBridge()
        self._live: dict[str, CallRecord] = {}

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kw: Any) -> Switch:
        """A switch configured by a YAML file."""
        return cls(Path(path), **kw)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], **kw: Any) -> Switch:
        """A switch configured by a dict of the YAML's shape."""
        return cls(data, **kw)

    def model(self, name: str | None = None) -> Model:
        """The model (or route) for a name; `None` is the config's default model."""
        return self._resolver.model(name or self.config.default_model)

    def request(
        self,
        messages: MessagesInput,
        *,
        system: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        **settings: Any,
    ) -> Request:
        """Build a request from a prompt or messages plus settings (checked by name)."""
        try:
            return Request(
                to_messages(messages, system),
                Settings(**coerce_settings(settings)),
                dict(metadata or {}),
            )
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise BadRequestError(f"invalid request: {exc}") from None

    async def complete(
        self,
        model: str | None,
        messages: MessagesInput,
        /,
        *,
        tags: Mapping[str, str] | None = None,
        trace_id: str | None = None,
        **kw: Any,
    ) -> Completion:
        """Answer in one piece. `model` is `provider/model`, an alias, a route or `None`.

        `tags` are stored with the call's ledger rows (`key_id` and `run_id` get
        their own columns); `trace_id` (32 hex characters) names the call in the ledger and
        trace store, generated when not given, and is returned as `Completion.trace_id`.
        """
        name = model or self.config.default_model
        record = self._open(name, self.request(messages, **kw), tags, trace_id)
        token = activate(record)
        try:
            completion = await self.model(name).complete(record.request)
        except BaseException as exc:
            self._close(record, exc)
            raise
        finally:
            deactivate(token)
        if completion.trace_id != record.trace_id:  # provider models set it already
            completion = completion.replace(trace_id=record.trace_id)
        record.succeed(completion)
        self._notify(record)
        return completion

    async def stream(
        self,
        model: str | None,
        messages: MessagesInput,
        /,
        *,
        tags: Mapping[str, str] | None = None,
        trace_id: str | None = None,
        **kw: Any,
    ) -> AsyncIterator[StreamEvent]:
        """Answer as events: text and tool-call deltas, usage, and a final `StreamEnd`.

        Leaving the stream early (`aclose()`, `break` then garbage collection) stops the
        provider call and records its attempts as `abandoned`, billed up to then.
        """
        name = model or self.config.default_model
        record = self._open(name, self.request(messages, **kw), tags, trace_id)
        try:
            events = self.model(name).stream(record.request)
        except BaseException as exc:
            self._close(record, exc)
            raise
        try:
            while True:
                token = activate(record)
                try:
                    event = await anext(events)
                except StopAsyncIteration:
                    break
                finally:
                    deactivate(token)
                if isinstance(event, StreamEnd):
                    completion = event.completion
                    if completion.trace_id != record.trace_id:
                        completion = completion.replace(trace_id=record.trace_id)
                        event = StreamEnd(completion)
                    record.succeed(completion)
                    self._notify(record)
                yield event
        except BaseException as exc:
            if not record.ended:
                await self._aclose_events(events, record)
                self._close(record, exc)
            raise
        finally:
            if not record.ended:  # the model's stream ended without `StreamEnd`
                self._close(record, ResponseError("the stream ended without a final result"))

    @staticmethod
    async def _aclose_events(events: AsyncIterator[StreamEvent], record: CallRecord) -> None:
        """Stop the model's stream now (not at garbage collection), so its provider call
        closes and its attempts are marked while the record is still open."""
        closer = getattr(events, "aclose", None)
        if closer is None:
            return
        token = activate(record)
        try:
            await closer()
        except Exception:  # the caller's own exception is what matters here
            pass
        finally:
            deactivate(token)

    def _open(self, name: str, request: Request, tags: Mapping[str, str] | None,
              trace_id: str | None) -> CallRecord:
        if trace_id is None:
            trace_id = new_trace_id()
        elif not is_trace_id(trace_id):
            raise BadRequestError(f"invalid trace_id {trace_id!r}",
                                  hint="32 lowercase hex characters, or leave it out")
        if tags is None:
            tags = {}
        elif not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
            raise BadRequestError("tags must map strings to strings")
        record = CallRecord(name, request, trace_id, tags)
        self._live[trace_id] = record
        return record

    def estimate(self, model: str | None, messages: MessagesInput, /, *,
                 default_max_output: int | None = None, **kw: Any) -> CallEstimate:
        """What asking `model` would cost at most, before asking: input tokens counted by the
        tokenizer, the maximum output (`max_tokens`, else the models' limit, else
        `default_max_output`) and the cost of both at the dearest model the name can be served
        by (`None` if a price is unknown)."""
        from llmswitch.estimate import DEFAULT_MAX_OUTPUT, estimate_call

        name = model or self.config.default_model
        self.model(name)  # an unknown name fails here, with suggestions
        return estimate_call(name, self.request(messages, **kw), self.config, self.catalog,
                             default_max_output or DEFAULT_MAX_OUTPUT)

    @property
    def providers(self) -> tuple[str, ...]:
        """The providers this switch can reach: the built-in ones and the configured ones."""
        from llmswitch.providers.specs import SPECS

        return tuple(dict.fromkeys([*SPECS, *self.config.providers]))

    def live_call(self, trace_id: str) -> CallRecord | None:
        """The record of a call still running (by its trace id): its attempts so far, e.g. the
        provider and model serving a stream (`record.serving`). `None` once it has ended."""
        return self._live.get(trace_id)

    async def breaker_states(self) -> dict[str, str]:
        """The circuit-breaker state of every target of a route that has a breaker
        (`fallback`, `loadbalance`): target name -> `closed`, `open` or `half_open`, read from
        the breaker store (in-process, or the shared one a gateway passed in `services`)."""
        from llmswitch.resilience.breaker import BreakerPolicy
        from llmswitch.resilience.services import resilience_of

        store = resilience_of(self._resolver.services).store
        out: dict[str, str] = {}
        for route in self.config.routes.values():
            if route.strategy not in ("fallback", "loadbalance"):
                continue
            policy = BreakerPolicy.from_option(route.options().get("breaker"))
            if policy is None:
                continue
            for target in route.targets:
                name = target.get("model") if isinstance(target, dict) else target
                if isinstance(name, str) and name not in out:
                    out[name] = await store.state(name, policy)
        return out

    def _close(self, record: CallRecord, error: BaseException) -> None:
        """End a call that raised: tag the error with the trace id and notify observers."""
        if isinstance(error, LLMSwitchError) and error.trace_id is None:
            error.trace_id = record.trace_id
        record.fail(error)
        self._notify(record)

    def complete_sync(self, model: str | None, messages: MessagesInput, /, **kw: Any) -> Completion:
        """`complete` for synchronous code."""
        return self._bridge.run(self.complete(model, messages, **kw))

    def stream_sync(
        self, model: str | None, messages: MessagesInput, /, **kw: Any
    ) -> Iterator[StreamEvent]:
        """`stream` for synchronous code."""
        return self._bridge.iterate(self.stream(model, messages, **kw))

    async def stream_text(
        self, model: str | None, messages: MessagesInput, /, **kw: Any
    ) -> Completion:
        """Stream and return the completion (for callers that only want streaming's TTFT)."""
        return await collect(self.stream(model, messages, **kw))

    async def run_plan(self, plan: Plan | str | os.PathLike[str],
                       inputs: Mapping[str, str] | None = None, **kw: Any) -> PlanRun:
        """Run a workflow plan (a `Plan` or its file) on this switch; keyword options as
        `llmswitch.plans.run_plan` (run_dir, concurrency, tools, approve). See docs/plans.md."""
        from llmswitch.plans import run_plan

        return await run_plan(self, plan, inputs, **kw)

    def _notify(self, record: CallRecord) -> None:
        self._live.pop(record.trace_id, None)
        for observer in self.observers:
            on_end = getattr(observer, "on_end", None)
            if on_end is not None:
                on_end(record)
            elif record.completion is not None:
                observer.on_completion(record.name, record.request, record.completion)
            elif record.status == "error" and record.error is not None:
                observer.on_error(record.name, record.request, record.error)

    async def aclose(self) -> None:
        """Close every model and provider client this switch opened."""
        for model in list(self._resolver.models.values()):
            await model.aclose()
        for provider in self._resolver.providers.values():
            await provider.aclose()
        for observer in self.observers:
            closer = getattr(observer, "aclose", None)
            if closer is not None:
                await closer()

    def close(self) -> None:
        """Close from synchronous code (also stops the sync bridge's thread)."""
        self._bridge.close(self.aclose())

    async def __aenter__(self) -> Switch:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> Switch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _check_routes(config: Config, catalog: Catalog, resolver: Resolver) -> None:
    """Reject bad routes when the config loads, not on first use: unknown targets and cycles,
    then every route is built (no I/O), which checks each strategy's own options and the models
    its steps name (a chain step, a judge, a router file)."""
    from llmswitch.resilience.routecheck import check_routes

    check_routes(config, catalog, set(resolver.models))
    for name in config.routes:
        try:
            resolver.model(name)
        except ConfigError:
            raise
        except LLMSwitchError as exc:  # e.g. an unknown model named inside a chain step
            raise ConfigError(f"{config.source}: routes.{name}: {exc}") from None


def _default_observers(config: Config, env: Mapping[str, str] | None) -> list[Observer]:
    from llmswitch.observe.setup import observers_for

    return list(observers_for(config, env))
