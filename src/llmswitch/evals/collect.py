"""``router collect``: build an outcome table by running candidate models on a user's prompts.

Not finished: the command validates its inputs and then stops with a clear message. The plan (see
``docs/routing.md``): for each prompt and model, call the model through a ``Switch`` built from the
user's config (so every call is priced and lands in the spend ledger), grade the answer (exact
match, a test command, or a judge model), append one JSON line per prompt to the output table,
and skip prompts already present there (resumable), with a rich progress bar.
"""

from __future__ import annotations

from pathlib import Path


class CollectError(RuntimeError):
    """Collection could not proceed (the message says why)."""


GRADERS = ("exact", "contains", "command:", "judge:")


def run_collect(
    prompts: str,
    models: list[str],
    grader: str,
    out: str,
    config_path: str | None,
    concurrency: int,
) -> None:
    """Validate the arguments; the collection loop itself is not implemented yet."""
    if not Path(prompts).is_file():
        raise CollectError(f"prompts file {prompts!r} does not exist")
    if not models:
        raise CollectError("--models needs at least one model name")
    if not grader.startswith(GRADERS):
        raise CollectError(
            f"unknown grader {grader!r}; use exact, contains, command:CMD or judge:MODEL"
        )
    raise CollectError(
        "router collect is not implemented in this version yet; build the table with your own "
        "script in the format of docs/routing.md (one JSON line per prompt)"
    )
