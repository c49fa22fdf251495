"""`strategy: privacy`: keep sensitive data away from cloud models.

```yaml
routes:
  private:
    strategy: privacy
    targets: [openai/gpt-4o-mini]   # where clean (or redacted) requests go
    action: redact                  # redact | local | block
    local: local/smollm2-135m       # action: local — where sensitive requests go instead
    detect: [email, phone, card, iban, national_id, secret, ip]   # default: all
```

- `redact`: sensitive values become placeholders (`[EMAIL_1]`) before the call; the answer's
  text and tool-call arguments get the original values back.
- `local`: requests with findings go to the `local` target; clean ones to `targets[0]`.
- `block`: requests with findings fail with `BadRequestError` listing the kinds found.

The trace records what happened (`llmswitch.privacy.action`, `llmswitch.privacy.detected`:
counts per kind), never the values.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from llmswitch.errors import BadRequestError, LLMSwitchError
from llmswitch.messages import Message, TextPart, ToolCall
from llmswitch.models import Model, replay_as_stream
from llmswitch.privacy.detectors import KINDS, counts, detect
from llmswitch.privacy.redact import Redactor
from llmswitch.request import Request
from llmswitch.results import Completion, StreamEvent
from llmswitch.strategies._tally import Tally, stream_through
from llmswitch.strategies.registry import RouteContext

ACTIONS = ("redact", "local", "block")


def _redact_message(message: Message, redactor: Redactor) -> Message:
    parts = tuple(TextPart(redactor.redact(p.text)) if isinstance(p, TextPart) else p
                  for p in message.parts)
    calls = tuple(ToolCall(c.id, c.name, redactor.redact(c.arguments))
                  for c in message.tool_calls)
    return Message(message.role, parts, calls, message.tool_call_id, message.name)


class PrivacyModel(Model):
    """Detects sensitive values, then redacts, reroutes to a local model, or blocks."""

    def __init__(self, name: str, target: Model, action: str = "redact",
                 local: Model | None = None, kinds: tuple[str, ...] = KINDS) -> None:
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {', '.join(ACTIONS)}")
        if action == "local" and local is None:
            raise ValueError("action: local needs 'local' (the model for sensitive requests)")
        unknown = set(kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"detect: unknown kind(s) {sorted(unknown)}; known: "
                             + ", ".join(KINDS))
        self.name, self.target, self.action = name, target, action
        self.local, self.kinds = local, kinds

    def _plan(self, request: Request) -> tuple[Tally, Model, Request, Redactor | None]:
        tally = Tally(self.name, "privacy", **{"llmswitch.privacy.action": self.action})
        found = [f for m in request.messages for f in detect(m.text, self.kinds)]
        found += [f for m in request.messages for c in m.tool_calls
                  for f in detect(c.arguments, self.kinds)]
        detected = counts(found)
        tally.span.attributes["llmswitch.privacy.detected"] = detected
        candidates = [self.target.name] + ([self.local.name] if self.local else [])
        tally.span.attributes["llmswitch.candidates"] = candidates
        if not found:
            tally.decide(self.target.name, "no sensitive data found")
            return tally, self.target, request, None
        kinds = ", ".join(f"{k}×{n}" for k, n in sorted(detected.items()))
        if self.action == "block":
            raise tally.fail(BadRequestError(
                f"routes.{self.name}: the request contains sensitive data ({kinds})",
                hint="remove it, or use action: redact or local"))
        if self.action == "local":
            assert self.local is not None
            tally.decide(self.local.name, f"sensitive data ({kinds}): kept local")
            return tally, self.local, request, None
        redactor = Redactor(self.kinds)
        redacted = request.with_messages([_redact_message(m, redactor) for m in request.messages])
        tally.decide(self.target.name, f"sensitive data ({kinds}): redacted before the call")
        tally.span.attributes["llmswitch.privacy.redacted"] = len(redactor.table)
        return tally, self.target, redacted, redactor

    async def complete(self, request: Request) -> Completion:
        """Protect the request, call, and restore redacted values in the answer."""
        tally, model, routed, redactor = self._plan(request)
        try:
            answer = tally.add(await model.complete(routed))
        except LLMSwitchError as exc:
            tally.failed(exc)
            raise tally.fail(exc) from None
        return tally.result(_restore(answer, redactor))

    async def stream(self, request: Request) -> AsyncIterator[StreamEvent]:
        """Stream the chosen model; redacted answers are restored and sent whole."""
        tally, model, routed, redactor = self._plan(request)
        try:
            if redactor is not None:
                answer = tally.add(await model.complete(routed))
                restored = tally.result(_restore(answer, redactor))
                async def done() -> Completion:
                    return restored

                async for event in replay_as_stream(done()):
                    yield event
                return
            async for event in stream_through(tally, model, routed):
                yield event
        except LLMSwitchError as exc:
            if exc not in tally.errors:
                tally.failed(exc)
            raise tally.fail(exc) from None

    def describe(self) -> dict[str, Any]:
        """The action and the models."""
        return {"name": self.name, "kind": "privacy", "action": self.action,
                "target": self.target.name, "local": self.local.name if self.local else None}


def _restore(answer: Completion, redactor: Redactor | None) -> Completion:
    if redactor is None:
        return answer
    calls = tuple(ToolCall(c.id, c.name, redactor.restore(c.arguments))
                  for c in answer.tool_calls)
    return answer.replace(text=redactor.restore(answer.text), tool_calls=calls)


OPTIONS = frozenset({"action", "detect", "local"})
"""Option keys this strategy reads beside `strategy` and `targets` (others are rejected)."""


def build(ctx: RouteContext) -> Model:
    """Build a privacy route from its entry."""
    targets = ctx.targets()
    if len(targets) != 1:
        raise ctx.fail("a privacy route needs exactly one target (where safe requests go)")
    local_name = ctx.option("local")
    local = ctx.resolve(str(local_name)) if local_name else None
    kinds = ctx.option("detect", list(KINDS))
    try:
        return PrivacyModel(ctx.name, targets[0], str(ctx.option("action", "redact")), local,
                            tuple(kinds))
    except ValueError as exc:
        raise ctx.fail(str(exc)) from None
