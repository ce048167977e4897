"""CDK entry point: `cdk synth` from the repository root (see cdk.json)."""

from __future__ import annotations

import os
from typing import Any

from aws_cdk import App, Environment

from stacks.config import EDGE_REGION, AppConfig
from stacks.edge_stack import EdgeStack
from stacks.orchestrator_stack import OrchestratorStack


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
        description="edgeshift: routes and rollouts tables, rollout state machine and tasks",
    )
    edge = EdgeStack(
        app,
        "EdgeshiftEdge",
        routes_table_name=config.routes_table_name,
        table_regions=config.table_regions,
        env=Environment(account=account, region=EDGE_REGION),
        description="edgeshift: Lambda@Edge variant assignment and origin switching",
    )
    # No reference links the two (names are passed by value); order the deploy so the edge
    # finds its table on the first request.
    edge.add_stack_dependency(orchestrator)
    return app


def main() -> None:
    build_app().synth()


if __name__ == "__main__":
    main()
