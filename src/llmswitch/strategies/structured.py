"""`strategy: structured`: answers validated against a JSON Schema, with bounded repair.

```yaml
routes:
  extract:
    strategy: structured
    targets: [local/smollm2-135m]   # one target (a model or route)
    schema: {type: object, properties: {name: {type: string}}, required: [name]}
    mode: auto                      # auto | native | tool | prompt
    retries: 2                      # corrective retries after the first attempt
```

Without `schema`, the request's own `response_format` schema is used (e.g. `llmswitch chat
extract "..." --schema schema.json`). The answer's text is the validated JSON; every attempt
is in the trace and in the summed cost. See `llmswitch.structured` for the Python API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmswitch.catalog.card import ModelCard
from llmswitch.errors import BadRequestError
from llmswitch.models import Model
from llmswitch.request import Request
from llmswitch.results import Completion
from llmswitch.routing.capability import card_for
from llmswitch.schemacheck import SchemaProblem, compile_schema
from llmswitch.strategies.registry import RouteContext
from llmswitch.structured import MODES, Mode, Schema, run_structured


class StructuredModel(Model):
    """Wraps a model so its answers are JSON valid against a schema."""

    def __init__(self, name: str, inner: Model, schema: Mapping[str, Any] | None,
                 mode: Mode = "auto", retries: int = 2, card: ModelCard | None = None) -> None:
        self.name, self.inner, self.schema = name, inner, schema
        self.mode, self.retries, self.card = mode, retries, card
        self._shape: Schema[Any] | None = Schema.of(schema) if schema is not None else None
        # Without its own schema this route validates the request's: no second check needed.
        self.enforces_schema = schema is None

    async def complete(self, request: Request) -> Completion:
        """Ask for the schema and return the first valid answer (`SchemaError` otherwise)."""
        fmt = request.settings.response_format
        if self._shape is not None:
            shape = self._shape
        elif fmt.schema is not None:  # checked when the request was made
            shape = Schema.of_format(fmt)
        else:
            raise BadRequestError(f"routes.{self.name}: no schema: set 'schema' on the route "
                                  "or send a response_format with a JSON Schema")
        base = request.with_settings(response_format="text")
        result = await run_structured(self.inner, base, shape, mode=self.mode,
                                      retries=self.retries, card=self.card,
                                      where=f"routes.{self.name}", span_name=self.name)
        return result.completion

    def describe(self) -> dict[str, Any]:
        """The wrapped model and mode."""
        return {"name": self.name, "kind": "structured", "inner": self.inner.describe(),
                "mode": self.mode}


OPTIONS = frozenset({"mode", "retries", "schema"})
"""Option keys this strategy reads beside `strategy` and `targets` (others are rejected)."""


def build(ctx: RouteContext) -> Model:
    """Build a structured-output route from its entry."""
    if len(ctx.route.targets) != 1:
        raise ctx.fail("a structured route needs exactly one target")
    target = str(ctx.route.targets[0])
    schema = ctx.option("schema")
    if schema is not None:
        try:
            compile_schema(schema)
        except SchemaProblem as exc:
            raise ctx.fail(str(exc.within("schema"))) from None
    mode = ctx.option("mode", "auto")
    if mode not in MODES:
        raise ctx.fail(f"mode {mode!r} is not one of {', '.join(MODES)}")
    retries = ctx.option("retries", 2)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ctx.fail("'retries' must be a whole number ≥ 0")
    return StructuredModel(ctx.name, ctx.targets()[0], schema, mode, retries,
                           card_for(target, ctx.config, ctx.catalog))
