"""Starting rollouts from EventBridge "Release Published" events, against moto."""

from __future__ import annotations

import json

import boto3
import pytest
from local_aws import stand_in_state_machine
from moto import mock_aws

from orchestrator.events import handler as event_handler
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.store import Store, TableNames, create_tables

HOST = "shop.example.com"


def release_event(event_id: str = "7bf73129-1428-4cd3-a780-95db273d1602", **detail):
    """An EventBridge event as Lambda receives it (AWS's documented envelope)."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Release Published",
        "source": "ci.pipeline",
        "account": "123456789012",
        "time": "2026-11-22T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"host": HOST, "version": "v2", "plan": "standard", **detail},
    }


@pytest.fixture
def aws(monkeypatch):
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, TableNames())
        store = Store(dynamodb, TableNames())
        store.put_route(demo_route(HOST, 8001, 8002), expected_revision=None)
        template = demo_plan(demo_route(HOST, 8001, 8002)).model_dump(
            mode="json", include={"stages", "analysis", "policies"}
        )
        boto3.client("ssm", region_name="us-east-1").put_parameter(
            Name="/edgeshift/plans/standard", Value=json.dumps(template), Type="String"
        )
        arn = stand_in_state_machine()
        monkeypatch.setenv("EDGESHIFT_STATE_MACHINE_ARN", arn)
        event_handler._service.cache_clear()
        yield store
        event_handler._service.cache_clear()


def test_release_event_starts_a_rollout_of_the_new_version(aws, lambda_context):
    """GIVEN a plan template WHEN a release is published THEN v1 -> v2 starts on its route."""
    outcome = event_handler.handler(release_event(), lambda_context)
    assert outcome["status"] == "started"
    rollout = aws.get_rollout(outcome["rollout_id"])
    assert (rollout.plan.stable.version, rollout.plan.canary.version) == ("v1", "v2")
    assert rollout.created_by == "eventbridge:ci.pipeline"


def test_redelivered_event_starts_nothing_new(aws, lambda_context):
    """EventBridge may deliver an event twice: the same event id gives the same rollout."""
    first = event_handler.handler(release_event(), lambda_context)
    again = event_handler.handler(release_event(), lambda_context)
    assert again == first


def test_a_second_release_while_one_runs_is_a_conflict(aws, lambda_context):
    """Another event for a busy target is refused with the active rollout named."""
    first = event_handler.handler(release_event(), lambda_context)
    other = event_handler.handler(release_event("another-id", version="v3"), lambda_context)
    assert other["status"] == "conflict" and first["rollout_id"] in other["problems"][0]


@pytest.mark.parametrize(
    ("detail", "field"),
    [
        ({"host": "Not A Host"}, "detail.host"),
        ({"version": ""}, "detail.version"),
        ({"plan": "missing"}, "plan template not found"),
        ({"surprise": 1}, "detail.surprise"),
    ],
)
def test_bad_release_events_are_rejected_without_writing(aws, lambda_context, detail, field):
    """Malformed details and unknown templates are reported by field; no rollout exists."""
    outcome = event_handler.handler(release_event(**detail), lambda_context)
    assert outcome["status"] == "rejected"
    assert any(field in problem for problem in outcome["problems"]), outcome
    assert aws.lock_holder(HOST, "default") is None
