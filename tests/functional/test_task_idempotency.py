"""Task handlers called twice with the same input (Step Functions retries) change nothing the
second time, and lifecycle events reach EventBridge targets; against moto."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from orchestrator.events.bus import DETAIL_TYPES, SOURCE
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.models import AuditEvent, Rollout, RolloutStatus
from orchestrator.store import Store, TableNames, create_tables
from orchestrator.workflow import tasks, transitions

HOST = "shop.example.com"


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, TableNames())
        store = Store(dynamodb, TableNames())
        route = store.put_route(demo_route(HOST, 8001, 8002), expected_revision=None)
        sqs = boto3.client("sqs", region_name="us-east-1")
        queue = sqs.create_queue(QueueName="rollout-events")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events = boto3.client("events", region_name="us-east-1")
        events.put_rule(Name="edgeshift", EventPattern=json.dumps({"source": [SOURCE]}))
        events.put_targets(Rule="edgeshift", Targets=[{"Id": "q", "Arn": arn}])
        tasks._store.cache_clear()
        plan = demo_plan(route)
        rollout = Rollout.start(plan, "tests")
        store.create_rollout(
            rollout,
            AuditEvent(
                rollout_id=rollout.rollout_id,
                seq=1,
                at=rollout.created_at,
                actor="tests",
                kind="created",
            ),
        )
        yield store, rollout.rollout_id, (sqs, queue)
        tasks._store.cache_clear()


def _kinds(store, rollout_id):
    return [event.kind for event in store.events(rollout_id)]


def test_retried_tasks_do_not_repeat_their_work(aws, lambda_context):
    """begin, apply_stage and promote run twice each; each change is recorded once."""
    store, rollout_id, _ = aws
    event = {"rollout_id": rollout_id}
    assert tasks.begin(event, lambda_context) == tasks.begin(event, lambda_context)
    step = {**event, "step": {"action": "apply", "stage": 0, "wait_seconds": 0, "reason": ""}}
    first = tasks.apply_stage(step, lambda_context)
    assert tasks.apply_stage(step, lambda_context) == first
    revision = store.get_route(HOST).revision
    rollout = store.get_rollout(rollout_id)
    transitions.commit(
        store, rollout, "analysis", "promote now", actor="tests", status=RolloutStatus.PROMOTING
    )
    tasks.promote(event, lambda_context)
    tasks.promote(event, lambda_context)
    assert _kinds(store, rollout_id) == [
        "created",
        "started",
        "stage_applied",
        "analysis",
        "promoted",
    ]
    route = store.get_route(HOST)
    assert route.revision == revision + 1  # one write for the one promotion
    assert route.variant("stable").version == "v2" and route.weights()["stable"] == 10_000


def test_rollback_twice_rolls_back_once_and_a_finished_rollout_stays_finished(aws, lambda_context):
    """A retried rollback is a no-op, and rolling back a PROMOTED rollout changes nothing."""
    store, rollout_id, _ = aws
    event = {"rollout_id": rollout_id, "error": {"Error": "RuntimeError", "Cause": "boom"}}
    tasks.begin({"rollout_id": rollout_id}, lambda_context)
    tasks.rollback(event, lambda_context)
    tasks.rollback(event, lambda_context)
    assert _kinds(store, rollout_id).count("rolled_back") == 1
    final = store.get_rollout(rollout_id)
    assert final.status is RolloutStatus.ROLLED_BACK and "RuntimeError" in final.reason
    assert store.lock_holder(HOST, "default") is None


def test_lifecycle_events_reach_an_eventbridge_target(aws, lambda_context):
    """Started, stage advanced and rolled back arrive on a rule's target with their detail."""
    _, rollout_id, (sqs, queue) = aws
    tasks.begin({"rollout_id": rollout_id}, lambda_context)
    step = {
        "rollout_id": rollout_id,
        "step": {"action": "apply", "stage": 0, "wait_seconds": 0, "reason": ""},
    }
    tasks.apply_stage(step, lambda_context)
    tasks.rollback({"rollout_id": rollout_id}, lambda_context)
    bodies = []
    for _ in range(5):
        got = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        bodies += [json.loads(m["Body"]) for m in got]
        if len(bodies) >= 3:
            break
    types = [body["detail-type"] for body in bodies]
    assert types == [DETAIL_TYPES[k] for k in ("started", "stage_applied", "rolled_back")]
    assert all(
        body["source"] == SOURCE and body["detail"]["rollout_id"] == rollout_id for body in bodies
    )
    assert bodies[1]["detail"]["canary_weight"] == 10.0


def test_a_retried_analyze_answers_its_own_promotion_again(aws, lambda_context):
    """GIVEN an Analyze whose look committed PROMOTING and whose invoke then failed WHEN
    Step Functions retries it THEN the retry returns the recorded decision (promote), not
    RolloutNotActive, which the state machine would send to Rollback."""
    store, rollout_id, _ = aws
    tasks.begin({"rollout_id": rollout_id}, lambda_context)
    apply = {"action": "apply", "stage": 0, "wait_seconds": 0, "reason": ""}
    tasks.apply_stage({"rollout_id": rollout_id, "step": apply}, lambda_context)
    decision = {"action": "promote", "stage": 0, "wait_seconds": 0, "reason": "stage 1 passed"}
    transitions.commit(
        store,
        store.get_rollout(rollout_id),
        "analysis",
        "stage 1 passed",
        actor="workflow",
        detail={"stage": 0, "decision": decision},
        status=RolloutStatus.PROMOTING,
    )

    assert tasks.analyze({"rollout_id": rollout_id}, lambda_context) == decision
    assert _kinds(store, rollout_id).count("analysis") == 1  # nothing written again


def test_analyze_after_a_person_aborted_is_still_refused(aws, lambda_context):
    """GIVEN a rollout ROLLING_BACK by another change than a look WHEN Analyze runs THEN it
    is refused as before: only a look's own decision is answered again."""
    store, rollout_id, _ = aws
    tasks.begin({"rollout_id": rollout_id}, lambda_context)
    transitions.commit(
        store,
        store.get_rollout(rollout_id),
        "rolling_back",
        "aborted",
        actor="someone",
        status=RolloutStatus.ROLLING_BACK,
    )

    with pytest.raises(tasks.RolloutNotActive):
        tasks.analyze({"rollout_id": rollout_id}, lambda_context)
