"""The cases of test_call_faults.py: which calls fail, how, and what the rollout must do.

``CALLS`` is every AWS call each task makes in one invocation, as (operation, nth call of
that operation; None: every call, for Analyze, which runs once per look). A test compares it
with the calls the tasks really made, so a task that gains a call gains rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.local.faults import CallFaults, Fault, Race
from orchestrator.local.feeder import ErrorRate, constant
from orchestrator.local.stack import LocalStack
from orchestrator.models import Rollout, RolloutPlan, RolloutStatus
from orchestrator.service import RolloutService, WakeFailed

GOOD, BAD = constant(0.005), constant(0.08)
PROMOTED, ROLLED_BACK, FAILED = (
    RolloutStatus.PROMOTED,
    RolloutStatus.ROLLED_BACK,
    RolloutStatus.FAILED,
)
KINDS = [
    ("throttle", "before"),
    ("5xx", "before"),
    ("5xx", "after"),
    ("timeout", "before"),
    ("timeout", "after"),
]
# What a reason names when a fault of that kind rolled a healthy canary back.
CAUSES = {
    "throttle": ("ProvisionedThroughputExceededException", "ThrottlingException"),
    "5xx": ("InternalServerError", "ServiceUnavailable"),
    "timeout": ("ConnectTimeoutError", "ReadTimeoutError"),
}
CALLS: dict[str, tuple[tuple[str, int | None], ...]] = {
    "begin": (
        ("GetItem", 1),
        ("GetMetricData", 1),  # preflight's check
        ("GetMetricData", 2),  # the stable fleet's noise
        ("TransactWriteItems", 1),
        ("PutEvents", 1),
    ),
    "apply-stage": (
        ("GetItem", 1),  # the rollout
        ("GetItem", 2),  # the route
        ("TransactWriteItems", 1),
        ("PutEvents", 1),
    ),
    "analyze": (
        ("GetItem", None),
        ("Query", None),  # the audit trail: has this look committed already?
        ("GetMetricData", 1),  # no retries of its own: an error measurement, see evaluate
        ("TransactWriteItems", None),
    ),
    "promote": (("GetItem", 1), ("GetItem", 2), ("TransactWriteItems", 1), ("PutEvents", 1)),
    "rollback": (
        ("GetItem", 1),
        ("TransactWriteItems", 1),  # ROLLING_BACK, visible while the route is written
        ("GetItem", 2),
        ("TransactWriteItems", 2),  # ROLLED_BACK with the route
        ("PutEvents", 1),
    ),
    "record-failure": (("GetItem", 1), ("TransactWriteItems", 1), ("PutEvents", 1)),
}
# ApplyStage fails for good: the rollout goes to Rollback from RUNNING (both its writes).
TRIGGER = Fault("apply-stage", "TransactWriteItems", "5xx", attempts=None)
# Every Rollback invocation fails: the state machine goes on to RecordFailure.
ROLLBACK_FAILS = Fault("rollback", "GetItem", "5xx", call=None, attempts=None)
BEFORE = {"rollback": (TRIGGER,), "record-failure": (TRIGGER, ROLLBACK_FAILS)}
ENDS = {"rollback": ROLLED_BACK, "record-failure": FAILED}

Steer = Callable[["Case", RolloutService, CallFaults], None]


@dataclass
class Case:
    name: str
    calls: tuple[Fault, ...] = ()
    expect: RolloutStatus | None = PROMOTED  # None: no final record, the execution ended
    also: tuple[RolloutStatus, ...] = ()  # other ends the case allows (a race of clocks)
    canary: ErrorRate = GOOD
    causes: tuple[str, ...] = ()  # one of them is in the reason of a healthy rollback
    bake: int = 3
    policies: dict[str, Any] = field(default_factory=dict)
    skew: timedelta | None = None
    skewed: frozenset[str] | None = None  # the functions whose clock is off (None: all)
    race: Callable[[Case, RolloutService], None] | None = None
    steer: Steer | None = None
    expect_abort: str = ""
    rollout_id: str = ""
    final: Rollout | None = None
    error: BaseException | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"{self.name.lower()}.cf.edgeshift.test"

    def plan(self) -> RolloutPlan:
        document = demo_plan(demo_route(self.host, 8001, 8002)).model_dump(mode="json")
        document["stages"] = [{"weight": 50, "bake": self.bake, "interval": 1}]
        # The stable fleet's last 30 s, not an hour: moto answers a query period by period.
        document["analysis"]["noise_history"] = 30
        document["policies"] = {**document.get("policies", {}), **self.policies}
        return RolloutPlan.model_validate(document)

    def injected(self, service: RolloutService) -> list[Fault | Race]:
        faults: list[Fault | Race] = list(self.calls)
        if self.race is not None:
            race = self.race
            faults.append(Race("apply-stage", "TransactWriteItems", lambda: race(self, service)))
        return faults

    def ended(self, stack: LocalStack, service: RolloutService) -> Callable[[Rollout], bool]:
        """A final record, or an execution no longer running (asked every few seconds, and
        from the start only when the case expects no final record)."""
        arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:")
        next_look = [time.monotonic() + (5 if self.expect is None else 30)]

        def check(rollout: Rollout) -> bool:
            if rollout.status.is_final:
                return True
            if time.monotonic() < next_look[0]:
                return False
            next_look[0] = time.monotonic() + 5
            execution = f"{arn}:{rollout.rollout_id}"
            status = service.sfn.describe_execution(executionArn=execution)["status"]
            return bool(status != "RUNNING")

        return check


def wait_for(
    service: RolloutService,
    rollout_id: str,
    check: Callable[[Rollout], bool],
    timeout: float,
    poll: float = 0.5,
) -> Rollout:
    deadline = time.monotonic() + timeout
    while True:
        rollout = service.get(rollout_id)
        if check(rollout):
            return rollout
        if time.monotonic() > deadline:
            raise AssertionError(f"{rollout_id} never got there: {rollout.status} {rollout.reason}")
        time.sleep(poll)


# Preflight asks again after a failed check, so Begin's second GetMetricData is then the
# check's, not the noise read's: Begin's rows fail the check, and a row of its own fails
# the noise read.
ONCE_SKIPS = {"begin": {("GetMetricData", 2)}}


def _once(task: str, error: str, when: str) -> Case:
    calls = [c for c in CALLS[task] if c not in ONCE_SKIPS.get(task, set())]
    faults = tuple(Fault(task, op, error, when, call=n) for op, n in calls)  # type: ignore[arg-type]
    return Case(
        f"{task}-{error}-{when}",
        BEFORE.get(task, ()) + faults,
        expect=ENDS.get(task, PROMOTED),
        causes=CAUSES["5xx"],  # the trigger's, for rollback and record-failure
    )


def _persistent(
    task: str, op: str, call: int | None, error: str, when: str, expect: RolloutStatus | None
) -> Case:
    nth = "every" if call is None else str(call)
    fault = Fault(task, op, error, when, call=call, attempts=None)  # type: ignore[arg-type]
    return Case(
        f"{task}-{op}{nth}-{error}-{when}-every-try",
        (*BEFORE.get(task, ()), fault),
        expect=expect,
        causes=CAUSES[error] + CAUSES["5xx"],
    )


ONCE = {c.name: c for c in (_once(t, e, w) for t in CALLS for e, w in KINDS)}
ONCE["begin-noise-read-5xx-before"] = Case(
    "begin-noise-read-5xx-before", (Fault("begin", "GetMetricData", "5xx", call=2),)
)
PERSISTENT = {
    c.name: c
    for c in [
        *[
            case
            for task in ("begin", "apply-stage", "analyze", "promote")
            for case in (
                _persistent(task, "GetItem", 1, "5xx", "before", ROLLED_BACK),
                _persistent(task, "TransactWriteItems", 1, "throttle", "before", ROLLED_BACK),
                _persistent(
                    task,
                    "TransactWriteItems",
                    1,
                    "timeout",
                    "after",
                    # Promote's commit landed (PROMOTED is final); Rollback then leaves it.
                    PROMOTED if task == "promote" else ROLLED_BACK,
                ),
            )
        ],
        # A failed Rollback is retried by the state machine, and the retry finishes it.
        _persistent("rollback", "GetItem", 1, "5xx", "before", ROLLED_BACK),
        _persistent("rollback", "TransactWriteItems", 1, "throttle", "before", ROLLED_BACK),
        _persistent("rollback", "TransactWriteItems", 2, "timeout", "after", ROLLED_BACK),
        # Lifecycle events are best effort: the audit trail is the record.
        _persistent("apply-stage", "PutEvents", None, "5xx", "before", PROMOTED),
        # RecordFailure cannot write either: the execution fails, recover finishes it.
        _persistent("record-failure", "TransactWriteItems", None, "5xx", "before", None),
    ]
}
CLEAN = {
    "clean": Case("clean"),
    "clean-rollback": Case("clean-rollback", (TRIGGER,), ROLLED_BACK, causes=CAUSES["5xx"]),
    "clean-record-failure": Case("clean-record-failure", (TRIGGER, ROLLBACK_FAILS), FAILED),
}


def _abort_if_still_looking(case: Case, service: RolloutService, faults: CallFaults) -> None:
    """A rollout whose looks cannot see the stage yet must still be steerable: abort it."""
    try:
        wait_for(service, case.rollout_id, lambda r: r.status.is_final, 20)
    except AssertionError:
        case.notes["aborted"] = True
        service.abort(case.rollout_id, "oncall", "its looks are two minutes behind")


SKEWS = {
    **{
        f"skew-{side}-every-task": Case(
            f"skew-{side}-every-task",
            expect=ROLLED_BACK,
            causes=("no data",),
            skew=timedelta(minutes=2 if side == "ahead" else -2),
        )
        for side in ("ahead", "behind")
    },
    # Only Analyze's clock is off: the stage's start was stamped by ApplyStage's. Ahead,
    # the bake looks over at the first look: promoted on the evidence so far, or rolled back
    # for the lack of it. Behind, the stage has not started for the look: it cannot measure.
    "skew-ahead-analyze-good": Case(
        "skew-ahead-analyze-good",
        also=(ROLLED_BACK,),
        causes=("bake ended without a verdict",),
        skew=timedelta(minutes=2),
        skewed=frozenset({"analyze"}),
    ),
    "skew-ahead-analyze-bad": Case(
        "skew-ahead-analyze-bad",
        expect=ROLLED_BACK,
        canary=BAD,
        skew=timedelta(minutes=2),
        skewed=frozenset({"analyze"}),
    ),
    **{
        f"skew-behind-analyze-{health}": Case(
            f"skew-behind-analyze-{health}",
            expect=ROLLED_BACK,
            canary=GOOD if health == "good" else BAD,
            causes=("could not measure", "aborted by oncall"),
            skew=timedelta(minutes=-2),
            skewed=frozenset({"analyze"}),
            steer=_abort_if_still_looking,
        )
        for health in ("good", "bad")
    },
}


def _bump_route(case: Case, service: RolloutService) -> None:
    """Someone re-saves the route (same rules, next revision) while ApplyStage writes, from
    outside edgeshift: edgeshift's own route writes are refused while a rollout holds it."""
    from orchestrator.store import codec

    rule = service.store.get_route(case.host)
    assert rule is not None
    bumped = rule.model_copy(update={"revision": rule.revision + 1})
    service.store.client.put_item(
        TableName=service.store.tables.routes, Item=codec.route_item(bumped)
    )


