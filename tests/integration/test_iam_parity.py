"""The local stack runs every function under the policy the synthesized template gives its
role: the calls each function really makes are allowed, and one its role lacks is refused.

The session fixture ``deployed_iam`` (tests/conftest.py) records and checks every call; these
tests drive both providers and the API through the local stack and read the record.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from orchestrator.local.apigw import API_HANDLER, LocalApi
from orchestrator.local.demo import SCENARIOS, run_scenario
from orchestrator.local.iam import DeployedIam, Request, acting_as, allows
from orchestrator.local.stack import LocalStack

pytestmark = pytest.mark.integration

TASKS = "orchestrator.workflow.tasks."


@pytest.fixture(scope="module")
def stack():
    with LocalStack() as running:
        yield running


@pytest.fixture(scope="module")
def recorded(stack, deployed_iam: DeployedIam) -> set[tuple[str, str]]:
    """(handler, action) of every call made while a good canary judged from CloudWatch
    promotes, a bad one judged from Datadog rolls back, and the API reads both."""
    start = len(deployed_iam.calls)
    api = LocalApi()
    for provider, name in (("cloudwatch", "good-canary"), ("datadog", "bad-canary")):
        scenario = SCENARIOS[name]
        result = run_scenario(stack, scenario, lambda _: None, provider=provider)
        refused = [c for c in deployed_iam.calls[start:] if not c.allowed]
        assert not refused, f"calls the deployed roles refuse: {refused}"
        assert result["outcome"] == scenario.expected.value, result
        rollout = f"/rollouts/{result['rollout_id']}"
        for path in ("/rollouts", rollout, f"{rollout}/events", f"/routes/{scenario.host}"):
            assert api.call("GET", path, None, {})["statusCode"] == 200, path
    calls = deployed_iam.calls[start:]
    assert not [c for c in calls if not c.allowed], "calls the deployed roles refuse"
    actions = {(c.function, c.request.action) for c in calls}
    resources = {
        (c.function, f"{c.request.action}:{c.request.resource.rsplit(':', 1)[-1]}") for c in calls
    }
    return actions | resources


@pytest.mark.parametrize(
    ("handler", "action"),
    [
        # Begin's preflight checks the provider and reads the stable fleet's last hour.
        (f"{TASKS}begin", "cloudwatch:GetMetricData"),
        (f"{TASKS}begin", "secretsmanager:GetSecretValue"),
        (f"{TASKS}analyze", "cloudwatch:GetMetricData"),
        # (Analyze's secret reads hit the cache Begin filled: one process runs both here.)
        (f"{TASKS}apply_stage", "dynamodb:PutItem:table/edgeshift-routes"),
        (f"{TASKS}promote", "events:PutEvents"),
        (f"{TASKS}rollback", "dynamodb:PutItem:table/edgeshift-routes"),
        (API_HANDLER, "dynamodb:GetItem"),
    ],
)
def test_functions_make_their_calls_under_their_deployed_roles(recorded, handler, action):
    """GIVEN both providers' rollouts WHEN each function calls AWS THEN its role allows it,
    and the record holds the calls that matter (so the check is not vacuous)."""
    assert (handler, action) in recorded, sorted(recorded)


def test_a_call_the_role_lacks_is_refused_as_aws_would(stack, deployed_iam: DeployedIam):
    """GIVEN Begin's policy WHEN it reads CloudWatch THEN allowed; WHEN it scans a table or
    writes routes, which its role does not grant, THEN AccessDeniedException."""
    cloudwatch = boto3.client("cloudwatch")
    dynamodb = boto3.client("dynamodb")
    with acting_as(f"{TASKS}begin"):
        now = datetime.now(UTC)
        query = {
            "Id": "q",
            "MetricStat": {
                "Metric": {"Namespace": "Edgeshift/Demo", "MetricName": "Requests"},
                "Period": 60,
                "Stat": "Sum",
            },
        }
        cloudwatch.get_metric_data(
            MetricDataQueries=[query], StartTime=now - timedelta(minutes=5), EndTime=now
        )
        with pytest.raises(ClientError) as refused:
            dynamodb.put_item(TableName=stack.tables.routes, Item={"pk": {"S": "x"}})
    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "dynamodb:PutItem" in str(refused.value)


def test_removing_a_needed_permission_fails_the_check(deployed_iam: DeployedIam):
    """GIVEN Begin's synthesized statements without cloudwatch:GetMetricData THEN the call
    preflight makes is no longer allowed (what the stack's bug did in AWS)."""
    begin = list(deployed_iam.policies[f"{TASKS}begin"])
    call = Request("cloudwatch:GetMetricData", "*")
    assert allows(begin, call)
    stripped = [
        {**s, "Action": [a for a in s["Action"] if a != "cloudwatch:GetMetricData"]}
        for s in begin
        if s.get("Action") != ["cloudwatch:GetMetricData"]
    ]
    assert not allows(stripped, call)
