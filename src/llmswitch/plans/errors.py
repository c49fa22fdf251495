"""Errors of plans. A bad plan is a `PlanError` (a `ConfigError`: nothing was spent); the
others end one stream and are recorded in its manifest entry."""

from __future__ import annotations

from llmswitch.errors import ConfigError, LLMSwitchError


class PlanError(ConfigError):
    """The plan file, its inputs or its run folder are invalid. Raised before any call."""

    type = "plan"


class BudgetExceededError(LLMSwitchError):
    """A stream (or the run) would spend more than its `budget_usd`."""

    type = "budget_exceeded"


class StepLimitError(LLMSwitchError):
    """An agent stream used `max_steps` model calls without a final answer."""

    type = "max_steps"


class RejectedError(LLMSwitchError):
    """A person rejected a checkpointed stream's output."""

    type = "rejected"
