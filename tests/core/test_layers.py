"""The dependency rule, checked over every import in the package (lazy ones included).

Core is one-way: core types <- adapters <- providers <- strategies/routing <- Switch <- shells
(cli, gateway, plans). Serve-time routing never imports the offline harness: training
(`llmswitch.training`), outcome tables and metrics (`llmswitch.evals`) or scikit-learn. Drawn in
docs/architecture.md ("The dependency rule").
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "llmswitch"

CORE = {"llmswitch.errors", "llmswitch.messages", "llmswitch.request", "llmswitch.results",
        "llmswitch.capabilities"}
SHELLS = ("llmswitch.cli", "llmswitch.gateway", "llmswitch.plans", "llmswitch.dashboard")
OFFLINE = ("llmswitch.training", "llmswitch.evals", "sklearn", "pyarrow", "matplotlib")
SERVE_TIME = ("llmswitch.routing", "llmswitch.strategies", "llmswitch.adapters",
              "llmswitch.providers", "llmswitch.catalog", "llmswitch.switch", "llmswitch.resolve")

# (importer prefix, forbidden prefixes, why)
RULES: list[tuple[tuple[str, ...], tuple[str, ...], str]] = [
    (SERVE_TIME, OFFLINE, "serve-time code never imports the offline harness"),
    (("llmswitch.evals",), ("llmswitch.training",), "training builds on evals, never the reverse"),
    (tuple(CORE), ("llmswitch.adapters", "llmswitch.providers", "llmswitch.strategies",
                   "llmswitch.routing", "llmswitch.switch", *SHELLS),
     "core types depend on nothing above them"),
    (("llmswitch.adapters",), ("llmswitch.providers", "llmswitch.strategies", "llmswitch.routing",
                               "llmswitch.switch", *SHELLS),
     "adapters are pure mapping below providers"),
    (("llmswitch.providers",), ("llmswitch.strategies", "llmswitch.routing", "llmswitch.switch",
                                *SHELLS), "providers sit below strategies"),
    (("llmswitch.strategies", "llmswitch.routing"), ("llmswitch.switch", *SHELLS),
     "strategies and routers sit below the Switch"),
    (("llmswitch",), ("llmswitch.cli",), "nothing outside the CLI imports the CLI"),
]
KNOWN: dict[tuple[str, str], str] = {
    ("llmswitch.adapters.openai_chat", "llmswitch.providers.specs"):
        "Azure's default API version; belongs in the adapter (reported, owned by providers)",
}
"""Exceptions that exist today, each with its reason; the list may only shrink."""


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _type_checking_block(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"))


def imports_of(path: Path, package: str | None = None) -> set[str]:
    """Every module `path` imports at run time, at top level or inside functions."""
    found: set[str] = set()
    if package is None:
        name = module_name(path)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]

    def visit(node: ast.AST) -> None:
        if _type_checking_block(node):
            for child in getattr(node, "orelse", []):
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text("utf-8")))
    return found


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in PACKAGE.rglob("*.py")}


def test_every_import_follows_the_dependency_rule() -> None:
    violations = []
    for module, imported in sorted(graph().items()):
        for importers, forbidden, why in RULES:
            if not _within(module, importers) or (
                    _within(module, ("llmswitch.cli",)) and forbidden == ("llmswitch.cli",)):
                continue
            for name in sorted(imported):
                if (_within(name, forbidden) and not _within(name, (module,))
                        and not any(module == a and _within(name, (b,)) for a, b in KNOWN)):
                    violations.append(f"{module} imports {name}: {why}")
    assert violations == []


PUBLIC_FRONTS = ("llmswitch", "llmswitch.errors", "llmswitch.config", "llmswitch.catalog",
                 "llmswitch.observe", "llmswitch.resilience", "llmswitch.scrub",
                 "llmswitch.tokens", "llmswitch.testing", "llmswitch.schemacheck")
"""What the shells may import from the library: the top-level API and the `__all__` of these
fronts (docs/architecture.md, "Public surfaces")."""
SHELL_KNOWN: dict[tuple[str, str], str] = {
    ("llmswitch.plans.execute", "llmswitch.structured"):
        "JSON extraction from an answer; to become public",
}
"""Shell imports of internals that exist today, each with its reason; may only shrink."""
OFFLINE_SHELL = ("llmswitch.cli.router",)
"""The CLI's offline commands drive the training harness directly."""


