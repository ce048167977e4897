"""The control API, the release-published rule and what their functions may do."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.events.bus import SOURCE
from orchestrator.events.release import DETAIL_TYPE, PLAN_PREFIX
from stacks.api import API_HANDLER, BURST_LIMIT, RATE_LIMIT
from stacks.events import EVENTS_HANDLER, RELEASE_DETAIL_TYPE
from stacks.orchestrator_stack import LIFECYCLE_SOURCE
from stacks.orchestrator_stack import PLAN_PREFIX as STACK_PLAN_PREFIX

from .cfn import Synthesized, as_list, functions_by_handler, resources, statements_of

pytestmark = pytest.mark.infra


def _function(synthesized: Synthesized, handler: str) -> dict[str, Any]:
    return functions_by_handler(synthesized.orchestrator)[handler]


def _statements(synthesized: Synthesized, handler: str) -> list[dict[str, Any]]:
    role_id = _function(synthesized, handler)["Role"]["Fn::GetAtt"][0]
    return statements_of(synthesized.orchestrator, role_id)


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {action for s in statements for action in as_list(s["Action"])}


def test_every_api_method_requires_aws_iam(synthesized: Synthesized) -> None:
    """No method of the control API is open: each one uses SigV4 (AWS_IAM)."""
    methods = resources(synthesized.orchestrator, "AWS::ApiGateway::Method").values()
    assert len(methods) >= 9
    for method in methods:
        assert method["Properties"]["AuthorizationType"] == "AWS_IAM"
        assert method["Properties"]["RequestValidatorId"]


def test_api_methods_all_go_to_the_api_handler(synthesized: Synthesized) -> None:
    """Every method proxies to the Lambda whose handler is orchestrator.api.handler.handler."""
    api_id = _function(synthesized, API_HANDLER)["id"]
    for method in resources(synthesized.orchestrator, "AWS::ApiGateway::Method").values():
        integration = method["Properties"]["Integration"]
        assert integration["Type"] == "AWS_PROXY"
        assert api_id in json.dumps(integration["Uri"])


def test_api_stage_logs_access_traces_and_throttles(synthesized: Synthesized) -> None:
    """The stage writes JSON access logs, enables X-Ray, and throttles every method."""
    (stage,) = resources(synthesized.orchestrator, "AWS::ApiGateway::Stage").values()
    props = stage["Properties"]
    assert props["AccessLogSetting"]["DestinationArn"]["Fn::GetAtt"][1] == "Arn"
    log_format = json.loads(props["AccessLogSetting"]["Format"])
    assert {"caller", "user", "ip", "status", "resourcePath"} <= log_format.keys()
    assert props["TracingEnabled"] is True
    (settings,) = props["MethodSettings"]
    assert (settings["ResourcePath"], settings["HttpMethod"]) == ("/*", "*")
    assert settings["ThrottlingRateLimit"] == RATE_LIMIT
    assert settings["ThrottlingBurstLimit"] == BURST_LIMIT
    assert settings["LoggingLevel"] == "INFO"
    assert settings["DataTraceEnabled"] is False


def _route_writes(statements: list[dict[str, Any]]) -> set[str]:
    return {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} & {
        a for s in statements if "Routes" in json.dumps(s["Resource"]) for a in as_list(s["Action"])
    }


def test_control_functions_start_rollouts_and_only_the_api_defines_routes(
    synthesized: Synthesized,
) -> None:
    """Both start executions; only the API writes routes (PUT /routes, as Puts in a
    transaction, with an Update pinning a flag-routed rule's flag item); events never do."""
    for handler in (API_HANDLER, EVENTS_HANDLER):
        statements = _statements(synthesized, handler)
        actions = _actions(statements)
        assert "states:StartExecution" in actions
        assert "states:StopExecution" not in actions
    assert _route_writes(_statements(synthesized, API_HANDLER)) == {
        "dynamodb:PutItem",
        "dynamodb:UpdateItem",
    }
    assert not _route_writes(_statements(synthesized, EVENTS_HANDLER))
    for handler in (API_HANDLER, EVENTS_HANDLER):
        fn = _function(synthesized, handler)
        assert "EDGESHIFT_STATE_MACHINE_ARN" in fn["Environment"]["Variables"]
    assert "states:SendTaskSuccess" in _actions(_statements(synthesized, API_HANDLER))
    assert "states:SendTaskSuccess" not in _actions(_statements(synthesized, EVENTS_HANDLER))


def test_release_published_rule_targets_the_event_handler(synthesized: Synthesized) -> None:
    """The rule matches "Release Published" and retries into a dead-letter queue."""
    (rule,) = resources(synthesized.orchestrator, "AWS::Events::Rule").values()
    props = rule["Properties"]
    assert props["EventPattern"]["detail-type"] == [RELEASE_DETAIL_TYPE] == [DETAIL_TYPE]
    (target,) = props["Targets"]
    assert target["Arn"]["Fn::GetAtt"][0] == _function(synthesized, EVENTS_HANDLER)["id"]
    assert target["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] in resources(
        synthesized.orchestrator, "AWS::SQS::Queue"
    )


def test_event_handler_reads_only_plan_templates(synthesized: Synthesized) -> None:
    """ssm:GetParameter is limited to the plan prefix the release handler reads."""
    assert STACK_PLAN_PREFIX == PLAN_PREFIX
    (statement,) = [
        s for s in _statements(synthesized, EVENTS_HANDLER) if "ssm:GetParameter" in s["Action"]
    ]
    assert json.dumps(statement["Resource"]).endswith(f':parameter{PLAN_PREFIX}*"]]}}')


def test_lifecycle_events_are_limited_to_the_rollouts_source(synthesized: Synthesized) -> None:
    """Every orchestrator function may PutEvents on the default bus, only as edgeshift.rollouts."""
    assert LIFECYCLE_SOURCE == SOURCE
    for handler in functions_by_handler(synthesized.orchestrator, "orchestrator."):
        (statement,) = [
            s for s in _statements(synthesized, handler) if "events:PutEvents" in s["Action"]
        ]
        assert statement["Condition"] == {"StringEquals": {"events:source": SOURCE}}
        assert "event-bus/default" in json.dumps(statement["Resource"])


def test_only_the_looking_tasks_read_metrics(synthesized: Synthesized) -> None:
    """Metric and Datadog key reads belong to Begin (whose preflight checks the provider and
    reads the stable fleet's last hour) and Analyze; with no distribution configured for
    invalidation (cdk.json), nobody may invalidate."""
    readers = {"orchestrator.workflow.tasks.begin", "orchestrator.workflow.tasks.analyze"}
    for handler in functions_by_handler(synthesized.orchestrator, "orchestrator."):
        actions = _actions(_statements(synthesized, handler))
        assert not [a for a in actions if a.startswith("cloudfront:")]
        assert ("secretsmanager:GetSecretValue" in actions) is (handler in readers)
        assert ("cloudwatch:GetMetricData" in actions) is (handler in readers)
    for handler in readers:
        variables = _function(synthesized, handler)["Environment"]["Variables"]
        assert variables["DD_SITE"] == "datadoghq.com"
        assert variables["EDGESHIFT_DATADOG_SECRET_NAME"] == "edgeshift/datadog"


def test_analyze_has_the_cpu_for_its_boundaries_and_the_others_stay_small(
    synthesized: Synthesized,
) -> None:
    """Analyze computes sequential boundaries at a cold start: 1,024 MB (more CPU) and 60 s;
    the other tasks do a few DynamoDB calls at 256 MB."""
    for handler, fn in functions_by_handler(synthesized.orchestrator, "orchestrator.").items():
        if handler == "orchestrator.workflow.tasks.analyze":
            assert (fn["MemorySize"], fn["Timeout"]) == (1024, 60)
        else:
            assert fn["MemorySize"] == 256


def test_orchestrator_functions_carry_both_dependency_layers(synthesized: Synthesized) -> None:
    """Powertools' public layer (resolved from SSM at deploy) and the vendored one."""
    template = synthesized.orchestrator.to_json()
    (parameter,) = [
        name
        for name, p in template["Parameters"].items()
        if p["Default"].startswith("/aws/service/powertools/python/x86_64/python3.12/")
    ]
    (vendored,) = resources(synthesized.orchestrator, "AWS::Lambda::LayerVersion")
    for fn in functions_by_handler(synthesized.orchestrator, "orchestrator.").values():
        assert fn["Layers"] == [{"Ref": parameter}, {"Ref": vendored}]