def _pause(case: Case, service: RolloutService) -> None:
    holder = service.store.lock_holder(case.host, "default")
    assert holder is not None
    service.pause(holder, "oncall", "checking a dashboard")


def _resume_when_paused(case: Case, service: RolloutService, faults: CallFaults) -> None:
    paused = wait_for(
        service, case.rollout_id, lambda r: r.status.is_waiting or r.status.is_final, 60
    )
    case.notes["paused"] = paused.status
    if paused.status.is_waiting:
        service.resume(case.rollout_id, "oncall", "dashboard is fine")


def _pause_then_abort(case: Case, service: RolloutService, faults: CallFaults) -> None:
    """Pause once a stage is applied, then abort with the control calls' faults armed."""
    wait_for(service, case.rollout_id, lambda r: r.stage_started_at is not None, 60)
    service.pause(case.rollout_id, "oncall", "checking dashboards")
    paused = wait_for(service, case.rollout_id, lambda r: r.status.is_waiting, 60)
    assert paused.status is RolloutStatus.PAUSED, paused.reason
    asked = time.monotonic()
    with faults.scoped(case.host, "control"):
        try:
            service.abort(case.rollout_id, "oncall", "error budget burning")
            case.notes["abort"] = "accepted"
        except WakeFailed:
            case.notes["abort"] = "WakeFailed"
    wait_for(service, case.rollout_id, lambda r: r.status.is_final, 60)
    case.notes["abort_to_end"] = time.monotonic() - asked


