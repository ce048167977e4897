"""cdk-nag AwsSolutions suppressions, each with the reason the rule does not apply here.

Only errors are suppressed, and each as narrowly as cdk-nag allows (`applies_to` for the
granular IAM rules). A new finding fails `make synth` and the infra tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import IConstruct

if TYPE_CHECKING:
    from stacks.edge_stack import EdgeStack
    from stacks.orchestrator_stack import OrchestratorStack

_MANAGED = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
_BASIC_EXECUTION = _MANAGED + "AWSLambdaBasicExecutionRole"
_PUSH_TO_LOGS = _MANAGED + "AmazonAPIGatewayPushToCloudWatchLogs"

_RUNTIME = NagPackSuppression(
    id="AwsSolutions-L1",
    reason="python3.12 is pinned on purpose (stacks/assets.py RUNTIME): the Powertools layer "
    "parameter is per Python version and the edge code is tested on it; bump it deliberately.",
)
_LOGS_POLICY = NagPackSuppression(
    id="AwsSolutions-IAM4",
    reason="AWSLambdaBasicExecutionRole only allows creating and writing the function's own "
    "CloudWatch log streams, which every Lambda function needs.",
    applies_to=[_BASIC_EXECUTION],
)
_TABLE_INDEXES = NagPackSuppression(
    id="AwsSolutions-IAM5",
    reason="`<rollouts table>/index/*` is the rollouts table's own secondary indexes "
    "(by-kind, by-target: orchestrator/store/tables.py), which the store queries to list "
    "rollouts without a scan; it reaches no other table.",
    applies_to=[
        RegexAppliesTo(regex="/^Resource::<TablesRollouts[0-9A-F]{8}\\.Arn>\\/index\\/\\*$/g")
    ],
)
_XRAY = NagPackSuppression(
    id="AwsSolutions-IAM5",
    reason="X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) and "
    "cloudwatch:GetMetricData (Begin's preflight and Analyze) support no resource-level "
    "permissions.",
    applies_to=["Resource::*"],
)


def suppress_orchestrator(stack: OrchestratorStack) -> None:
    NagSuppressions.add_stack_suppressions(stack, [_RUNTIME, _LOGS_POLICY])
    functions = [*stack.tasks.functions.values(), stack.api_handler, stack.events_handler]
    NagSuppressions.add_resource_suppressions(
        functions, [_XRAY, _TABLE_INDEXES], apply_to_children=True
    )
    NagSuppressions.add_resource_suppressions(
        stack.workflow.state_machine,
        [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="Step Functions' own grants for delivering execution logs (the log "
                "delivery APIs take no resource) and for X-Ray tracing.",
                applies_to=["Resource::*"],
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="`<task ARN>:*` covers the versions and aliases of exactly the task "
                "functions the definition calls, nothing else.",
                applies_to=[
                    RegexAppliesTo(regex="/^Resource::<Tasks[A-Za-z]+[0-9A-F]{8}\\.Arn>:\\*$/g")
                ],
            ),
        ],
        apply_to_children=True,
    )
    NagSuppressions.add_resource_suppressions(
        stack.api_handler,
        [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="Describe and history calls on the executions of the rollout state "
                "machine only; execution names are not known in advance.",
                applies_to=[
                    RegexAppliesTo(regex="/^Resource::arn:aws:states:.*:execution:.*:\\*$/g")
                ],
            )
        ],
        apply_to_children=True,
    )
    _wildcard(
        stack.tasks.rollback,
        "distribution/\\*",
        "CreateInvalidation on the distribution the rollout's plan names; plans may target any "
        "distribution of the account, and this is the only CloudFront action granted.",
    )
    for reader in (stack.tasks.begin, stack.tasks.analyze):
        _wildcard(
            reader,
            "secret:.*/\\*",
            "Read-only access to the Datadog key secrets kept under the configured secret name "
            "(plans name one secret per key); no other secret matches the prefix. Begin's "
            "preflight checks the keys, Analyze queries with them.",
        )
    _wildcard(
        stack.events_handler,
        "parameter/edgeshift/plans/\\*",
        "GetParameter on the plan templates under /edgeshift/plans/, which release events "
        "name at run time.",
    )
    NagSuppressions.add_resource_suppressions(
        stack.api.api,
        [
            NagPackSuppression(
                id="AwsSolutions-COG4",
                reason="Callers are operators and pipelines with AWS credentials: every method "
                "uses AWS_IAM (SigV4), so there is no user pool to authorize against.",
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM4",
                reason="API Gateway's account-level logging role; the managed policy is the one "
                "AWS documents for it and only writes API Gateway's own logs.",
                applies_to=[_PUSH_TO_LOGS],
            ),
        ],
        apply_to_children=True,
    )
    NagSuppressions.add_resource_suppressions(
        stack.release_published.dead_letters,
        [
            NagPackSuppression(
                id="AwsSolutions-SQS3",
                reason="This queue is itself the dead-letter queue of the release-published "
                "rule's Lambda target.",
            )
        ],
    )


def _wildcard(construct: IConstruct, resource_regex: str, reason: str) -> None:
    """Suppress IAM5 for one wildcard resource (a regex over cdk-nag's finding) only."""
    NagSuppressions.add_resource_suppressions(
        construct,
        [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason=reason,
                applies_to=[RegexAppliesTo(regex=f"/^Resource::arn:.*:{resource_regex}$/g")],
            )
        ],
        apply_to_children=True,
    )


def suppress_edge(stack: EdgeStack) -> None:
    NagSuppressions.add_stack_suppressions(stack, [_RUNTIME, _LOGS_POLICY])
    if stack.distribution is None:
        return
    suppressions = [
        NagPackSuppression(
            id="AwsSolutions-CFR3",
            reason="The demo distribution only shows the routing; standard logs need an "
            "ACL-enabled bucket, and production distributions keep their own logging.",
        )
    ]
    if stack.viewer_certificate_is_default:
        suppressions.append(
            NagPackSuppression(
                id="AwsSolutions-CFR4",
                reason="Without a certificate in context the demo uses *.cloudfront.net, whose "
                "security policy CloudFront fixes; with one, TLSv1.2_2021 is enforced.",
            )
        )
    NagSuppressions.add_resource_suppressions(stack.distribution, suppressions)
