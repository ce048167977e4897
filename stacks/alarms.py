"""Page a person when a rollout fails, rolls back, cannot even roll back, or finds the edge
serving a split other than the plan's."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

METRIC_NAMESPACE = "edgeshift"
# State names in orchestrator/workflow/rollout.asl.json (a test checks they exist there).
ROLLBACK_STATE = "Rollback"
ROLLBACK_FAILED_STATE = "RollbackFailed"
# The Analyze task's powertools metric (orchestrator/workflow/tasks.py) on a split mismatch.
TASK_METRIC_NAMESPACE = "EdgeShift"
TASK_SERVICE = "edgeshift-workflow"
SPLIT_MISMATCH_METRIC = "SplitMismatch"


class RolloutAlarms(Construct):
    """Four alarms on one encrypted topic (five with the flag sync's, ``watch_flag_sync``);
    subscribe the on-call rota to `topic`."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        state_machine: sfn.StateMachine,
        execution_logs: logs.ILogGroup,
    ) -> None:
        super().__init__(scope, construct_id)
        # CloudWatch cannot publish to a topic under the AWS-managed SNS key, so a customer key.
        self.key = kms.Key(
            self,
            "TopicKey",
            description="edgeshift: encrypts the rollout alarms topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name="edgeshift rollout alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        # Step Functions has no per-state metric, so the state machine's own log (level ALL)
        # is counted: a Rollback task entered, or the RollbackFailed state reached.
        rollbacks = self._state_entered(execution_logs, "TaskStateEntered", ROLLBACK_STATE)
        rollback_failures = self._state_entered(
            execution_logs, "FailStateEntered", ROLLBACK_FAILED_STATE
        )
        self.execution_failed = self._alarm(
            "ExecutionFailed",
            state_machine.metric_failed(period=Duration.minutes(1), statistic="Sum"),
            "A rollout execution failed: see the rollout's audit trail and the runbook.",
        )
        self.rollback_happened = self._alarm(
            "RollbackHappened",
            rollbacks,
            "A rollout rolled back: every viewer is on stable; find out why before retrying.",
        )
        self.rollback_failed = self._alarm(
            "RollbackFailed",
            rollback_failures,
            "A rollback FAILED: canary traffic may still flow. Set the route weights by hand.",
        )
        self.split_mismatch = self._alarm(
            "SplitMismatch",
            cloudwatch.Metric(
                namespace=TASK_METRIC_NAMESPACE,
                metric_name=SPLIT_MISMATCH_METRIC,
                dimensions_map={"service": TASK_SERVICE},
                statistic="Sum",
                period=Duration.minutes(1),
            ),
            "The edge serves the canary a share of requests outside the plan's split "
            "tolerance: see runbooks/edge-split-mismatch.md.",
        )

    def watch_flag_sync(self, function: lambda_.IFunction) -> cloudwatch.Alarm:
        """``FlagSyncFailed``: the scheduled flag sync failed three minutes running.

        It runs every minute; three failed runs leave the edge's flag data about three
        minutes old, with ``max_stale_seconds`` (300 s) before flag-routed rules fall back.
        """
        alarm = cloudwatch.Alarm(
            self,
            "FlagSyncFailed",
            alarm_description="The flag sync has failed for 3 minutes: flag-routed rules "
            "serve their fallback once the edge's flag data is 5 minutes old; see "
            "runbooks/flag-data-stale.md.",
            metric=function.metric_errors(period=Duration.minutes(1), statistic="Sum"),
            threshold=1,
            evaluation_periods=3,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        self.flag_sync_failed = alarm
        return alarm

    def _state_entered(
        self, log_group: logs.ILogGroup, event: str, state: str
    ) -> cloudwatch.Metric:
        name = f"{state}Entered"
        logs.MetricFilter(
            self,
            f"{name}Filter",
            log_group=log_group,
            filter_pattern=logs.FilterPattern.all(
                logs.FilterPattern.string_value("$.type", "=", event),
                logs.FilterPattern.string_value("$.details.name", "=", state),
            ),
            metric_namespace=METRIC_NAMESPACE,
            metric_name=name,
            metric_value="1",
            unit=cloudwatch.Unit.COUNT,
        )
        return cloudwatch.Metric(
            namespace=METRIC_NAMESPACE,
            metric_name=name,
            statistic="Sum",
            period=Duration.minutes(1),
        )

    def _alarm(self, name: str, metric: cloudwatch.IMetric, description: str) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            name,
            alarm_description=description,
            metric=metric,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            # No executions is the normal state, not a reason to page.
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        return alarm
