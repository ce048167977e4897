"""One synthesis of the whole app per test session: it takes seconds, the assertions do not."""

from __future__ import annotations

import time

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template

from stacks.app import build_app, nag_errors

from .cfn import Synthesized, default_context


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    outdir = tmp_path_factory.mktemp("cdk.out")
    started = time.perf_counter()
    app = build_app(default_context(), outdir=str(outdir))
    stacks = {child.node.id: child for child in app.node.children if isinstance(child, Stack)}
    assembly = app.synth()
    orchestrator = Template.from_stack(stacks["EdgeshiftOrchestrator"])
    edge = Template.from_stack(stacks["EdgeshiftEdge"])
    return Synthesized(
        outdir,
        orchestrator,
        edge,
        time.perf_counter() - started,
        nag_errors=tuple(nag_errors(assembly)),
    )