RACES = {
    "race-route": Case("race-route", expect=ROLLED_BACK, causes=("changed",), race=_bump_route),
    "race-pause": Case("race-pause", race=_pause, steer=_resume_when_paused),
}


def _wake(name: str, fault: Fault, answer: str) -> Case:
    return Case(
        name,
        (fault,),
        expect=ROLLED_BACK,
        causes=("aborted by oncall",),
        bake=30,
        policies={"park_recheck": 2},
        steer=_pause_then_abort,
        expect_abort=answer,
    )


WAKES = {
    c.name: c
    for c in [
        _wake("wake-throttled-once", Fault("control", "SendTaskFailure", "throttle"), "accepted"),
        _wake(
            "wake-throttled-first-try",
            Fault("control", "SendTaskFailure", "throttle", attempts=None),
            "accepted",
        ),
        _wake(
            "wake-failing-every-try",
            Fault("control", "SendTaskFailure", "5xx", call=None, attempts=None),
            "WakeFailed",
        ),
        _wake(
            "wake-answer-lost",
            Fault("control", "SendTaskFailure", "timeout", "after", attempts=None),
            "accepted",
        ),
    ]
}
CASES: dict[str, Case] = {**ONCE, **PERSISTENT, **CLEAN, **SKEWS, **RACES, **WAKES}
