"""The control API: start, inspect, pause, resume, abort and promote rollouts, IAM-signed only."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

API_HANDLER = "orchestrator.api.handler.handler"
# Manual control is data (a control request on the rollout item), one resource per verb.
CONTROL_ACTIONS = ("pause", "resume", "abort", "promote")
# Sized for people and CI pipelines, not traffic: a runaway script is refused, not billed.
RATE_LIMIT = 10
BURST_LIMIT = 20


class RolloutApi(Construct):
    """A REST API whose every method requires SigV4 (AWS_IAM) and goes to one handler."""

    def __init__(self, scope: Construct, construct_id: str, *, handler: lambda_.IFunction) -> None:
        super().__init__(scope, construct_id)
        self.access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=logs.RetentionDays.THREE_MONTHS,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.api = apigateway.RestApi(
            self,
            "Api",
            description="edgeshift control API (AWS_IAM authorization on every method)",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            default_integration=apigateway.LambdaIntegration(handler),
            default_method_options=apigateway.MethodOptions(
                authorization_type=apigateway.AuthorizationType.IAM
            ),
            # Stage-level execution logs need API Gateway's account-wide CloudWatch role.
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigateway.StageOptions(
                stage_name="v1",
                access_log_destination=apigateway.LogGroupLogDestination(self.access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigateway.MethodLoggingLevel.INFO,
                # Request bodies carry reasons and plans, never secrets, but keep them out of
                # the execution logs anyway: the access log says who did what.
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=RATE_LIMIT,
                throttling_burst_limit=BURST_LIMIT,
            ),
        )
        validator = self.api.add_request_validator(
            "Validator", validate_request_body=True, validate_request_parameters=True
        )

        def method(resource: apigateway.IResource, verb: str) -> None:
            resource.add_method(
                verb,
                authorization_type=apigateway.AuthorizationType.IAM,
                request_validator=validator,
            )

        # The same paths and methods as openapi.json, which the handler serves (a test
        # compares them both ways): an extra method would reach a 404, a missing one a 403.
        rollouts = self.api.root.add_resource("rollouts")
        method(rollouts, "GET")
        method(rollouts, "POST")
        rollout = rollouts.add_resource("{rollout_id}")
        method(rollout, "GET")
        method(rollout.add_resource("events"), "GET")
        for action in CONTROL_ACTIONS:
            method(rollout.add_resource(action), "POST")
        route = self.api.root.add_resource("routes").add_resource("{host}")
        method(route, "GET")
        method(route, "PUT")
