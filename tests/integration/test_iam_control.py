"""The control functions (the API handler and the release handler) make every call of their
steering paths under the policy the synthesized template gives their roles.

test_iam_parity.py drives the tasks and the API's reads; these drive what only people and
releases do: an idempotent start, pause and resume of a parked rollout (SendTaskSuccess),
abort of one awaiting approval (SendTaskFailure), abort after the execution was stopped
(DescribeExecution, then recover's route write and the lock's Delete), listings through
both indexes, a route definition, and a release that starts a rollout or, when the
execution cannot start, gives its lock back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from orchestrator.flags import FlagStore, load_file
from orchestrator.local.apigw import API_HANDLER, LocalApi
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.local.dispatch import InvocationContext
from orchestrator.local.feeder import MetricsFeeder, constant
from orchestrator.local.iam import DeployedIam, acting_as
from orchestrator.local.stack import LocalStack
from orchestrator.models import Rollout, RolloutStatus

pytestmark = pytest.mark.integration

EVENTS_HANDLER = "orchestrator.events.handler.handler"
FLAGS = Path(__file__).resolve().parents[2] / "examples" / "flags.json"
OPERATOR = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running


def _plan(host: str, *, approval: bool = False, bake: int = 3, interval: int = 1) -> dict:
    document = demo_plan(demo_route(host, 8001, 8002)).model_dump(mode="json")
    document["stages"] = [
        {"weight": w, "bake": bake, "interval": interval, "approval": approval and i == 0}
        for i, w in enumerate((10, 50, 100))
    ]
    return document


def _wait(stack: LocalStack, rollout_id: str, check: Callable[[Rollout], bool]) -> Rollout:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rollout = stack.store().get_rollout(rollout_id)
        if check(rollout):
            return rollout
        time.sleep(0.2)
    raise AssertionError(f"{rollout_id} never got there: {rollout}")


class Operator:
    """Requests as API Gateway hands them to the deployed handler (under its role)."""

    def __init__(self) -> None:
        self.api = LocalApi()

    def __call__(
        self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        text = None if body is None else json.dumps(body)
        result = self.api.call(method, path, text, {**OPERATOR, **(headers or {})})
        return result["statusCode"], json.loads(result["body"]) if result.get("body") else None


def _started(operator: Operator, plan: dict, key: str | None = None) -> str:
    status, body = operator("POST", "/rollouts", plan, {"Idempotency-Key": key} if key else {})
    assert status == 201, body
    return str(body["rollout_id"])


def _steer_with_pause_and_resume(stack: LocalStack, operator: Operator) -> None:
    host = "resume.iam.edgeshift.test"
    stack.store().put_route(demo_route(host, 8001, 8002), expected_revision=None)
    plan = _plan(host)
    rollout_id = _started(operator, plan, key="build-77")
    assert _started(operator, plan, key="build-77") == rollout_id  # the recorded response
    _wait(stack, rollout_id, lambda r: r.stage_index == 0)
    assert operator("POST", f"/rollouts/{rollout_id}/pause", {"reason": "dashboard"})[0] == 200
    _wait(stack, rollout_id, lambda r: r.status is RolloutStatus.PAUSED)
    assert operator("POST", f"/rollouts/{rollout_id}/resume", {"reason": "fine"})[0] == 200
    _wait(stack, rollout_id, lambda r: r.status is not RolloutStatus.PAUSED)
    operator("POST", f"/rollouts/{rollout_id}/abort", {"reason": "done with it"})
    _wait(stack, rollout_id, lambda r: r.status.is_final)


def _abort_at_the_approval_gate(stack: LocalStack, operator: Operator) -> None:
    host = "approval.iam.edgeshift.test"
    stack.store().put_route(demo_route(host, 8001, 8002), expected_revision=None)
    rollout_id = _started(operator, _plan(host, approval=True))
    _wait(stack, rollout_id, lambda r: r.status is RolloutStatus.AWAITING_APPROVAL)
    status, body = operator("POST", f"/rollouts/{rollout_id}/abort", {"reason": "not today"})
    assert status == 200, body
    final = _wait(stack, rollout_id, lambda r: r.status.is_final)
    assert final.status is RolloutStatus.ROLLED_BACK


def _abort_a_stopped_execution(stack: LocalStack, operator: Operator) -> None:
    host = "recover.iam.edgeshift.test"
    stack.store().put_route(demo_route(host, 8001, 8002), expected_revision=None)
    rollout_id = _started(operator, _plan(host, bake=600, interval=5))
    running = _wait(stack, rollout_id, lambda r: r.stage_index == 0)
    stack.client("stepfunctions").stop_execution(executionArn=running.execution_arn)
    # Nothing would carry a request out: abort does what recover does.
    status, body = operator("POST", f"/rollouts/{rollout_id}/abort", {"reason": "stopped"})
    assert status == 200, body
    assert stack.store().get_rollout(rollout_id).status is RolloutStatus.ROLLED_BACK
    assert stack.store().lock_holder(host, "default") is None


def _list_and_define_routes(stack: LocalStack, operator: Operator) -> None:
    host = "routes.iam.edgeshift.test"
    stack.store().put_route(demo_route(host, 8001, 8002), expected_revision=None)
    assert operator("GET", "/rollouts")[0] == 200
    assert operator("GET", "/rollouts?host=resume.iam.edgeshift.test")[0] == 200
    status, body = operator("GET", f"/routes/{host}")
    assert status == 200, body
    rules = body["rules"]
    rules[0]["variants"][0]["version"] = "v3"
    status, body = operator("PUT", f"/routes/{host}", {"rules": rules, "reason": "new canary"})
    assert status == 200, body
    # A flag-routed rule: its write pins the flag item (UpdateItem) in the same transaction.
    FlagStore(stack.client("dynamodb")).sync(load_file(FLAGS), actor="test", source="example")
    routed = {
        **{k: v for k, v in rules[0].items() if k not in ("revision", "path_rule")},
        "path_rule": "prefix:/checkout",
        "assignment": {
            "provider": "launchdarkly",
            "flag": "new-checkout",
            "context": {"key_from": "cookie:ld_uid"},
            "variations": {"true": rules[0]["variants"][0]["name"]},
            "fallback": rules[0]["variants"][1]["name"],
        },
    }
    status, body = operator("PUT", f"/routes/{host}", {"rules": [routed], "reason": "flag"})
    assert status == 200, body


def _release_event(event_id: str, host: str) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Release Published",
        "source": "ci.pipeline",
        "account": "123456789012",
        "time": "2026-11-22T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"host": host, "version": "v2", "plan": "standard"},
    }


def _release(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    from orchestrator.events import handler as events

    host = "release.iam.edgeshift.test"
    stack.store().put_route(demo_route(host, 8001, 8002), expected_revision=None)
    template = {k: v for k, v in _plan(host).items() if k in ("stages", "analysis", "policies")}
    stack.client("ssm").put_parameter(
        Name="/edgeshift/plans/standard", Value=json.dumps(template), Type="String"
    )
    context = InvocationContext("edgeshift-release", "arn:aws:lambda:us-east-1:0:function:r")
    events._service.cache_clear()
    with acting_as(EVENTS_HANDLER):
        outcome = events.handler(_release_event("release-1", host), context)
    assert outcome["status"] == "started", outcome
    operator = Operator()
    operator("POST", f"/rollouts/{outcome['rollout_id']}/abort", {"reason": "clean up"})
    _wait(stack, outcome["rollout_id"], lambda r: r.status.is_final)
    # A state machine that is not there: the start is abandoned and its lock given back.
    missing = stack.state_machine_arn.rsplit(":", 1)[0] + ":not-deployed"
    monkeypatch.setenv("EDGESHIFT_STATE_MACHINE_ARN", missing)
    events._service.cache_clear()
    try:
        with acting_as(EVENTS_HANDLER), pytest.raises(ClientError):
            events.handler(_release_event("release-2", host), context)
    finally:
        events._service.cache_clear()
    assert stack.store().lock_holder(host, "default") is None


@pytest.fixture(scope="module")
def recorded(stack: LocalStack, deployed_iam: DeployedIam) -> set[tuple[str, str]]:
    """(handler, action) of every call the control functions made in the steering paths."""
    start = len(deployed_iam.calls)
    hosts = ("resume", "approval", "recover", "release")
    feeders = [
        MetricsFeeder(
            stack.store(), stack.client("cloudwatch"), f"{h}.iam.edgeshift.test", constant(0.005)
        ).start()
        for h in hosts
    ]
    monkeypatch = pytest.MonkeyPatch()
    try:
        operator = Operator()
        _steer_with_pause_and_resume(stack, operator)
        _abort_at_the_approval_gate(stack, operator)
        _abort_a_stopped_execution(stack, operator)
        _list_and_define_routes(stack, operator)
        _release(stack, monkeypatch)
    finally:
        monkeypatch.undo()
        for feeder in feeders:
            feeder.stop()
    calls = deployed_iam.calls[start:]
    refused = [c for c in calls if not c.allowed]
    assert not refused, f"calls the deployed roles refuse: {refused}"
    return {(c.function, c.request.action) for c in calls} | {
        (c.function, f"{c.request.action}:index") for c in calls if "/index/" in c.request.resource
    }


@pytest.mark.parametrize(
    ("handler", "action"),
    [
        (API_HANDLER, "dynamodb:ConditionCheckItem"),  # PUT /routes checks the target's lock
        (API_HANDLER, "dynamodb:UpdateItem"),  # ... and pins a flag-routed rule's flag
        (API_HANDLER, "dynamodb:DeleteItem"),  # the lock, when abort recovers the rollout
        (API_HANDLER, "dynamodb:Query:index"),  # listing through a secondary index
        (API_HANDLER, "states:StartExecution"),
        (API_HANDLER, "states:SendTaskSuccess"),  # resume
        (API_HANDLER, "states:SendTaskFailure"),  # abort while parked
        (API_HANDLER, "states:DescribeExecution"),  # does the execution still run?
        (EVENTS_HANDLER, "ssm:GetParameter"),
        (EVENTS_HANDLER, "states:StartExecution"),
        (EVENTS_HANDLER, "dynamodb:DeleteItem"),  # the abandoned start's lock
    ],
)
def test_control_functions_make_their_calls_under_their_deployed_roles(
    recorded: set[tuple[str, str]], handler: str, action: str
) -> None:
    """GIVEN people's and releases' requests WHEN the API or release handler calls AWS THEN
    its role allows every call, and the record holds the ones that matter."""
    assert (handler, action) in recorded, sorted(recorded)
