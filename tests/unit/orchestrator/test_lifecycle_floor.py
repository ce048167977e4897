"""Lifecycle events leave from one place, on the floor that commits: the store. Nothing
below the events package imports it, and nothing else sends to EventBridge."""

from __future__ import annotations

import ast
from pathlib import Path

ORCHESTRATOR = Path(__file__).resolve().parents[3] / "orchestrator"


def _modules() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(ORCHESTRATOR.parent)): ast.parse(path.read_text())
        for path in ORCHESTRATOR.rglob("*.py")
    }


def _imports(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
    return names


def test_only_the_stores_commit_sends_lifecycle_events():
    """put_events is called in orchestrator/store/lifecycle.py and nowhere else."""
    callers = {
        path
        for path, tree in _modules().items()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr == "put_events"
    }
    assert callers == {"orchestrator/store/lifecycle.py"}


def test_the_floors_below_the_events_package_do_not_import_it():
    """The store, the workflow and the service sit under orchestrator.events (whose release
    handler calls the service): none of them imports it."""
    below = [
        (path, sorted(m for m in _imports(tree) if m.startswith("orchestrator.events")))
        for path, tree in _modules().items()
        if path.startswith(
            ("orchestrator/store/", "orchestrator/workflow/", "orchestrator/models/")
        )
        or path == "orchestrator/service.py"
    ]
    assert [(path, found) for path, found in below if found] == []
