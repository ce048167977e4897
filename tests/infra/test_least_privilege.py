"""Each orchestrator function's role grants the calls its code makes and nothing else.

The expected actions are written out here from the code (orchestrator/store/repository.py
and its callers), not read from stacks/access.py, so a grant that widens fails a test; the
integration tests run every function under these policies, so one that narrows too far
fails there (AccessDeniedException).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aws_cdk import App, Environment
from aws_cdk.assertions import Template

from orchestrator.local.iam import ACCOUNT, REGION
from stacks.config import from_mapping
from stacks.orchestrator_stack import OrchestratorStack
from stacks.policies import function_policies

from .cfn import Synthesized, as_list, default_context, functions_by_handler, resources

pytestmark = pytest.mark.infra

TASKS = "orchestrator.workflow.tasks."
API = "orchestrator.api.handler.handler"
EVENTS = "orchestrator.events.handler.handler"
ROLLOUTS = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/edgeshift-rollouts"
ROUTES = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/edgeshift-routes"
INDEXES = (f"{ROLLOUTS}/index/by-kind", f"{ROLLOUTS}/index/by-target")

# Every task loads its rollout (GetItem) and commits with Puts in one transaction; a final
# status also deletes the target's lock; a retried look and Recheck query the audit events.
EXPECTED_TABLE_ACTIONS: dict[str, dict[str, set[str]]] = {
    f"{TASKS}begin": {ROLLOUTS: {"GetItem", "PutItem"}},
    f"{TASKS}apply_stage": {ROLLOUTS: {"GetItem", "PutItem"}, ROUTES: {"GetItem", "PutItem"}},
    f"{TASKS}analyze": {ROLLOUTS: {"GetItem", "PutItem", "Query"}},
    f"{TASKS}hold": {ROLLOUTS: {"GetItem", "PutItem"}},
    f"{TASKS}recheck": {ROLLOUTS: {"GetItem", "PutItem", "Query"}},
    f"{TASKS}promote": {
        ROLLOUTS: {"GetItem", "PutItem", "DeleteItem"},
        ROUTES: {"GetItem", "PutItem"},
    },
    f"{TASKS}rollback": {
        ROLLOUTS: {"GetItem", "PutItem", "DeleteItem"},
        ROUTES: {"GetItem", "PutItem"},
    },
    f"{TASKS}record_failure": {ROLLOUTS: {"GetItem", "PutItem"}},
    API: {
        ROLLOUTS: {"GetItem", "PutItem", "ConditionCheckItem", "DeleteItem", "Query"},
        INDEXES[0]: {"Query"},
        INDEXES[1]: {"Query"},
        # UpdateItem: a flag-routed rule's write pins its flag item's revision.
        ROUTES: {"GetItem", "PutItem", "Query", "UpdateItem"},
    },
    EVENTS: {ROLLOUTS: {"GetItem", "PutItem", "DeleteItem"}, ROUTES: {"GetItem"}},
}


def _policies(template: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return function_policies(template, account=ACCOUNT, region=REGION)


def _table_actions(statements: list[dict[str, Any]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for statement in statements:
        for action in statement["Action"]:
            if action.startswith("dynamodb:"):
                for resource in statement["Resource"]:
                    out.setdefault(resource, set()).add(action.removeprefix("dynamodb:"))
    return out


def _actions(statements: list[dict[str, Any]]) -> set[str]:
    return {a for s in statements for a in s["Action"]}


def test_each_function_gets_only_the_table_actions_it_calls(synthesized: Synthesized) -> None:
    """GIVEN the synthesized roles THEN each function's DynamoDB actions, table by table, are
    exactly those its code calls: no Scan, batch, DescribeTable or stream reads anywhere."""
    policies = _policies(synthesized.orchestrator.to_json())
    orchestrator = {h: p for h, p in policies.items() if h.startswith("orchestrator.")}
    assert orchestrator.keys() == EXPECTED_TABLE_ACTIONS.keys()
    for handler, statements in orchestrator.items():
        assert _table_actions(statements) == EXPECTED_TABLE_ACTIONS[handler], handler


def test_no_orchestrator_role_carries_a_managed_policy(synthesized: Synthesized) -> None:
    """AWSLambdaBasicExecutionRole is gone: only API Gateway's account role keeps the managed
    policy AWS documents for it."""
    with_managed = {
        json.dumps(role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"])
        for role in resources(synthesized.orchestrator, "AWS::IAM::Role").values()
        if role["Properties"].get("ManagedPolicyArns")
    }
    assert with_managed == {'{"Service": "apigateway.amazonaws.com"}'}


def test_each_function_writes_only_its_own_log_group(synthesized: Synthesized) -> None:
    """CreateLogStream and PutLogEvents on the function's own log group, nothing else of logs
    (the group exists, so no CreateLogGroup)."""
    template = synthesized.orchestrator.to_json()
    functions = functions_by_handler(synthesized.orchestrator, "orchestrator.")
    assert len(functions) == len(EXPECTED_TABLE_ACTIONS)
    for handler, fn in functions.items():
        group = fn["LoggingConfig"]["LogGroup"]["Ref"]
        role = fn["Role"]["Fn::GetAtt"][0]
        logs = [
            statement
            for policy in template["Resources"].values()
            if policy["Type"] == "AWS::IAM::Policy"
            and {"Ref": role} in policy["Properties"]["Roles"]
            for statement in as_list(policy["Properties"]["PolicyDocument"]["Statement"])
            if any(a.startswith("logs:") for a in as_list(statement["Action"]))
        ]
        assert len(logs) == 1, handler
        assert sorted(as_list(logs[0]["Action"])) == ["logs:CreateLogStream", "logs:PutLogEvents"]
        assert as_list(logs[0]["Resource"]) == [{"Fn::GetAtt": [group, "Arn"]}], handler


def test_the_api_handler_calls_only_what_it_uses_of_step_functions(
    synthesized: Synthesized,
) -> None:
    """Start, wake a parked execution (success or failure) and ask whether one still runs
    (recover); no history, listing, heartbeat or stop."""
    statements = _policies(synthesized.orchestrator.to_json())[API]
    states = {a for a in _actions(statements) if a.startswith("states:")}
    assert states == {
        "states:StartExecution",
        "states:SendTaskSuccess",
        "states:SendTaskFailure",
        "states:DescribeExecution",
    }


def _orchestrator_template(**context: Any) -> dict[str, Any]:
    """The orchestrator stack alone, for a context that differs from cdk.json's."""
    config = from_mapping({**default_context(), **context})
    app = App()
    stack = OrchestratorStack(
        app, "Orchestrator", config=config, env=Environment(region=config.primary_region)
    )
    template: dict[str, Any] = Template.from_stack(stack).to_json()
    return template


