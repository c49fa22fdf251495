"""The answer memory: near-duplicate questions, answers compared by content, learned relations."""

import random

import numpy as np
import pytest

from llmswitch.evals.replay import default_lambdas
from llmswitch.evals.table import OutcomeTable
from llmswitch.messages import Message
from llmswitch.request import Request
from llmswitch.results import Completion, Usage
from llmswitch.routing.learned import load_answer_scorer, load_router, save_router
from llmswitch.routing.learned.cascade import REMEMBERED
from llmswitch.routing.learned.memory import (
    SAME_QUESTION,
    AnswerMemory,
    canonical_answer,
    question_of,
    relation,
)
from llmswitch.training.cascade import train_cascade
from llmswitch.training.replay import replay_table

MODELS = ("strong", "cheap", "cheaper")
INSTRUCTION = 'Print only a single choice from "A" or "B" without explanation. Answer:'
NAMES = ["Kevin", "Derrick", "Maria", "Sarah", "Ian", "Dennis", "Kyle", "Logan", "Anna", "Beth"]
VERBS = ["loved", "hated", "admired", "feared", "helped", "ignored", "trusted", "blamed"]
THINGS = ["dog", "cat", "horse", "parrot", "goat", "rabbit", "hamster", "pony"]
ACTS = ["treats", "toys", "food", "water", "blankets", "brushes", "collars", "leashes"]


def twin_question(rng: random.Random, i: int) -> tuple[str, str, str, str]:
    """Two twin questions (one word flipped, options shuffled) and their correct names."""
    a, b = rng.sample(NAMES, 2)
    verb, other = rng.sample(VERBS, 2)
    thing, act = rng.choice(THINGS), rng.choice(ACTS)
    base = f"Case {i}: the {thing} {{v}} {a} but not {b}, so _ brought the {thing} {act}."
    first = base.format(v=verb)
    second = base.format(v=other)
    return first, second, a, b


def prompt_of(question: str, options: tuple[str, str], shot: str) -> str:
    return (
        f"Please answer with the letter of the correct answer.\n\n{shot}\nA) x\nB) y\n"
        f"{INSTRUCTION}\nA\n\n{question}\nA) {options[0]}\nB) {options[1]}\n{INSTRUCTION}"
    )


def twin_table(pairs: int = 90, seed: int = 3) -> OutcomeTable:
    """Winogrande-like: twin prompts with opposite answers, options shuffled between twins.

    ``cheap`` is right 60% of the time, ``cheaper`` 50%, ``strong`` 85%. Answers are letters.
    """
    rng = random.Random(seed)
    prompts, quality, answers = [], [], {m: [] for m in MODELS}
    for i in range(pairs):
        first, second, name_a, name_b = twin_question(rng, i)
        for question, right, wrong in ((first, name_a, name_b), (second, name_b, name_a)):
            options = (right, wrong) if rng.random() < 0.5 else (wrong, right)
            shot = f"Example {rng.randrange(10**6)}: the sun is bright, so _ wore hats."
            prompts.append(prompt_of(question, options, shot))
            row = []
            for model, p in zip(MODELS, (0.85, 0.6, 0.5), strict=True):
                ok = rng.random() < p
                pick = right if ok else wrong
                answers[model].append("AB"[options.index(pick)])
                row.append(float(ok))
            quality.append(row)
    n = len(prompts)
    cost = np.tile([100.0, 2.0, 1.0], (n, 1)) * 1e-6
    return OutcomeTable(
        tuple(f"p{i}" for i in range(n)),
        tuple("wino" for _ in range(n)),
        tuple(prompts),
        MODELS,
        np.asarray(quality),
        cost,
        {},
        {m: tuple(v) for m, v in answers.items()},
        "twins",
    )


@pytest.fixture(scope="module")
def twins() -> OutcomeTable:
    return twin_table()


def test_question_is_the_last_paragraph_after_few_shot_examples() -> None:
    prompt = prompt_of("Sarah beat Maria so _ won.", ("Maria", "Sarah"), "Shot: _ ran.")
    assert question_of(prompt).startswith("Sarah beat Maria so _ won.")
    assert "Shot" not in question_of(prompt)


def test_answers_compare_by_option_text_not_letter() -> None:
    one = prompt_of("Sarah beat Maria so _ won.", ("Maria", "Sarah"), "Shot: _ ran.")
    two = prompt_of("Sarah beat Maria so _ lost.", ("Sarah", "Maria"), "Shot: _ ran.")
    assert canonical_answer(one, "B") == canonical_answer(two, "A") == "opt:sarah"
    assert canonical_answer(one, "The answer is A") == "opt:maria"
    assert canonical_answer("Capital of France?", " Paris ") == "paris"
    assert canonical_answer("Write code", "def f():\n" + "    return 1\n" * 20) is None
    assert relation(two, "opt:maria", ["A", "B", "def f(): " * 20]) == "ds-"
    assert relation(two, None, ["A", "B"]) == "--"
    assert relation(two, SAME_QUESTION + "opt:maria", ["A", "B"]) == "DS"


