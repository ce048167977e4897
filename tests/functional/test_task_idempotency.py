"""Task handlers called twice with the same input (Step Functions retries) change nothing the
second time, and lifecycle events reach EventBridge targets; against moto."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from local_aws import edgeshift_event_queue
from moto import mock_aws

from orchestrator.events.bus import DETAIL_TYPES, SOURCE
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.models import AuditEvent, ControlAction, ControlRequest, Rollout, RolloutStatus
from orchestrator.store import Store, TableNames, create_tables
from orchestrator.workflow import tasks, transitions

HOST = "shop.example.com"
T = datetime(2026, 12, 1, 10, tzinfo=UTC)


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, TableNames())
        store = Store(dynamodb, TableNames())
        route = store.put_route(demo_route(HOST, 8001, 8002), expected_revision=None)
        sqs, queue, _ = edgeshift_event_queue()
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
        detail={"stage": 0, "decision": decision, "look_key": LOOK},
        status=RolloutStatus.PROMOTING,
    )

    retry = {"rollout_id": rollout_id, "entered_at": LOOK}
    assert tasks.analyze(retry, lambda_context) == decision
    assert _kinds(store, rollout_id).count("analysis") == 1  # nothing written again
    with pytest.raises(tasks.RolloutNotActive):  # a later look is not this one
        tasks.analyze({**retry, "entered_at": "2026-12-01T10:01:00.000Z"}, lambda_context)


LOOK = "2026-12-01T10:00:00.000Z"


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


def _parked_rollout(store, rollout_id, lambda_context, token="token-1", **step):
    tasks.begin({"rollout_id": rollout_id}, lambda_context)
    apply = {"action": "apply", "stage": 0, "wait_seconds": 0, "reason": ""}
    tasks.apply_stage({"rollout_id": rollout_id, "step": apply}, lambda_context)
    pause = {"action": "pause", "stage": 0, "wait_seconds": 60, "reason": "paused by oncall"}
    event = {"rollout_id": rollout_id, "step": {**pause, **step}, "task_token": token}
    tasks.hold(event, lambda_context)
    return event


def test_hold_never_parks_over_a_promote_made_after_the_look(aws, lambda_context):
    """GIVEN a look that decided to pause WHEN a promote is accepted before Hold runs THEN
    Hold does not park (RequestPending), and Recheck carries the promote out."""
    store, rollout_id, _ = aws
    tasks.begin({"rollout_id": rollout_id}, lambda_context)
    apply = {"action": "apply", "stage": 0, "wait_seconds": 0, "reason": ""}
    tasks.apply_stage({"rollout_id": rollout_id, "step": apply}, lambda_context)
    request = ControlRequest(action=ControlAction.PROMOTE, actor="oncall", reason="ok", at=T)
    transitions.commit(
        store,
        store.get_rollout(rollout_id),
        "control_requested",
        "promote",
        actor="oncall",
        control=request,
    )
    pause = {"action": "pause", "stage": 0, "wait_seconds": 60, "reason": "no verdict"}
    with pytest.raises(tasks.RequestPending):
        tasks.hold({"rollout_id": rollout_id, "step": pause, "task_token": "t"}, lambda_context)
    answer = tasks.recheck(
        {"rollout_id": rollout_id, "step": pause, "error": {"Error": "RequestPending"}},
        lambda_context,
    )
    assert answer["step"]["action"] == "promote"
    rollout = store.get_rollout(rollout_id)
    assert rollout.status is RolloutStatus.PROMOTING and rollout.control is None
    assert rollout.task_token is None and _kinds(store, rollout_id)[-1] == "rechecked"


def test_recheck_carries_out_a_resume_whose_wake_was_lost(aws, lambda_context):
    """GIVEN a PAUSED rollout resumed on the record (token kept: its SendTaskSuccess never
    arrived) WHEN the park times out into Recheck THEN the recorded next step is returned
    and the token forgotten."""
    store, rollout_id, _ = aws
    event = _parked_rollout(store, rollout_id, lambda_context)
    nxt = {"action": "bake", "stage": 0, "wait_seconds": 1, "reason": "resumed by oncall"}
    transitions.commit(
        store,
        store.get_rollout(rollout_id),
        "resumed",
        "resumed by oncall",
        actor="oncall",
        detail={"wake": {"output": nxt}},
        status=RolloutStatus.RUNNING,
    )
    answer = tasks.recheck({**event, "error": {"Error": "States.Timeout"}}, lambda_context)
    assert answer == {"rollout_id": rollout_id, "step": nxt}
    assert store.get_rollout(rollout_id).task_token is None


def test_a_park_nobody_answers_is_rechecked_then_rolled_back_at_its_limit(
    aws, lambda_context, monkeypatch
):
    """GIVEN a PAUSED rollout nobody answers WHEN the park times out THEN Recheck parks it
    again (Hold records the new token) until max_pause has passed, then rolls back."""
    store, rollout_id, _ = aws
    event = _parked_rollout(store, rollout_id, lambda_context)
    timed_out = {**event, "error": {"Error": "States.Timeout"}}
    again = tasks.recheck(timed_out, lambda_context)["step"]
    assert again["action"] == "pause" and 0 < again["wait_seconds"] <= 300
    tasks.hold({**event, "step": again, "task_token": "token-2"}, lambda_context)
    parked = store.get_rollout(rollout_id)
    assert parked.status is RolloutStatus.PAUSED and parked.task_token == "token-2"
    later = parked.parked_until + timedelta(seconds=1)
    monkeypatch.setattr(tasks, "utcnow", lambda: later)
    expired = tasks.recheck(timed_out, lambda_context)["step"]
    assert expired["action"] == "rollback" and "max_pause" in expired["reason"]
    final = store.get_rollout(rollout_id)
    assert final.status is RolloutStatus.ROLLING_BACK and final.task_token is None
    assert _kinds(store, rollout_id)[-3:] == ["paused", "reparked", "rechecked"]