@pytest.fixture(scope="module")
def cloudwatch_only_with_two_distributions() -> dict[str, Any]:
    return _orchestrator_template(
        **{
            "edgeshift:metricProviders": ["cloudwatch"],
            "edgeshift:datadogSecretName": None,
            "edgeshift:invalidationDistributionIds": ["E2QWRUHAPOMQZL", "E1ABCDEF23456"],
        }
    )


def test_rollback_may_invalidate_exactly_the_configured_distributions(
    cloudwatch_only_with_two_distributions: dict[str, Any],
) -> None:
    """GIVEN two distribution ids in context THEN Rollback's CreateInvalidation names those
    two distributions, and no other function may call CloudFront."""
    policies = _policies(cloudwatch_only_with_two_distributions)
    for handler, statements in policies.items():
        cloudfront = [
            s for s in statements if any(a.startswith("cloudfront:") for a in s["Action"])
        ]
        if handler != f"{TASKS}rollback":
            assert not cloudfront, handler
            continue
        (statement,) = cloudfront
        assert statement["Action"] == ["cloudfront:CreateInvalidation"]
        assert sorted(statement["Resource"]) == [
            f"arn:aws:cloudfront::{ACCOUNT}:distribution/E1ABCDEF23456",
            f"arn:aws:cloudfront::{ACCOUNT}:distribution/E2QWRUHAPOMQZL",
        ]


def test_a_deployment_without_datadog_reads_no_secrets(
    cloudwatch_only_with_two_distributions: dict[str, Any],
) -> None:
    """GIVEN only CloudWatch as provider THEN no role may read Secrets Manager, and Begin and
    Analyze still read CloudWatch."""
    policies = _policies(cloudwatch_only_with_two_distributions)
    for handler, statements in policies.items():
        actions = _actions(statements)
        assert not [a for a in actions if a.startswith("secretsmanager:")], handler
        looks = handler in (f"{TASKS}begin", f"{TASKS}analyze")
        assert ("cloudwatch:GetMetricData" in actions) is looks, handler
        # Only Analyze judges segments, whose values it discovers.
        assert ("cloudwatch:ListMetrics" in actions) is (handler == f"{TASKS}analyze"), handler


def test_a_deployment_without_cloudwatch_reads_no_metrics() -> None:
    """GIVEN only Datadog as provider THEN nobody may call GetMetricData, and Begin and
    Analyze read the key secrets under the configured folder."""
    policies = _policies(_orchestrator_template(**{"edgeshift:metricProviders": ["datadog"]}))
    for handler, statements in policies.items():
        actions = _actions(statements)
        assert "cloudwatch:GetMetricData" not in actions, handler
        looks = handler in (f"{TASKS}begin", f"{TASKS}analyze")
        assert ("secretsmanager:GetSecretValue" in actions) is looks, handler
