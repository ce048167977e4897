"""The one way this app builds an orchestrator Lambda: same runtime, code, layers and logging."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.assets import ARCHITECTURE, RUNTIME

_DEFAULT_TIMEOUT = Duration.seconds(30)


@dataclass(frozen=True, kw_only=True)
class FunctionSettings:
    """What every orchestrator function shares: one code asset, the layers, the table names."""

    code: lambda_.Code
    layers: Sequence[lambda_.ILayerVersion]
    environment: Mapping[str, str] = field(default_factory=dict)


def orchestrator_function(
    scope: Construct,
    construct_id: str,
    *,
    handler: str,
    settings: FunctionSettings,
    timeout: Duration | None = None,
    memory_size: int = 256,
    environment: Mapping[str, str] | None = None,
) -> lambda_.Function:
    """A traced python3.12 function with its own log group kept for a month, on a role of its
    own that may write that log group and nothing else until the stack grants more."""
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=RemovalPolicy.DESTROY,
    )
    # Not AWSLambdaBasicExecutionRole: it allows creating and writing every log group of the
    # account. The group exists (above), so the function only adds streams and events to it.
    role = iam.Role(
        scope,
        f"{construct_id}Role",
        assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
    )
    role.add_to_policy(
        iam.PolicyStatement(
            actions=["logs:CreateLogStream", "logs:PutLogEvents"],
            resources=[log_group.log_group_arn],
        )
    )
    return lambda_.Function(
        scope,
        construct_id,
        runtime=RUNTIME,
        architecture=ARCHITECTURE,
        handler=handler,
        code=settings.code,
        layers=list(settings.layers),
        memory_size=memory_size,
        timeout=timeout or _DEFAULT_TIMEOUT,
        tracing=lambda_.Tracing.ACTIVE,
        log_group=log_group,
        role=role,
        environment={**settings.environment, **(environment or {})},
    )
