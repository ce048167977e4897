"""The scheduled flag sync: LaunchDarkly's flags into the routes table, every minute.

The function (``orchestrator.flags.sync.handler``) runs the SDK with the key kept in one
Secrets Manager secret, which is all it may read there; its table grants are
``stacks.access.FLAG_SYNC_ACCESS``, given by the stack, and it is denied writes to the
routes table outside the flag partition. Two runs that overlap cannot both write an item:
the later one's conditional write fails, and the next run retries.
"""

from __future__ import annotations

from aws_cdk import ArnFormat, Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from edge.flags import FLAGS_PARTITION

FLAG_SYNC_HANDLER = "orchestrator.flags.sync.handler"
SDK_KEY_SECRET_ENV = "EDGESHIFT_LAUNCHDARKLY_SDK_KEY_SECRET"  # orchestrator.flags.sync's
SCHEDULE = Duration.minutes(1)


class FlagSync(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        function: lambda_.Function,
        sdk_key_secret_name: str,
        routes_table_arn: str | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.function = function
        function.add_environment(SDK_KEY_SECRET_ENV, sdk_key_secret_name)
        # Secrets Manager appends "-" and six characters to a secret's name in its ARN.
        secret = Stack.of(self).format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{sdk_key_secret_name}-??????",
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["secretsmanager:GetSecretValue"], resources=[secret])
        )
        if routes_table_arn is not None:
            # Its Put and Delete grant covers the whole routes table; it writes only the flag
            # partition, so anything else (the routes themselves) is denied.
            function.add_to_role_policy(
                iam.PolicyStatement(
                    effect=iam.Effect.DENY,
                    actions=["dynamodb:PutItem", "dynamodb:DeleteItem"],
                    resources=[routes_table_arn],
                    conditions={
                        "ForAnyValue:StringNotEquals": {"dynamodb:LeadingKeys": [FLAGS_PARTITION]}
                    },
                )
            )
        self.rule = events.Rule(
            self,
            "Schedule",
            description="edgeshift: LaunchDarkly flag data into the routes table",
            schedule=events.Schedule.rate(SCHEDULE),
            targets=[targets.LambdaFunction(function, retry_attempts=0)],
        )
