"""The one way this app builds an orchestrator Lambda: same runtime, code, layers and logging."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aws_cdk import Duration, RemovalPolicy
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
    """A traced python3.12 function with its own log group kept for a month."""
    log_group = logs.LogGroup(
        scope,
        f"{construct_id}Logs",
        retention=logs.RetentionDays.ONE_MONTH,
        removal_policy=RemovalPolicy.DESTROY,
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
        environment={**settings.environment, **(environment or {})},
    )
