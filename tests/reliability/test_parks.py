"""Faults around a parked rollout and around each task's commit, on the local stack.

The record is the truth and a wake-up call only a hint: a parked execution re-reads the
rollout every ``policies.park_recheck`` (the Recheck state), so a request whose
SendTaskSuccess is lost, or that lands between a look and the Hold task, is still carried
out. Each scenario runs on its own host, all at once, on one local stack (the real ASL in
moto's interpreter, the real handlers under their deployed IAM); each test reads its own.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from botocore.exceptions import ClientError

from orchestrator import service as service_module
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.local.feeder import MetricsFeeder, constant
from orchestrator.local.stack import LocalStack
from orchestrator.models import Rollout, RolloutPlan, RolloutStatus
from orchestrator.service import ControlRefused, RolloutService, WakeFailed

pytestmark = [pytest.mark.integration, pytest.mark.alone]

RECHECK = 2  # seconds between a parked execution's re-reads of its record
GOOD = constant(0.005)

# What Step Functions' Lambda integration reports when the Lambda service itself fails an
# invoke; the ASL retries it. Raised after the handler's work: the response is lost.
LostResponse = type("Lambda.ServiceException", (Exception,), {})


@dataclass
class Scenario:
    name: str
    weights: tuple[int, ...] = (10, 100)
    approval_stage: int | None = None
    policies: dict[str, Any] = field(default_factory=dict)
    # task suffix -> the handler's answer after which its response is lost (once)
    lose_response: dict[str, Callable[[Any], bool]] = field(default_factory=dict)
    # task suffix -> something a person does just before that task runs (once)
    before_task: dict[str, Callable[[RolloutService, str], None]] = field(default_factory=dict)
    steer: Callable[[Scenario, LocalStack, RolloutService, str], None] | None = None
    rollout: Rollout | None = None
    final: Rollout | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"{self.name}.park.edgeshift.test"

    def plan(self) -> RolloutPlan:
        document = demo_plan(demo_route(self.host, 8001, 8002)).model_dump(mode="json")
        document["stages"] = [
            {"weight": w, "bake": 3, "interval": 1, "approval": i == self.approval_stage}
            for i, w in enumerate(self.weights)
        ]
        document["policies"] = {
            **document.get("policies", {}),
            "park_recheck": RECHECK,
            **self.policies,
        }
        return RolloutPlan.model_validate(document)


def _wait(
    service: RolloutService, rollout_id: str, check: Callable[[Rollout], bool], timeout: float = 60
) -> Rollout:
    deadline = time.monotonic() + timeout
    while True:
        rollout = service.get(rollout_id)
        if check(rollout):
            return rollout
        if time.monotonic() > deadline:
            raise AssertionError(f"{rollout_id} never reached the expected state: {rollout}")
        time.sleep(0.1)


def _parked(service: RolloutService, rollout_id: str, status: RolloutStatus) -> Rollout:
    return _wait(service, rollout_id, lambda r: r.status is status or r.status.is_final)


def _pause(service: RolloutService, rollout_id: str) -> Rollout:
    _wait(service, rollout_id, lambda r: r.stage_started_at is not None)
    service.pause(rollout_id, "oncall", "checking dashboards")
    return _parked(service, rollout_id, RolloutStatus.PAUSED)


class _LostWakes:
    """A Step Functions client whose SendTaskSuccess/Failure never arrive (throttled on
    every try, or the caller died between its write and the call)."""

    def __init__(self, client: Any) -> None:
        self._client, self.tries = client, 0

    def _lost(self, **_: Any) -> Any:
        self.tries += 1
        raise ClientError(
            {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "SendTask"
        )

    send_task_success = send_task_failure = _lost

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def resume_with_a_lost_wake(s: Scenario, stack: LocalStack, service: RolloutService, rid: str):
    _pause(service, rid)
    lossy = RolloutService(service.store, _LostWakes(service.sfn), service.state_machine_arn)
    with pytest.raises(WakeFailed):
        lossy.resume(rid, "oncall", "dashboards are fine")
    s.notes["resumed_at"] = time.monotonic()
    s.notes["stranded"] = service.get(rid)
    moved = _wait(service, rid, lambda r: r.task_token is None)
    s.notes["moved_after"] = time.monotonic() - s.notes["resumed_at"]
    s.notes["moved"] = moved


def abort_with_a_lost_wake(s: Scenario, stack: LocalStack, service: RolloutService, rid: str):
    _pause(service, rid)
    lossy = RolloutService(service.store, _LostWakes(service.sfn), service.state_machine_arn)
    with pytest.raises(WakeFailed):
        lossy.abort(rid, "oncall", "error budget burning")


def approve_with_a_lost_wake(s: Scenario, stack: LocalStack, service: RolloutService, rid: str):
    _parked(service, rid, RolloutStatus.AWAITING_APPROVAL)
    lossy = RolloutService(service.store, _LostWakes(service.sfn), service.state_machine_arn)
    with pytest.raises(WakeFailed):
        lossy.resume(rid, "release-manager", "approved")


def pause_and_wait(s: Scenario, stack: LocalStack, service: RolloutService, rid: str):
    _pause(service, rid)


def stop_while_paused(s: Scenario, stack: LocalStack, service: RolloutService, rid: str):
    parked = _pause(service, rid)
    _stop_then_steer(s, service, parked)


def stop_while_awaiting_approval(s: Scenario, stack: LocalStack, service: RolloutService, rid: str):
    parked = _parked(service, rid, RolloutStatus.AWAITING_APPROVAL)
    _stop_then_steer(s, service, parked)


def _stop_then_steer(s: Scenario, service: RolloutService, parked: Rollout) -> None:
    assert parked.execution_arn
    service.sfn.stop_execution(executionArn=parked.execution_arn, cause="stopped in the console")
    for verb in ("resume", "promote"):
        try:
            getattr(service, verb)(parked.rollout_id, "oncall", "go on")
            s.notes[verb] = "accepted"
        except ControlRefused as exc:
            s.notes[verb] = str(exc)
    s.notes["record_after_refusals"] = service.get(parked.rollout_id)
    service.abort(parked.rollout_id, "oncall", "execution was stopped")


def _promote_now(service: RolloutService, rid: str) -> None:
    service.promote(rid, "oncall", "dashboards are fine")


def _abort_now(service: RolloutService, rid: str) -> None:
    service.abort(rid, "oncall", "error budget burning")


def _pause_now(service: RolloutService, rid: str) -> None:
    service.pause(rid, "oncall", "hold the first stage")


def resume_when_paused(s: Scenario, stack: LocalStack, service: RolloutService, rid: str):
    parked = _parked(service, rid, RolloutStatus.PAUSED)
    s.notes["stage_while_paused"] = parked.stage_index
    service.resume(rid, "oncall", "go on")


def _action(answer: Any) -> str:
    return str((answer or {}).get("action", ""))


SCENARIOS = {
    s.name: s
    for s in [
        Scenario("lost-resume-wake", steer=resume_with_a_lost_wake),
        Scenario("lost-abort-wake", steer=abort_with_a_lost_wake),
        Scenario(
            "lost-approval-wake",
            weights=(10, 50, 100),
            approval_stage=0,
            steer=approve_with_a_lost_wake,
        ),
        Scenario("promote-before-hold", before_task={"hold": _promote_now}, steer=pause_and_wait),
        Scenario("abort-before-hold", before_task={"hold": _abort_now}, steer=pause_and_wait),
        Scenario("pause-runs-out", policies={"max_pause": 5}, steer=pause_and_wait),
        Scenario(
            "pause-before-first-stage",
            before_task={"apply-stage": _pause_now},
            steer=resume_when_paused,
        ),
        Scenario("console-stop-paused", steer=stop_while_paused),
        Scenario("console-stop-approval", approval_stage=0, steer=stop_while_awaiting_approval),
        *[
            Scenario(f"lost-response-{task}", lose_response={task: lambda answer: True})
            for task in ("begin", "apply-stage", "promote")
        ],
        Scenario(
            "lost-response-analyze-promoting",
            lose_response={"analyze": lambda answer: _action(answer) == "promote"},
        ),
        Scenario(
            "lost-response-rollback",
            lose_response={"rollback": lambda answer: True},
            steer=lambda s, stack, service, rid: _pause_then_abort(service, rid),
        ),
        Scenario(
            "lost-response-hold",
            lose_response={"hold": lambda answer: True},
            steer=lambda s, stack, service, rid: _pause_then_resume(service, rid),
        ),
        Scenario(
            "lost-response-recheck",
            lose_response={"recheck": lambda answer: True},
            steer=resume_with_a_lost_wake,
        ),
    ]
}


def _pause_then_abort(service: RolloutService, rid: str) -> None:
    _pause(service, rid)
    service.abort(rid, "oncall", "error budget burning")


def _pause_then_resume(service: RolloutService, rid: str) -> None:
    _pause(service, rid)
    time.sleep(RECHECK + 1)  # the lost Hold response was retried: still parked, new token
    service.resume(rid, "oncall", "dashboards are fine")


def _inject(stack: LocalStack, service: RolloutService) -> None:
    by_host = {s.host: s for s in SCENARIOS.values()}
    store, lock = stack.store(), threading.Lock()
    for name, handler in list(stack.lambdas.handlers.items()):
        suffix = name.removeprefix("edgeshift-")

        def faulty(event: dict[str, Any], context: Any, _h=handler, _s=suffix) -> Any:
            rollout = store.get_rollout(event["rollout_id"])
            scenario = by_host.get(rollout.plan.target.host)
            if scenario is None:
                return _h(event, context)
            with lock:
                before = scenario.before_task.pop(_s, None)
            if before is not None:
                before(service, rollout.rollout_id)
                scenario.notes[f"before_{_s}"] = True
            answer = _h(event, context)
            step = answer.get("step") if _s == "recheck" else answer
            with lock:
                lose = scenario.lose_response.get(_s)
                if lose is not None and lose(step):
                    del scenario.lose_response[_s]
                    scenario.notes[f"lost_{_s}"] = True
                    raise LostResponse(f"{_s} committed; its response was lost")
            return answer

        stack.lambdas.handlers[name] = faulty


@pytest.fixture(scope="module")
def stack():
    with LocalStack() as running:
        yield running


@pytest.fixture(scope="module")
def service(stack):
    return RolloutService(stack.store(), stack.client("stepfunctions"), stack.state_machine_arn)


@pytest.fixture(scope="module")
def outcomes(stack, service):
    _inject(stack, service)
    feeders = []
    for scenario in SCENARIOS.values():
        stack.store().put_route(demo_route(scenario.host, 8001, 8002), expected_revision=None)
        feeders.append(
            MetricsFeeder(
                stack.store(), stack.client("cloudwatch"), scenario.host, GOOD, max_seconds=150
            ).start()
        )

    def run(scenario: Scenario) -> None:
        scenario.rollout = service.start(scenario.plan(), "tests", force=True)
        rid = scenario.rollout.rollout_id
        if scenario.steer:
            scenario.steer(scenario, stack, service, rid)
        scenario.final = _wait(service, rid, lambda r: r.status.is_final, timeout=120)

    saved = service_module.WAKE_BACKOFF
    service_module.WAKE_BACKOFF = 0.01
    try:
        with ThreadPoolExecutor(max_workers=len(SCENARIOS)) as pool:
            for future in [pool.submit(run, s) for s in SCENARIOS.values()]:
                future.result()
    finally:
        service_module.WAKE_BACKOFF = saved
        for feeder in feeders:
            feeder.stop()
    return SCENARIOS


def _kinds(service: RolloutService, scenario: Scenario) -> list[str]:
    assert scenario.rollout is not None
    return [e.kind for e in service.events(scenario.rollout.rollout_id)]


def _consistent(service: RolloutService, scenario: Scenario) -> None:
    """Nothing lost: sequence numbers unbroken, the route equals the audit's last weights,
    the target freed."""
    assert scenario.rollout is not None
    events = service.events(scenario.rollout.rollout_id)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    written = [e.detail["weights"] for e in events if "weights" in e.detail]
    assert service.store.get_route(scenario.host).weights() == written[-1]
    assert service.store.lock_holder(scenario.host, "default") is None


def test_a_resume_whose_wake_is_lost_moves_on_within_one_recheck(outcomes, service):
    """GIVEN a PAUSED rollout WHEN every try of resume's SendTaskSuccess fails and nobody
    runs another command THEN the next re-read carries the resume out (within one
    park_recheck) and the rollout ends PROMOTED."""
    s = outcomes["lost-resume-wake"]
    assert s.notes["stranded"].status is RolloutStatus.RUNNING and s.notes["stranded"].task_token
    assert s.notes["moved_after"] < RECHECK + 3, s.notes["moved_after"]
    assert s.final.status is RolloutStatus.PROMOTED, s.final.reason
    kinds = _kinds(service, s)
    assert kinds.index("resumed") < kinds.index("rechecked") < kinds.index("promoted")
    _consistent(service, s)


def test_an_abort_whose_wake_is_lost_still_rolls_back(outcomes, service):
    """GIVEN a PAUSED rollout WHEN abort's SendTaskFailure never arrives THEN the re-read
    rolls it back with the person's reason."""
    s = outcomes["lost-abort-wake"]
    assert s.final.status is RolloutStatus.ROLLED_BACK
    assert "aborted by oncall: error budget burning" in s.final.reason
    _consistent(service, s)


