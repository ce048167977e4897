"""Start a rollout when a release is published: an EventBridge rule on the default bus."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sqs as sqs
from constructs import Construct

EVENTS_HANDLER = "orchestrator.events.handler.handler"
# What a CI pipeline puts on the default bus when it publishes a release.
RELEASE_SOURCE = "edgeshift.releases"
RELEASE_DETAIL_TYPE = "Release Published"


class ReleasePublished(Construct):
    """The rule and its target; events the handler cannot take land in a dead-letter queue."""

    def __init__(self, scope: Construct, construct_id: str, *, handler: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        self.dead_letters = sqs.Queue(
            self,
            "DeadLetters",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.rule = events.Rule(
            self,
            "Rule",
            description="edgeshift: start a rollout for each published release",
            event_pattern=events.EventPattern(
                source=[RELEASE_SOURCE], detail_type=[RELEASE_DETAIL_TYPE]
            ),
        )
        self.rule.add_target(
            targets.LambdaFunction(
                handler,
                dead_letter_queue=self.dead_letters,
                retry_attempts=3,
                max_event_age=Duration.hours(1),
            )
        )
