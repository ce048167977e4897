"""Tables, task functions and the rollout state machine: everything that moves traffic weights."""

from __future__ import annotations

from typing import Any

from aws_cdk import CfnOutput, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from orchestrator.workflow.definition import DEFINITION_PATH
from stacks.config import AppConfig
from stacks.tables import RolloutTables
from stacks.tasks import RolloutTasks
from stacks.workflow import RolloutStateMachine


class OrchestratorStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.tables = RolloutTables(
            self,
            "Tables",
            routes_table_name=config.routes_table_name,
            rollouts_table_name=config.rollouts_table_name,
            replica_regions=config.replica_regions,
        )
        self.tasks = RolloutTasks(
            self,
            "Tasks",
            routes_table_name=config.routes_table_name,
            rollouts_table_name=config.rollouts_table_name,
        )
        self.workflow = RolloutStateMachine(
            self,
            "Rollout",
            definition_file=DEFINITION_PATH,
            substitutions=self.tasks.definition_substitutions(),
        )
        self._grant(config)
        CfnOutput(self, "StateMachineArn", value=self.workflow.state_machine.state_machine_arn)

    def _grant(self, config: AppConfig) -> None:
        routes, rollouts, tasks = self.tables.routes, self.tables.rollouts, self.tasks
        # Every task commits its state change and audit event to the rollouts table; only the
        # three that move traffic touch routes (same transaction). Begin and Analyze never do.
        for fn in tasks.functions.values():
            rollouts.grant_read_write_data(fn)
        for fn in (tasks.apply_stage, tasks.promote, tasks.rollback):
            routes.grant_read_write_data(fn)

        # Analyze fetches per-variant counts. GetMetricData has no resource-level permissions.
        tasks.analyze.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"])
        )
        datadog = secretsmanager.Secret.from_secret_name_v2(
            self, "DatadogSecret", config.datadog_secret_name
        )
        datadog.grant_read(tasks.analyze)
        tasks.analyze.add_environment("EDGESHIFT_DATADOG_SECRET_NAME", datadog.secret_name)

        # The ASL is loaded from a file, so CDK cannot infer what it calls: grant exactly the five.
        for fn in tasks.functions.values():
            fn.grant_invoke(self.workflow.state_machine)
