"""The decision loop exists once: the Analyze task and ``replay`` (which the benchmark, the
backtest and the demo use) both go through ``orchestrator.workflow.step.take_look``, the
only caller of ``evaluate`` and ``decide``; only ``evaluate`` calls the judge. A second
loop, say a benchmark that judges counts itself, fails this test.

The scan reads the source with ``ast`` and resolves each call through the module's imports,
so an unrelated function of the same name (the edge's ``viewer_request.decide``) is not
mistaken for the workflow's, and an aliased import is not missed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("orchestrator", "benchmarks", "stacks")

JUDGE = "orchestrator.analysis.judge"
# Each function of the loop, by every name it can be reached by, and the only files that
# may call it.
CALLERS: dict[str, tuple[set[str], set[str]]] = {
    "judge_ratio": (
        {f"{JUDGE}.judge_ratio", "orchestrator.analysis.judge_ratio"},
        {"orchestrator/analysis/evaluate.py"},
    ),
    "judge_guard": ({f"{JUDGE}.judge_guard"}, {"orchestrator/analysis/evaluate.py"}),
    "evaluate": (
        {"orchestrator.analysis.evaluate.evaluate", "orchestrator.analysis.evaluate"},
        {"orchestrator/workflow/step.py"},
    ),
    "decide": ({"orchestrator.workflow.decide.decide"}, {"orchestrator/workflow/step.py"}),
    "take_look": (
        {"orchestrator.workflow.step.take_look"},
        {"orchestrator/workflow/tasks.py", "orchestrator/analysis/replay.py"},
    ),
}
# Names unique to the loop: a call by that name is one of them, however it was reached.
UNIQUE = {"judge_ratio", "judge_guard", "take_look"}
# What the benchmark and the CLI must not import: they drive the loop through replay.
FORBIDDEN_IMPORTS = {
    *CALLERS["judge_ratio"][0],
    *CALLERS["judge_guard"][0],
    *CALLERS["evaluate"][0],
    *CALLERS["decide"][0],
    "orchestrator.workflow.decide",  # the module, which holds decide
    *CALLERS["take_look"][0],
    "orchestrator.analysis.schedule.look_at",
    "orchestrator.analysis.aggregate.combine",
}
NO_LOOP_HERE = ("benchmarks/", "orchestrator/cli/")


def _module_of(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: str, tree: ast.Module) -> dict[str, str]:
    """Local name -> the qualified name it is bound to, for every import in the file."""
    package = _module_of(path).split(".")
    if not path.endswith("__init__.py"):
        package = package[:-1]
    bound: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    bound[alias.asname] = alias.name
                else:
                    root = alias.name.split(".")[0]
                    bound[root] = root
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            origin = ".".join([*base, *([node.module] if node.module else [])])
            for alias in node.names:
                bound[alias.asname or alias.name] = f"{origin}.{alias.name}"
    return bound


def _qualified(func: ast.expr, bound: dict[str, str]) -> tuple[str, str] | None:
    """(qualified name, last name) of a called expression like ``a.b.c`` or ``c``."""
    attributes: list[str] = []
    while isinstance(func, ast.Attribute):
        attributes.insert(0, func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    head = bound.get(func.id, func.id)
    return ".".join([head, *attributes]), (attributes or [func.id])[-1]


def loop_calls(path: str, source: str) -> list[tuple[str, str, int]]:
    """(function, file, line) of every call into the decision loop in one file."""
    tree = ast.parse(source)
    bound = _imports(path, tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or (named := _qualified(node.func, bound)) is None:
            continue
        qualified, last = named
        for function, (names, _) in CALLERS.items():
            if qualified in names or (last == function and function in UNIQUE):
                found.append((function, path, node.lineno))
    return found


def loop_imports(path: str, source: str) -> list[tuple[str, str, int]]:
    """(qualified name, file, line) of every import of the loop's parts in one file."""
    tree = ast.parse(source)
    package = _imports(path, tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = {alias.asname or alias.name.split(".")[0] for alias in node.names}
            for name in names:
                target = package.get(name, "")
                if target in FORBIDDEN_IMPORTS:
                    found.append((target, path, node.lineno))
            if isinstance(node, ast.Import):
                found += [
                    (alias.name, path, node.lineno)
                    for alias in node.names
                    if alias.name in FORBIDDEN_IMPORTS
                ]
    return found


def _sources() -> list[tuple[str, str]]:
    files = sorted(p for folder in SCANNED for p in (ROOT / folder).rglob("*.py"))
    return [(p.relative_to(ROOT).as_posix(), p.read_text()) for p in files]


def test_the_loop_is_called_only_from_its_one_place() -> None:
    """GIVEN the project's Python files WHEN every call is resolved THEN the judge is called
    only by evaluate.py, evaluate and decide only by the look step, and the look step only
    by the Analyze task and replay."""
    strays = [
        (function, path, line)
        for path, source in _sources()
        for function, path, line in loop_calls(path, source)
        if path not in CALLERS[function][1]
    ]

    assert strays == [], "a second decision loop: " + ", ".join(
        f"{function} called at {path}:{line}" for function, path, line in strays
    )


def test_every_part_of_the_loop_is_where_this_test_looks() -> None:
    """GIVEN the project WHEN scanned THEN each allowed caller really calls its function
    (if the code moved, this test must move with it, not pass on nothing)."""
    found = {
        (function, path)
        for path, source in _sources()
        for function, path, _ in loop_calls(path, source)
    }

    for function, (_, callers) in CALLERS.items():
        for caller in callers:
            assert (function, caller) in found, (function, caller)


@pytest.mark.parametrize("folder", NO_LOOP_HERE)
def test_the_benchmark_and_the_cli_import_no_part_of_the_loop(folder: str) -> None:
    """GIVEN benchmarks/ and orchestrator/cli/ WHEN their imports are read THEN none of
    judge_ratio, judge_guard, evaluate, decide, take_look, look_at or combine: they go
    through replay."""
    strays = [
        found
        for path, source in _sources()
        if path.startswith(folder)
        for found in loop_imports(path, source)
    ]

    assert strays == [], strays


SECOND_LOOP = """
from orchestrator.analysis import judge_ratio as judge
from orchestrator.workflow import decide as rules
import orchestrator.analysis.evaluate as ev

def simulate(rollout, verdict, now, metric, c, b, look):
    judge(metric, c, b, look)
    ev.evaluate(rollout, now)
    return rules.decide(rollout, verdict, now)
"""

EDGE_DECIDE = """
from edge import viewer_request

def run(request, cfg, cache, now):
    return viewer_request.decide(request, cfg, cache, now)
"""


def test_the_scan_finds_a_second_loop_through_aliases() -> None:
    """GIVEN a benchmark that judges and decides itself through aliased imports WHEN
    scanned THEN each call and import is found; the edge's own decide is not."""
    path = "benchmarks/judge.py"

    calls = {function for function, _, _ in loop_calls(path, SECOND_LOOP)}
    imports = {target for target, _, _ in loop_imports(path, SECOND_LOOP)}

    assert calls == {"judge_ratio", "evaluate", "decide"}
    assert {"orchestrator.analysis.judge_ratio", "orchestrator.workflow.decide"} <= imports
    assert loop_calls("benchmarks/edge.py", EDGE_DECIDE) == []
    assert loop_imports("benchmarks/edge.py", EDGE_DECIDE) == []
