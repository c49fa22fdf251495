"""`strategy: learned`: route each request with a router trained by ``llmswitch router train``.

```yaml
routes:
  smart:
    strategy: learned
    router: routers/routerbench.npz      # a versioned .npz router file (loads without pickle)
    candidates:                          # table model name -> target (model, alias or route)
      gpt-4-1106-preview: openai/gpt-4o
      mixtral-8x7b-chat: groq/mixtral
      mistral-7b-chat: local
    lambda: 150                          # quality per USD; default: the λ calibrated at training
```

The decision (chosen target, reason, and every candidate's predicted quality ``q:<model>`` and
cost ``usd:<model>``) lands in the trace like any route's. A cascade router file routes with its
base router here; its acceptance scorer is used through the cascade strategy's check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from llmswitch.models import Model
from llmswitch.request import Request
from llmswitch.routing.decision import Decision
from llmswitch.strategies.registry import RouteContext
from llmswitch.strategies.route import RouteModel


@dataclass
class LearnedSelector:
    """Decides with a `LearnedRouter` among the configured candidates."""

    router: Any
    targets: dict[str, str]
    lam: float

    def decide(self, request: Request) -> Decision:
        """Choose a target for the request's last user message."""
        d = self.router.decide(request.last_user_text, candidates=list(self.targets), lam=self.lam)
        scores = {f"q:{m}": q for m, q in d.predicted_quality.items()}
        scores.update({f"usd:{m}": c for m, c in d.predicted_cost.items()})
        return Decision(self.targets[d.chosen], f"{d.reason} → {self.targets[d.chosen]}", scores)

    def prepare(self, decision: Decision, request: Request) -> Request:
        """Send the request unchanged."""
        return request

    def finish(self, decision: Decision, text: str) -> str:
        """Return the answer unchanged."""
        return text

    def candidates(self) -> list[str]:
        """Every configured target."""
        return list(dict.fromkeys(self.targets.values()))


def build(ctx: RouteContext) -> Model:
    """Build the learned route from its config entry (see the module docstring)."""
    try:
        from llmswitch.routing.learned.io import RouterFileError, load_router
    except ImportError:
        raise ctx.fail("strategy 'learned' needs the router extra",
                       hint="pip install 'llmswitch[router]'") from None
    path = ctx.option("router")
    if not path:
        raise ctx.fail("'router' (a file from `llmswitch router train`) is required")
    try:
        router = load_router(str(path))
    except RouterFileError as exc:
        raise ctx.fail(str(exc), hint="train one with `llmswitch router train`") from None
    base = getattr(router, "base", router)
    mapping = ctx.option("candidates")
    if mapping is None:
        mapping = {m: m for m in base.models}
    if not isinstance(mapping, Mapping) or not mapping:
        raise ctx.fail("'candidates' must map the router's model names to targets")
    unknown = [m for m in mapping if m not in base.models]
    if unknown:
        raise ctx.fail(f"router {path} does not know {', '.join(map(str, unknown))}",
                       hint="its models: " + ", ".join(base.models))
    lam = ctx.option("lambda", router.lam)
    if not isinstance(lam, (int, float)) or lam < 0:
        raise ctx.fail("'lambda' must be a number >= 0 (quality per USD)")
    selector = LearnedSelector(base, {str(k): str(v) for k, v in mapping.items()}, float(lam))
    for name in selector.candidates():
        ctx.resolve(name)
    return RouteModel(ctx.name, "learned", selector, ctx.resolve)