def test_an_approval_whose_wake_is_lost_goes_on_to_the_next_stage(outcomes, service):
    """GIVEN a stage AWAITING_APPROVAL WHEN the approval's wake-up call is lost THEN the
    re-read applies the next stage (the recorded step), not a second approval gate."""
    s = outcomes["lost-approval-wake"]
    assert s.final.status is RolloutStatus.PROMOTED, s.final.reason
    kinds = _kinds(service, s)
    assert kinds.count("awaiting_approval") == 1
    assert kinds.index("resumed") < kinds.index("rechecked") < kinds.index("promoted")
    _consistent(service, s)


def test_a_promote_accepted_just_before_hold_is_carried_out(outcomes, service):
    """GIVEN a look that decided to pause WHEN a promote is accepted before Hold parks
    THEN Hold does not park over it: the rollout ends PROMOTED by that person."""
    s = outcomes["promote-before-hold"]
    assert s.notes.get("before_hold")
    assert s.final.status is RolloutStatus.PROMOTED, s.final.reason
    assert "promoted by oncall" in s.final.reason
    kinds = _kinds(service, s)
    assert "paused" not in kinds
    assert kinds.index("control_requested") < kinds.index("rechecked") < kinds.index("promoted")
    _consistent(service, s)


def test_an_abort_accepted_just_before_hold_is_carried_out(outcomes, service):
    s = outcomes["abort-before-hold"]
    assert s.notes.get("before_hold")
    assert s.final.status is RolloutStatus.ROLLED_BACK
    assert "aborted by oncall" in s.final.reason
    _consistent(service, s)