def test_memory_finds_the_twin_and_ignores_shared_boilerplate(twins) -> None:
    memory = AnswerMemory.build(
        twins.prompts, twins.tasks, twins.responses, twins.models, twins.quality
    )
    # every pair's first prompt finds its twin (the second) once itself is left out
    firsts = list(range(0, len(twins), 2))
    others = memory.without_rows(firsts)
    found = others.neighbours([twins.prompts[i] for i in firsts], ["wino"] * len(firsts))
    twin_known = [k for k, i in enumerate(firsts) if i + 1 in others.rows]
    assert len(twin_known) > 30
    assert [others.rows[found[k]] for k in twin_known] == [firsts[k] + 1 for k in twin_known]
    # the prompt itself is an identical question: its answer is marked as such
    assert memory.known_answers([twins.prompts[0]], ["wino"])[0].startswith(SAME_QUESTION)
    # an unrelated question with the same instructions around it has no neighbour
    stranger = prompt_of("Paul paid Quinn back so _ felt relieved.", ("Paul", "Quinn"), "S: _ ok.")
    assert memory.neighbours([stranger], ["wino"]) == [-1]
    # another task's memory is not searched when the task is given
    assert memory.neighbours([twins.prompts[1]], ["other-task"]) == [-1]


def split_twins(table: OutcomeTable) -> tuple[OutcomeTable, OutcomeTable]:
    """Training table without the second twin of the first 45 pairs; those are the test rows."""
    test = list(range(1, 90, 2))
    train = [i for i in range(len(table)) if i not in set(test)]
    return table.subset(train), table.subset(test)


def test_cascade_learns_that_twins_have_opposite_answers(twins) -> None:
    train, test = split_twins(twins)
    router = train_cascade(train, folds=3)
    assert router.memory is not None
    assert "wino" + REMEMBERED in router.policies
    rows = np.arange(len(test))
    plans = replay_table(router, test, default_lambdas(test), [])
    best = max(plans, key=lambda p: test.quality[rows, p.final].mean())
    # the memory knows each twin's answer: the routed quality beats the strong model's
    assert test.quality[rows, best.final].mean() > test.quality[:, 0].mean() + 0.05
    # and it costs less than calling the strong model on every prompt
    assert (test.cost * best.called).sum() < test.cost[:, 0].sum()


def test_memory_survives_saving_and_scores_answers(twins, tmp_path) -> None:
    train, test = split_twins(twins)
    router = train_cascade(train, folds=3)
    path = tmp_path / "twins.npz"
    save_router(router, path)
    loaded = load_router(path)
    assert loaded.memory is not None and loaded.memory.answers == router.memory.answers
    lambdas = default_lambdas(test)
    plans = zip(replay_table(router, test, lambdas, []), replay_table(loaded, test, lambdas, []),
                strict=True)
    for a, b in plans:
        assert (a.final == b.final).all() and (a.called == b.called).all()
    # the scorer: an answer equal to the twin's known answer is judged wrong, the other right
    scorer = load_answer_scorer(str(path))
    prompt = test.prompts[0]
    letters = {"A", "B"}
    good = next(x for x in letters if _is_right(test, 0, x))
    bad = (letters - {good}).pop()
    request = Request((Message.user(prompt),), metadata={"task": "wino"})
    p_good = scorer.score(request, Completion(good, "stop", Usage(), 0.0, "test", "cheap"))
    p_bad = scorer.score(request, Completion(bad, "stop", Usage(), 0.0, "test", "cheap"))
    assert p_good > 0.8 > 0.3 > p_bad


def _is_right(table: OutcomeTable, i: int, letter: str) -> bool:
    """Whether ``letter`` is the correct answer of row ``i`` (from any model's graded answer)."""
    for j, model in enumerate(table.models):
        said = table.responses[model][i]
        if said == letter:
            return bool(table.quality[i, j] == 1.0)
    return not any(table.quality[i, j] == 1.0 for j in range(len(table.models)))


def test_broken_memory_arrays_and_missing_responses_are_reported(twins, tmp_path) -> None:
    import io

    from llmswitch.routing.learned.io import RouterFileError
    from llmswitch.training.evaluate import evaluate_file, render_text

    train, test = split_twins(twins)
    path = tmp_path / "twins.npz"
    save_router(train_cascade(train, folds=3), path)
    arrays = dict(np.load(path, allow_pickle=False))
    arrays["memory.indptr"] = arrays["memory.indptr"][:5]
    broken = tmp_path / "broken.npz"
    np.savez(broken, **arrays)
    with pytest.raises(RouterFileError, match=r"broken\.npz: cascade router file is inconsistent"):
        load_router(broken)
    # a table without recorded responses: the probe arms are skipped and the report says so
    bare = OutcomeTable(
        test.prompt_ids, test.tasks, test.prompts, test.models, test.quality, test.cost, {}, None
    )
    report = evaluate_file(bare, path)
    assert any("no recorded responses" in n for n in report["router"]["notes"])
    out = io.StringIO()
    render_text(report, out)
    assert "note: no recorded responses of" in out.getvalue()
