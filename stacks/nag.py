"""cdk-nag AwsSolutions suppressions, each with the reason the rule does not apply here.

Only errors are suppressed, and each as narrowly as cdk-nag allows (`applies_to` for the
granular IAM rules). A new finding fails `make synth` and the infra tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cdk_nag import NagPackSuppression, NagSuppressions, RegexAppliesTo
from constructs import IConstruct

from stacks.config import DATADOG

if TYPE_CHECKING:
    from aws_cdk import aws_lambda as lambda_

    from stacks.edge_stack import EdgeStack
    from stacks.orchestrator_stack import OrchestratorStack

_PUSH_TO_LOGS = (
    "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
)

_RUNTIME = NagPackSuppression(
    id="AwsSolutions-L1",
    reason="python3.12 is pinned on purpose: every function of the app runs stacks/assets.py "
    "RUNTIME, and the orchestrator's load the Powertools layer (pydantic's compiled core) from "
    "a public SSM parameter whose path names python3.12, so a newer runtime is a deliberate "
    "change to both.",
)
_NO_RESOURCE = NagPackSuppression(
    id="AwsSolutions-IAM5",
    reason="`*` is granted only for actions that take no resource: X-Ray PutTraceSegments "
    "and PutTelemetryRecords (active tracing, every function), cloudwatch:GetMetricData "
    "(Begin's preflight and Analyze) and cloudwatch:ListMetrics (Analyze, segment values).",
    applies_to=["Resource::*"],
)


def suppress_orchestrator(stack: OrchestratorStack) -> None:
    NagSuppressions.add_stack_suppressions(stack, [_RUNTIME])
    functions = [*stack.tasks.functions.values(), stack.api_handler, stack.events_handler]
    if stack.flag_sync is not None:  # X-Ray's `*`, like every function
        functions.append(stack.flag_sync.function)
    NagSuppressions.add_resource_suppressions(
        [c for fn in functions for c in _with_role(fn)], [_NO_RESOURCE], apply_to_children=True
    )
    NagSuppressions.add_resource_suppressions(
        stack.workflow.state_machine,
        [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="`*` is CDK's grant for Step Functions' own log delivery to CloudWatch "
                "Logs (CreateLogDelivery and the other log-delivery and describe calls, which "
                "AWS documents with Resource `*`) and for X-Ray (PutTraceSegments, "
                "PutTelemetryRecords, GetSamplingRules, GetSamplingTargets: no resource).",
                applies_to=["Resource::*"],
            ),
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="`<task ARN>:*` is lambda:InvokeFunction on the versions and aliases of "
                "the task functions the definition calls, one ARN per task function.",
                applies_to=[
                    RegexAppliesTo(regex="/^Resource::<Tasks[A-Za-z]+[0-9A-F]{8}\\.Arn>:\\*$/g")
                ],
            ),
        ],
        apply_to_children=True,
    )
    NagSuppressions.add_resource_suppressions(
        _with_role(stack.api_handler),
        [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="DescribeExecution on the executions of the rollout state machine only "
                "(recover asks whether one still runs); each is named after its rollout id, "
                "which is not known at deploy time.",
                applies_to=[
                    RegexAppliesTo(regex="/^Resource::arn:aws:states:.*:execution:.*:\\*$/g")
                ],
            )
        ],
        apply_to_children=True,
    )
    if DATADOG in stack.metric_providers:
        for reader in (stack.tasks.begin, stack.tasks.analyze):
            _wildcard(
                reader,
                "secret:.*/\\*",
                "GetSecretValue (read only) on secrets whose names start with the configured "
                "Datadog folder and a slash; plans name their key secrets when they are "
                "written, so the names are not known at deploy time. Begin's preflight checks "
                "the keys, Analyze queries with them.",
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
                reason="API Gateway's account-level CloudWatch role, trusted by "
                "apigateway.amazonaws.com only. AWS documents this managed policy for it; it "
                "allows log writes on `*` because one role serves the execution logs of every "
                "REST API in the account and region, whose log groups this stack cannot name.",
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


def _with_role(fn: lambda_.Function) -> list[IConstruct]:
    """A function and its role, which stacks/functions.py creates beside it, not inside."""
    return [fn, fn.role] if fn.role is not None else [fn]


def _wildcard(fn: lambda_.Function, resource_regex: str, reason: str) -> None:
    """Suppress IAM5 for one wildcard resource (a regex over cdk-nag's finding) only."""
    NagSuppressions.add_resource_suppressions(
        _with_role(fn),
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
    NagSuppressions.add_stack_suppressions(stack, [_RUNTIME])
    NagSuppressions.add_resource_suppressions(
        stack.edge.logs_policy,
        [
            NagPackSuppression(
                id="AwsSolutions-IAM5",
                reason="Lambda@Edge writes each function's logs in the region of the edge "
                "location that ran it, always to /aws/lambda/us-east-1.<function name>: the "
                "region is `*` (and `:*` the group's streams), the group names are exact.",
                applies_to=[
                    RegexAppliesTo(
                        regex="/^Resource::arn:.*:logs:\\*:.*:log-group:\\/aws\\/lambda\\/"
                        "us-east-1\\.<Functions[A-Za-z]+[0-9A-F]{8}>(:\\*)?$/g"
                    )
                ],
            )
        ],
    )
    if stack.distribution is None:
        return
    suppressions = [
        NagPackSuppression(
            id="AwsSolutions-CFR3",
            reason="The only distribution this stack creates is the demo one (when no "
            "existing distribution id is configured) and it creates no log bucket: CFR3 checks "
            "legacy standard logging, which needs an S3 bucket with ACLs enabled. An existing "
            "distribution keeps whatever logging its owner set.",
        )
    ]
    if stack.viewer_certificate_is_default:
        suppressions.append(
            NagPackSuppression(
                id="AwsSolutions-CFR4",
                reason="Without a certificate in context the demo answers on *.cloudfront.net "
                "with CloudFront's default certificate, whose minimum protocol CloudFront "
                "fixes (TLSv1); with a certificate, TLSv1.2_2021 is set.",
            )
        )
    NagSuppressions.add_resource_suppressions(stack.distribution, suppressions)
