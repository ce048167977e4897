"""Tables, functions, state machine, API, events and alarms: everything that moves weights."""

from __future__ import annotations

from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Duration, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from orchestrator.store.tables import ROLLOUT_INDEXES
from orchestrator.workflow.definition import DEFINITION_PATH
from stacks.access import API_ACCESS, EVENTS_ACCESS, FLAG_SYNC_ACCESS, TASK_ACCESS, TableAccess
from stacks.alarms import RolloutAlarms
from stacks.api import API_HANDLER, RolloutApi
from stacks.assets import dependency_layers, orchestrator_code
from stacks.config import CLOUDWATCH, DATADOG, AppConfig
from stacks.events import EVENTS_HANDLER, ReleasePublished
from stacks.flag_sync import FLAG_SYNC_HANDLER, FlagSync
from stacks.functions import FunctionSettings, orchestrator_function
from stacks.tables import RolloutTables
from stacks.tasks import RolloutTasks
from stacks.workflow import RolloutStateMachine

STATE_MACHINE_ENV = "EDGESHIFT_STATE_MACHINE_ARN"
# Must equal orchestrator.events.bus.SOURCE and orchestrator.events.release.PLAN_PREFIX (a test
# checks); not imported, because those modules pull pydantic and YAML into every synth.
LIFECYCLE_SOURCE = "edgeshift.rollouts"
PLAN_PREFIX = "/edgeshift/plans/"


