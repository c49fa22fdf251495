"""Learned cost-quality routers trained on outcome tables.

``LearnedRouter.decide(prompt, candidates)`` returns a `LearnedDecision` with each candidate's
predicted quality and cost; the choice maximises ``quality − λ·cost`` (`policy.choose`). Routers
save to versioned ``.npz`` files that load without pickle (`save_router`, `load_router`).
`load_answer_scorer` turns a saved (cascade) router into the ``score(request, answer)`` scorer of
the orchestration cascade's ``learned`` check.
Needs the ``router`` extra (NumPy, SciPy). Training lives in `llmswitch.training`; nothing
here imports it, outcome tables or scikit-learn.
"""

from llmswitch.routing.learned.io import RouterFileError, load_router, save_router
from llmswitch.routing.learned.policy import calibrate_lambda, choose
from llmswitch.routing.learned.router import (
    KINDS,
    LearnedDecision,
    LearnedRouter,
    Prediction,
)
from llmswitch.routing.learned.scorer import LearnedAnswerScorer, load_answer_scorer

__all__ = [
    "KINDS",
    "LearnedAnswerScorer",
    "LearnedDecision",
    "LearnedRouter",
    "Prediction",
    "RouterFileError",
    "calibrate_lambda",
    "choose",
    "load_answer_scorer",
    "load_router",
    "save_router",
]
