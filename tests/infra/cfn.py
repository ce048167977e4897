"""Helpers for reading synthesized templates and assets."""

from __future__ import annotations

import atexit
import fcntl
import functools
import json
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from aws_cdk import Stack
from aws_cdk.assertions import Template

REPO_ROOT = Path(__file__).resolve().parents[2]


def default_context() -> dict[str, Any]:
    """The context cdk.json hands the app, so the tests synthesize what `cdk synth` would."""
    context: dict[str, Any] = json.loads((REPO_ROOT / "cdk.json").read_text())["context"]
    return context


@dataclass(frozen=True)
class Synthesized:
    outdir: Path
    orchestrator: Template
    edge: Template
    seconds: float
    nag_errors: tuple[str, ...] = ()

    def asset(self, name: str) -> Path:
        """A staged asset, by the file name CloudFormation's S3 key or Code.S3Key gives."""
        return self.outdir / f"asset.{name}"


def resources(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    """Logical id -> resource for every resource of one CloudFormation type."""
    return cast(dict[str, dict[str, Any]], template.find_resources(kind))


def statements_of(template: Template, role_logical_id: str) -> list[dict[str, Any]]:
    """Every inline policy statement attached to one role."""
    out: list[dict[str, Any]] = []
    for policy in resources(template, "AWS::IAM::Policy").values():
        roles = policy["Properties"].get("Roles", [])
        if {"Ref": role_logical_id} in roles:
            out.extend(policy["Properties"]["PolicyDocument"]["Statement"])
    return out


def functions_by_handler(template: Template, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Handler -> function properties (plus its logical id as "id"), for matching handlers."""
    functions = resources(template, "AWS::Lambda::Function")
    return {
        f["Properties"]["Handler"]: {"id": i, **f["Properties"]}
        for i, f in functions.items()
        if f["Properties"]["Handler"].startswith(prefix)
    }


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def vendored_layer_built() -> Path:
    """The vendored layer's zip, built by one process at a time.

    `make test` runs the suite in several worker processes, and each one's first synth
    builds the zip when the cache lacks it (a fresh CI machine): they would all write the
    same partial file at once. Under the lock, the first builds it and the rest find it.
    """
    from stacks.assets import VENDORED, vendored_layer_zip

    lock_path = Path(tempfile.gettempdir()) / "edgeshift-vendored-layer.lock"
    with lock_path.open("a") as lock:  # closing it lets the next process in
        fcntl.flock(lock, fcntl.LOCK_EX)
        return vendored_layer_zip(VENDORED)


@functools.cache
def synthesize() -> Synthesized:
    """The whole app as `make synth` builds it, once per process (infra tests and the local
    stack's IAM check share it)."""
    from stacks.app import build_app, nag_errors

    outdir = Path(tempfile.mkdtemp(prefix="edgeshift-cdk-"))
    atexit.register(shutil.rmtree, outdir, ignore_errors=True)
    started = time.perf_counter()
    vendored_layer_built()
    app = build_app(default_context(), outdir=str(outdir))
    stacks = {child.node.id: child for child in app.node.children if isinstance(child, Stack)}
    assembly = app.synth()
    return Synthesized(
        outdir,
        Template.from_stack(stacks["EdgeshiftOrchestrator"]),
        Template.from_stack(stacks["EdgeshiftEdge"]),
        time.perf_counter() - started,
        nag_errors=tuple(nag_errors(assembly)),
    )
