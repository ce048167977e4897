"""The rollout state machine, loaded from the same ASL file the local stack runs."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct


class RolloutStateMachine(Construct):
    """A Standard workflow (rollouts bake for hours) with full execution logs and X-Ray."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        definition_file: Path,
        substitutions: Mapping[str, str],
    ) -> None:
        super().__init__(scope, construct_id)
        # The /aws/vendedlogs/ prefix keeps CloudWatch Logs' resource policy from growing one
        # statement per log group, which otherwise hits its size limit in busy accounts.
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"/aws/vendedlogs/states/{Stack.of(self).stack_name}-{construct_id}",
            retention=logs.RetentionDays.THREE_MONTHS,
            # A fixed name that outlived its stack would block the next create; the audit
            # trail of record is the rollouts table, not these logs.
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            # from_file stages the ASL as an S3 asset; CloudFormation applies the substitutions.
            definition_body=sfn.DefinitionBody.from_file(str(definition_file)),
            definition_substitutions=dict(substitutions),
            state_machine_type=sfn.StateMachineType.STANDARD,
            tracing_enabled=True,
            logs=sfn.LogOptions(
                destination=self.log_group,
                level=sfn.LogLevel.ALL,
                # Inputs are rollout ids, stages and verdicts: no secrets, and the history is
                # what an operator reads when a rollout rolled back at 3 a.m.
                include_execution_data=True,
            ),
        )
