"""CDK entry point: `cdk synth`, or `python -m stacks.app`, from the repository root."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from aws_cdk import App, Aspects, Environment, cx_api
from cdk_nag import AwsSolutionsChecks

from stacks.config import EDGE_REGION, AppConfig, ContextError
from stacks.edge_stack import EdgeStack
from stacks.nag import suppress_edge, suppress_orchestrator
from stacks.orchestrator_stack import OrchestratorStack

REPO_ROOT = Path(__file__).resolve().parent.parent


def build_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> App:
    """Validate the context, then build both stacks; raises ContextError on a bad value."""
    app = App(context=context, outdir=outdir)
    config = AppConfig.from_context(app.node.try_get_context)
    # The account stays unresolved unless the CLI knows it; the regions must be concrete,
    # because global table replicas and Lambda@Edge both depend on them.
    account = os.environ.get("CDK_DEFAULT_ACCOUNT")
    orchestrator = OrchestratorStack(
        app,
        "EdgeshiftOrchestrator",
        config=config,
        env=Environment(account=account, region=config.primary_region),
        description="edgeshift: routes and rollouts tables, rollout state machine, API, alarms",
    )
    edge = EdgeStack(
        app,
        "EdgeshiftEdge",
        config=config,
        env=Environment(account=account, region=EDGE_REGION),
        description="edgeshift: Lambda@Edge variant assignment and origin switching",
    )
    # No reference links the two (names are passed by value); order the deploy so the edge
    # finds its table on the first request.
    edge.add_stack_dependency(orchestrator)
    suppress_orchestrator(orchestrator)
    suppress_edge(edge)
    Aspects.of(app).add(AwsSolutionsChecks(verbose=True))
    return app


def nag_errors(assembly: cx_api.CloudAssembly) -> list[str]:
    """Unsuppressed cdk-nag errors in a synthesized assembly, as `path: message`."""
    return [
        f"{message.id}: {message.entry.data}"
        for stack in assembly.stacks
        for message in stack.messages
        if message.level == cx_api.SynthesisMessageLevel.ERROR
    ]


def main() -> int:
    # Outside the CDK CLI nothing hands over cdk.json's context; read it ourselves.
    context: dict[str, Any] | None = None
    if "CDK_CONTEXT_JSON" not in os.environ:
        context = json.loads((REPO_ROOT / "cdk.json").read_text()).get("context", {})
    try:
        app = build_app(context, outdir=None if context is None else str(REPO_ROOT / "cdk.out"))
    except ContextError as exc:
        print(f"synth: {exc}", file=sys.stderr)
        return 2
    assembly = app.synth()
    errors = nag_errors(assembly)
    for error in errors:
        print(f"cdk-nag: {error}", file=sys.stderr)
    print(f"synthesized {len(assembly.stacks)} stacks to {assembly.directory}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
