"""What happens next, as a pure function of the rollout, the latest verdict and the clock.

The state machine only carries decisions out; keeping them here makes every rule
unit- and property-testable without Step Functions.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from orchestrator.analysis import Outcome, Verdict
from orchestrator.models import ControlAction, ControlRequest, Policies, Rollout, RolloutStatus


class Action(StrEnum):
    APPLY = "apply"  # write the weights of ``stage``
    BAKE = "bake"  # wait ``wait_seconds`` more, then analyze again
    PAUSE = "pause"  # park on a task token until resume, abort or promote (``wait_seconds`` max)
    AWAIT_APPROVAL = "await_approval"  # the stage passed; a person says when to go on
    PROMOTE = "promote"
    ROLLBACK = "rollback"


@dataclass(frozen=True)
class Decision:
    action: Action
    stage: int
    wait_seconds: int
    reason: str

    def as_payload(self) -> dict[str, Any]:
        data = asdict(self)
        data["action"] = self.action.value
        return data


def first_step() -> Decision:
    return Decision(Action.APPLY, 0, 0, "rollout started")


def decide(rollout: Rollout, verdict: Verdict, now: datetime) -> Decision:
    """The next step. Order matters: a person's request first, then the hard limits, then
    the evidence (a failing look, then the served split, then pass or bake); and nothing
    promotes without a passing verdict or a person saying so."""
    stage, index = rollout.stage, rollout.stage_index
    policies = rollout.plan.policies
    control = rollout.control
    failing = verdict.outcome in (Outcome.FAIL, Outcome.ERROR)
    if index == -1 and rollout.stage_started_at is None and not failing:
        # ApplyStage holds the first stage back while a person's request is pending: honour
        # it (nothing to judge yet, no canary traffic), then apply the first stage.
        if control is not None:
            return _honour(control, index, policies)
        return Decision(Action.APPLY, 0, 0, "no stage applied yet: applying the first")
    if stage is None or rollout.stage_started_at is None:
        return Decision(Action.ROLLBACK, index, 0, "no stage is applied: nothing to judge")
    if control is not None and not _overruled(control, verdict):
        return _honour(control, index, policies)
    if (now - rollout.created_at).total_seconds() >= policies.max_duration:
        return Decision(Action.ROLLBACK, index, 0, "the rollout outlived its max_duration")
    elapsed = (now - rollout.stage_started_at).total_seconds()
    overruled = (
        f" (overruling the {control.action} requested by {control.actor})" if control else ""
    )
    if verdict.outcome is Outcome.ERROR:
        # The analysis could not measure (bad key or query, or errors past the plan's limit):
        # no evidence is not good evidence, and a person has to look at the metrics source.
        why = f"analysis could not measure: {verdict.reason}{overruled}"
        return Decision(Action.ROLLBACK, index, 0, why)
    if verdict.outcome is Outcome.FAIL:
        # Failures a plan tolerates were already counted and softened by the limits
        # (analysis.limits.tolerated_failures): a failing verdict here rolls back.
        why = f"canary failed analysis: {verdict.reason}{overruled}"
        return Decision(Action.ROLLBACK, index, 0, why)
    if policies.stage_timeout is not None and elapsed >= policies.stage_timeout:
        return Decision(Action.ROLLBACK, index, 0, "the stage outlived its stage_timeout")
    split = verdict.split
    if (
        split is not None
        and split.outcome == "mismatch"
        and policies.on_split_mismatch != "continue"
    ):
        # Before any pass: a stage judged on a split other than planned exposes more (or
        # fewer) users than anyone chose, and the next stage would widen it further.
        why = f"split_mismatch: {split.reason}{overruled}"
        if policies.on_split_mismatch == "rollback":
            return Decision(Action.ROLLBACK, index, 0, why)
        return park(Action.PAUSE, index, policies, why)
    if elapsed < stage.bake:
        return _bake(
            index, stage.bake - elapsed, stage.interval, f"baking, {verdict.outcome} so far"
        )
    if verdict.outcome is Outcome.PASS:
        if stage.approval:
            reason = f"stage {index + 1} passed; waiting for approval to go on"
            return park(Action.AWAIT_APPROVAL, index, policies, reason)
        return advance(rollout, index)
    return _without_verdict(rollout, index, elapsed, verdict.reason)


def _without_verdict(rollout: Rollout, index: int, elapsed: float, why: str) -> Decision:
    """The bake is over and the evidence is not enough: never promote on missing evidence."""
    stage, policies = rollout.plan.stages[index], rollout.plan.policies
    extension = rollout.plan.extension(stage)
    if policies.on_inconclusive == "extend" and elapsed < stage.bake + extension:
        left = stage.bake + extension - elapsed
        return _bake(index, left, stage.interval, f"bake extended, no verdict yet: {why}")
    if policies.on_inconclusive == "pause":
        return park(Action.PAUSE, index, policies, f"paused, no verdict: {why}")
    return Decision(Action.ROLLBACK, index, 0, f"bake ended without a verdict: {why}")


def _overruled(control: ControlRequest, verdict: Verdict) -> bool:
    """The one rule for a request that races a look: a look that fails (or cannot measure)
    wins over a pending pause, resume or promote, and the rollout rolls back; an abort rolls
    back either way. The look's audit event records the request it overruled. A person who
    knows the alarm is false starts a new rollout; nothing promotes past failing evidence."""
    if control.action is ControlAction.ABORT:
        return False
    return verdict.outcome in (Outcome.FAIL, Outcome.ERROR)


def _honour(control: ControlRequest, index: int, policies: Policies) -> Decision:
    by = f"by {control.actor}" + (f": {control.reason}" if control.reason else "")
    if control.action is ControlAction.ABORT:
        return Decision(Action.ROLLBACK, index, 0, f"aborted {by}")
    if control.action is ControlAction.PROMOTE:
        return Decision(Action.PROMOTE, index, 0, f"promoted {by}")
    if control.action is ControlAction.PAUSE:
        return park(Action.PAUSE, index, policies, f"paused {by}")
    return Decision(Action.BAKE, index, 1, f"resumed {by}")


def park_limit(action: Action, policies: Policies) -> int:
    """How long a park may last before it rolls back: max_pause or approval_timeout."""
    return policies.approval_timeout if action is Action.AWAIT_APPROVAL else policies.max_pause


def park(action: Action, index: int, policies: Policies, reason: str) -> Decision:
    """Park on a task token; ``wait_seconds`` is how long until the record is re-read
    (the park's limit is kept on the rollout as ``parked_until`` by the Hold task)."""
    return Decision(action, index, policies.recheck_every(park_limit(action, policies)), reason)


def after_park(rollout: Rollout, now: datetime, wake: dict[str, Any] | None) -> Decision:
    """The next step of an execution that stopped waiting on its token without an answer:
    the re-read timed out, or Hold found a request already made. The record says what to do.

    ``wake`` is the step recorded with the latest resume, for a RUNNING rollout whose
    wake-up call was lost."""
    index, status, policies = rollout.stage_index, rollout.status, rollout.plan.policies
    if status in (RolloutStatus.PROMOTING, RolloutStatus.PROMOTED):
        return Decision(Action.PROMOTE, index, 0, rollout.reason)
    if status.is_final or status is RolloutStatus.ROLLING_BACK:
        return Decision(Action.ROLLBACK, index, 0, rollout.reason or f"the rollout is {status}")
    if status.is_waiting:
        action = Action.PAUSE if status is RolloutStatus.PAUSED else Action.AWAIT_APPROVAL
        left = (rollout.parked_until - now).total_seconds() if rollout.parked_until else 0.0
        if left <= 0:
            limit = "max_pause" if action is Action.PAUSE else "approval_timeout"
            why = f"nobody answered within {limit} while {status.value}: rolled back to be safe"
            return Decision(Action.ROLLBACK, index, 0, why)
        every = policies.recheck_every(park_limit(action, policies))
        return Decision(action, index, max(1, min(every, math.ceil(left))), rollout.reason)
    if rollout.control is not None:
        return _honour(rollout.control, index, policies)
    if wake is not None:
        return Decision(
            Action(wake["action"]), int(wake["stage"]), int(wake["wait_seconds"]), wake["reason"]
        )
    return Decision(Action.BAKE, index, 1, "the park ended; the next look decides")


def _bake(index: int, remaining: float, interval: int, reason: str) -> Decision:
    return Decision(Action.BAKE, index, max(1, min(interval, math.ceil(remaining))), reason)


def advance(rollout: Rollout, index: int) -> Decision:
    """The step after stage ``index`` passed: the next stage, or promotion."""
    following = index + 1
    stages = rollout.plan.stages
    if following >= len(stages) or stages[following].weight >= 100:
        return Decision(Action.PROMOTE, index, 0, f"stage {index + 1} passed; promoting")
    weight = stages[following].weight
    return Decision(Action.APPLY, following, 0, f"stage {index + 1} passed; moving to {weight}%")