def test_a_pause_nobody_answers_is_rechecked_then_rolled_back_at_max_pause(outcomes, service):
    """GIVEN max_pause 5 s and a re-read every 2 s WHEN nobody answers THEN the park is
    re-read and renewed, and rolled back once max_pause has passed."""
    s = outcomes["pause-runs-out"]
    assert s.final.status is RolloutStatus.ROLLED_BACK
    assert "max_pause" in s.final.reason
    kinds = _kinds(service, s)
    assert kinds.count("reparked") >= 1
    _consistent(service, s)


@pytest.mark.parametrize("name", ["console-stop-paused", "console-stop-approval"])
def test_a_parked_execution_stopped_from_the_console_leaves_a_way_forward(outcomes, service, name):
    """GIVEN a parked rollout WHEN its execution is stopped from the console THEN resume and
    promote are refused with the recover command and write nothing, and abort returns
    every user to stable and frees the target."""
    s = outcomes[name]
    for verb in ("resume", "promote"):
        assert "rollout recover" in s.notes[verb], s.notes[verb]
    assert s.notes["record_after_refusals"].status.is_waiting
    assert s.final.status is RolloutStatus.ROLLED_BACK
    assert "execution ABORTED" in s.final.reason
    _consistent(service, s)


@pytest.mark.parametrize(
    ("name", "final"),
    [
        ("lost-response-begin", RolloutStatus.PROMOTED),
        ("lost-response-apply-stage", RolloutStatus.PROMOTED),
        ("lost-response-analyze-promoting", RolloutStatus.PROMOTED),
        ("lost-response-promote", RolloutStatus.PROMOTED),
        ("lost-response-rollback", RolloutStatus.ROLLED_BACK),
        ("lost-response-hold", RolloutStatus.PROMOTED),
        ("lost-response-recheck", RolloutStatus.PROMOTED),
    ],
)
def test_a_task_whose_response_is_lost_after_its_commit_is_retried_safely(
    outcomes, service, name, final
):
    """GIVEN a task that committed and whose invoke then failed (Lambda.ServiceException)
    WHEN Step Functions retries it THEN the retry finds its work done: the rollout ends as
    it would have, and each change is recorded once."""
    s = outcomes[name]
    task = name.removeprefix("lost-response-").removesuffix("-promoting")
    assert s.notes.get(f"lost_{task}"), "the fault was never injected"
    assert s.final.status is final, s.final.reason
    kinds = _kinds(service, s)
    for once in ("started", "promoted", "rolled_back", "rolling_back"):
        assert kinds.count(once) <= 1, kinds
    stages = [
        e.detail["stage"] for e in service.events(s.rollout.rollout_id) if e.kind == "stage_applied"
    ]
    assert len(stages) == len(set(stages)), stages
    _consistent(service, s)


def test_a_pause_before_the_first_stage_holds_it_back_then_applies_it(outcomes, service):
    """GIVEN a pause that lands before stage 1 is applied WHEN it is resumed THEN stage 1 is
    applied and the rollout goes on to PROMOTED (no rollback for "nothing to judge")."""
    s = outcomes["pause-before-first-stage"]
    assert s.notes.get("before_apply-stage")
    assert s.notes["stage_while_paused"] == -1
    assert s.final.status is RolloutStatus.PROMOTED, s.final.reason
    kinds = _kinds(service, s)
    assert kinds.index("paused") < kinds.index("resumed") < kinds.index("stage_applied")
    _consistent(service, s)