class OrchestratorStack(Stack):
    def __init__(
        self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.metric_providers = config.metric_providers
        self.tables = RolloutTables(
            self,
            "Tables",
            routes_table_name=config.routes_table_name,
            rollouts_table_name=config.rollouts_table_name,
            replica_regions=config.replica_regions,
        )
        settings = FunctionSettings(
            code=orchestrator_code(),
            layers=dependency_layers(self, powertools_version=config.powertools_layer_version),
            environment={
                "EDGESHIFT_ROUTES_TABLE": config.routes_table_name,
                "EDGESHIFT_ROLLOUTS_TABLE": config.rollouts_table_name,
                "POWERTOOLS_SERVICE_NAME": "edgeshift",
            },
        )
        self.tasks = RolloutTasks(self, "Tasks", settings=settings)
        self.workflow = RolloutStateMachine(
            self,
            "Rollout",
            definition_file=DEFINITION_PATH,
            substitutions=self.tasks.definition_substitutions(),
        )
        machine_arn = {STATE_MACHINE_ENV: self.workflow.state_machine.state_machine_arn}
        self.api_handler = orchestrator_function(
            self, "ApiHandler", handler=API_HANDLER, settings=settings, environment=machine_arn
        )
        self.api = RolloutApi(self, "Control", handler=self.api_handler)
        self.events_handler = orchestrator_function(
            self,
            "ReleaseHandler",
            handler=EVENTS_HANDLER,
            settings=settings,
            environment=machine_arn,
        )
        self.release_published = ReleasePublished(
            self, "ReleasePublished", handler=self.events_handler
        )
        self.alarms = RolloutAlarms(
            self,
            "Alarms",
            state_machine=self.workflow.state_machine,
            execution_logs=self.workflow.log_group,
        )
        self.flag_sync: FlagSync | None = None
        if config.launchdarkly_sdk_key_secret:
            self.flag_sync = FlagSync(
                self,
                "FlagSync",
                function=orchestrator_function(
                    self,
                    "FlagSyncHandler",
                    handler=FLAG_SYNC_HANDLER,
                    settings=settings,
                    timeout=Duration.seconds(60),
                ),
                sdk_key_secret_name=config.launchdarkly_sdk_key_secret,
                routes_table_arn=self.tables.routes.table_arn,
            )
            self._grant_tables(self.flag_sync.function, FLAG_SYNC_ACCESS)
        if self.flag_sync is not None:
            self.alarms.watch_flag_sync(self.flag_sync.function)
        self._grant_tasks(config)
        self._grant_starters()
        self._grant_lifecycle_events()
        CfnOutput(self, "StateMachineArn", value=self.workflow.state_machine.state_machine_arn)
        CfnOutput(self, "ApiUrl", value=self.api.api.url)
        CfnOutput(self, "AlarmTopicArn", value=self.alarms.topic.topic_arn)

    def _grant_tasks(self, config: AppConfig) -> None:
        tasks = self.tasks
        undeclared = sorted(tasks.functions.keys() - TASK_ACCESS.keys())
        if undeclared:
            raise ValueError(
                f"tasks without declared table access: {undeclared}; add them to "
                "stacks/access.py TASK_ACCESS"
            )
        for placeholder, fn in tasks.functions.items():
            self._grant_tables(fn, TASK_ACCESS[placeholder])

        # Begin's preflight checks the provider and reads the stable fleet's last hour;
        # Analyze fetches per-variant counts. Both read the same backends.
        for fn in (tasks.begin, tasks.analyze):
            self._grant_metric_reads(fn, config)

        # A rollback drops cached canary copies from the distribution the plan names, if it
        # is one the deployment lists; for any other the call is refused and the rollback
        # records the failed invalidation (it never fails the rollback itself).
        if config.invalidation_distribution_ids:
            tasks.rollback.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["cloudfront:CreateInvalidation"],
                    resources=[
                        self.format_arn(
                            service="cloudfront",
                            region="",
                            resource="distribution",
                            resource_name=distribution_id,
                        )
                        for distribution_id in config.invalidation_distribution_ids
                    ],
                )
            )

        # The ASL is loaded from a file, so CDK cannot infer what it calls: grant exactly the tasks.
        for fn in tasks.functions.values():
            fn.grant_invoke(self.workflow.state_machine)

    def _grant_tables(self, fn: lambda_.Function, access: TableAccess) -> None:
        """One statement per table (and for the rollouts table's indexes), listing only the
        actions the function calls on it."""
        rollouts, routes = self.tables.rollouts, self.tables.routes
        indexes = [f"{rollouts.table_arn}/index/{name}" for name, _pk, _sk in ROLLOUT_INDEXES]
        for actions, resources in (
            (access.rollouts, [rollouts.table_arn]),
            (access.rollout_indexes, indexes),
            (access.routes, [routes.table_arn]),
        ):
            if actions:
                fn.add_to_role_policy(
                    iam.PolicyStatement(actions=list(actions), resources=resources)
                )

    def _grant_metric_reads(self, fn: lambda_.Function, config: AppConfig) -> None:
        """CloudWatch counts, and the Datadog keys kept in Secrets Manager, for the providers
        the deployment uses."""
        if CLOUDWATCH in config.metric_providers:
            # Neither takes a resource. Analyze also discovers the values of a plan's segment
            # dimensions (ListMetrics); Begin's preflight reads totals only.
            actions = ["cloudwatch:GetMetricData"]
            if fn is self.tasks.analyze:
                actions.append("cloudwatch:ListMetrics")
            fn.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=["*"]))
        if DATADOG not in config.metric_providers:
            return
        # Plans name one secret per key (api_key_secret, app_key_secret), created by the
        # user under the configured name as a folder (e.g. edgeshift/datadog/api-key); the
        # provider reads each with GetSecretValue and nothing else.
        fn.add_to_role_policy(
            iam.PolicyStatement(
                actions=["secretsmanager:GetSecretValue"],
                resources=[
                    self.format_arn(
                        service="secretsmanager",
                        resource="secret",
                        resource_name=f"{config.datadog_secret_name}/*",
                        arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    )
                ],
            )
        )
        fn.add_environment("EDGESHIFT_DATADOG_SECRET_NAME", str(config.datadog_secret_name))
        fn.add_environment("DD_SITE", config.datadog_site)

    def _grant_starters(self) -> None:
        machine = self.workflow.state_machine
        starters: tuple[lambda_.Function, ...] = (self.api_handler, self.events_handler)
        self._grant_tables(self.api_handler, API_ACCESS)
        self._grant_tables(self.events_handler, EVENTS_ACCESS)
        for fn in starters:
            machine.grant_start_execution(fn)
        # Requests ask whether the execution still runs (a stopped one would never carry them
        # out); resume, abort and promote wake a parked one (it waits on a task token). Pause
        # and abort are requests on the rollout item: no StopExecution.
        machine.grant_execution(self.api_handler, "states:DescribeExecution")
        machine.grant(self.api_handler, "states:SendTaskSuccess", "states:SendTaskFailure")
        # Release events name a plan template kept in Parameter Store.
        self.events_handler.add_to_role_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"],
                resources=[
                    self.format_arn(
                        service="ssm",
                        resource="parameter",
                        resource_name=f"{PLAN_PREFIX.strip('/')}/*",
                    )
                ],
            )
        )

    def _grant_lifecycle_events(self) -> None:
        """Every function may announce rollout changes on the default bus, under our source."""
        bus = self.format_arn(service="events", resource="event-bus", resource_name="default")
        publish = iam.PolicyStatement(
            actions=["events:PutEvents"],
            resources=[bus],
            conditions={"StringEquals": {"events:source": LIFECYCLE_SOURCE}},
        )
        for fn in (*self.tasks.functions.values(), self.api_handler, self.events_handler):
            fn.add_to_role_policy(publish)
