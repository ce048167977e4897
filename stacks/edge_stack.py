"""The Lambda@Edge functions that pick a variant per viewer and switch the origin for it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aws_cdk import Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from stacks.assets import edge_code

# Trigger name -> handler module in edge/.
EDGE_TRIGGERS = {
    "ViewerRequest": "viewer_request",
    "OriginRequest": "origin_request",
}


class EdgeFunctions(Construct):
    """Viewer- and origin-request functions sharing one role and one bundle.

    Lambda@Edge rules shape every setting here: us-east-1 only, a published version (never
    $LATEST), x86_64, no environment variables, no layers, no X-Ray, and viewer triggers are
    capped at 128 MB and 5 s.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        routes_table_name: str,
        table_regions: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            # CloudFront replicates the function and assumes the role as edgelambda.
            assumed_by=iam.CompositePrincipal(
                iam.ServicePrincipal("lambda.amazonaws.com"),
                iam.ServicePrincipal("edgelambda.amazonaws.com"),
            ),
            managed_policies=[
                # Logs go to /aws/lambda/us-east-1.<name> in whichever region ran the function.
                iam.ManagedPolicy.from_aws_managed_policy_name(
                    "service-role/AWSLambdaBasicExecutionRole"
                ),
            ],
        )
        code = edge_code(table=routes_table_name, regions=table_regions)
        self.functions: dict[str, lambda_.Function] = {}
        self.versions: dict[str, lambda_.IVersion] = {}
        for trigger, module in EDGE_TRIGGERS.items():
            fn = lambda_.Function(
                self,
                trigger,
                runtime=lambda_.Runtime.PYTHON_3_12,
                architecture=lambda_.Architecture.X86_64,
                handler=f"edge.{module}.handler",
                code=code,
                role=self.role,
                memory_size=128,
                timeout=Duration.seconds(5),
            )
            self.functions[trigger] = fn
            # CloudFront associations take a numbered version; a code change publishes a new one.
            self.versions[trigger] = fn.current_version


class EdgeStack(Stack):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        routes_table_name: str,
        table_regions: Sequence[str],
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.edge = EdgeFunctions(
            self,
            "Functions",
            routes_table_name=routes_table_name,
            table_regions=table_regions,
        )
        # The table lives in another stack (and region); build its ARNs from name and regions
        # rather than through a cross-region reference. Read-only: the edge never writes.
        tables = [
            self.format_arn(
                service="dynamodb", region=region, resource="table", resource_name=routes_table_name
            )
            for region in table_regions
        ]
        self.edge.role.add_to_policy(
            iam.PolicyStatement(actions=["dynamodb:GetItem", "dynamodb:Query"], resources=tables)
        )