def _is_submodule(name: str) -> bool:
    rel = name.split(".", 1)[1].replace(".", "/")
    return (PACKAGE / rel).with_suffix(".py").exists() or (PACKAGE / rel).is_dir()


def test_shells_use_only_public_surfaces() -> None:
    """Gateway, dashboard, plans and CLI are thin shells over the public API: they import the
    top level and the public fronts (by their package name), each other, and nothing deeper."""
    violations = []
    for module, imported in sorted(graph().items()):
        if not _within(module, SHELLS) or _within(module, OFFLINE_SHELL):
            continue
        for name in sorted(imported):
            if not name.startswith("llmswitch.") or _within(name, SHELLS):
                continue
            parent = name.rsplit(".", 1)[0]
            public = name in PUBLIC_FRONTS or (
                parent in PUBLIC_FRONTS and not _is_submodule(name))
            if not public and not any(module == a and _within(name, (b,))
                                      for a, b in SHELL_KNOWN):
                violations.append(f"{module} imports {name}")
    assert violations == []


def test_the_checker_sees_lazy_imports_and_skips_type_checking_ones(tmp_path: Path) -> None:
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import sklearn\n"
              "def f():\n    from llmswitch.training import train\n")
    path = tmp_path / "mod.py"
    path.write_text(source)
    found = imports_of(path, package="llmswitch.x")
    assert "llmswitch.training" in found and "sklearn" not in found


def test_no_import_cycles_among_the_learned_router_modules() -> None:
    mods = graph()
    scope = ("llmswitch.routing.learned", "llmswitch.evals", "llmswitch.training")
    edges = {m: {n for n in deps if n in mods and _within(n, scope) and n != m}
             for m, deps in mods.items() if _within(m, scope) and not m.endswith("__init__")}
    # a package's __init__ re-exports its children; a child importing a sibling is what counts
    edges = {m: {n for n in deps if not (m.startswith(n + "."))} for m, deps in edges.items()}
    cycles = []

    def walk(node: str, stack: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt in stack:
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif len(stack) < 12:
                walk(nxt, [*stack, nxt])

    for start in sorted(edges):
        walk(start, [start])
    assert cycles == []


SERVE_SCRIPT = """
import json, sys
from llmswitch.routing.learned import load_router
import llmswitch.strategies.learned, llmswitch.strategies.learned_cascade
from llmswitch.routing.learned.cascade_serve import plan_probes
router = load_router(sys.argv[1])
if hasattr(router, "policies"):  # a cascade: its first step decides which probes to call
    plan = plan_probes(router, "What is 2 + 2?", None, router.lam, router.models)
    chosen = plan.probes[0] if plan.probes else plan.final
else:
    chosen = router.decide("What is 2 + 2?", candidates=None).chosen
offline = sorted(m for m in sys.modules if m.split(".")[0] in ("sklearn", "pyarrow", "matplotlib")
                 or m.startswith(("llmswitch.evals", "llmswitch.training")))
print(json.dumps({"chosen": chosen, "offline": offline}))
"""


@pytest.mark.parametrize("kind", ["logistic", "cascade"])
def test_loading_a_router_file_and_routing_never_imports_the_offline_harness(
        tmp_path: Path, kind: str) -> None:
    pytest.importorskip("sklearn", reason="training needs the router extra")
    from llmswitch.evals.table import load_table
    from llmswitch.routing.learned import save_router
    from llmswitch.training.cascade import train_cascade
    from llmswitch.training.router import train_router

    table = load_table(Path(__file__).resolve().parents[1] / "data" / "routing"
                       / "outcomes_sample.parquet")
    router = train_cascade(table, folds=2) if kind == "cascade" else train_router(table, kind)
    path = tmp_path / "router.npz"
    save_router(router, path)
    done = subprocess.run([sys.executable, "-c", SERVE_SCRIPT, str(path)], capture_output=True,
                          text=True, timeout=300, check=True)
    result = json.loads(done.stdout)
    assert result["chosen"] in router.models
    assert result["offline"] == []
