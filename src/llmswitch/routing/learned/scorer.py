"""A learned answer scorer for the orchestration cascade's ``learned`` check.

`load_answer_scorer(path)` reads a router file written by ``llmswitch router train`` and returns
an object with ``score(request, answer) -> float``: the estimated probability that ``answer`` (a
`Completion`) to ``request`` is acceptable. The estimate, most specific first:

1. a cascade file and a choice-letter answer from a model of the training table: the share of
   good answers among the training prompts (of the request's task, else all tasks) where that
   model answered the same letter, shrunk towards the model's mean, and refined by the answer
   memory when a near-duplicate training question is remembered (the answer matches its known
   good answer or not; see `llmswitch.routing.learned.memory`);
2. otherwise the router's predicted quality of that model for the prompt (text features, and the
   task one-hot when ``request.metadata["task"]`` names a training task);
3. for a model the router does not know, the mean predicted quality over its models.

Model names match a table model exactly, or by the last path segment (``openai/gpt-4`` →
``gpt-4``), or through ``aliases`` (answer model → table model).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from llmswitch.request import Request
from llmswitch.results import Completion
from llmswitch.routing.learned.io import load_router


class LearnedAnswerScorer:
    """Scores answers with a saved router (see the module doc)."""

    def __init__(self, router: Any, aliases: Mapping[str, str] | None = None) -> None:
        """Wrap a loaded `LearnedRouter` or `CascadeRouter`."""
        self.router = router
        self.base = getattr(router, "base", router)
        self.aliases = dict(aliases or {})

    def table_model(self, name: str) -> str | None:
        """The training-table model an answer's model name refers to, if any."""
        models = self.base.models
        for candidate in (self.aliases.get(name), name, name.rsplit("/", 1)[-1]):
            if candidate in models:
                return str(candidate)
        return None

    def score(self, request: Request, answer: Completion) -> float:
        """Estimated P(answer is acceptable), in [0, 1]."""
        raw_task = request.metadata.get("task")
        task = raw_task if isinstance(raw_task, str) else None
        model = self.table_model(answer.model)
        by_answer = getattr(self.router, "answer_probability", None)
        if model is not None and by_answer is not None:
            p = by_answer(task, model, answer.text, request.last_user_text)
            if p is not None:
                return float(min(max(p, 0.0), 1.0))
        pred = self.base.predict([request.last_user_text], [task])
        row = np.asarray(pred.quality[0], dtype=np.float64)
        value = row[self.base.models.index(model)] if model is not None else row.mean()
        return float(min(max(float(value), 0.0), 1.0))


def load_answer_scorer(path: str, aliases: Mapping[str, str] | None = None) -> object:
    """Load a router file as an answer scorer (``score(request, answer) -> float``).

    Raises `RouterFileError` (a `ValueError`) if the file is missing or not a router file.
    """
    return LearnedAnswerScorer(load_router(Path(path)), aliases)
