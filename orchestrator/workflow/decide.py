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
from orchestrator.models import ControlAction, ControlRequest, Rollout


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
    the evidence; and nothing promotes without a passing verdict or a person saying so."""
    stage, index = rollout.stage, rollout.stage_index
    if stage is None or rollout.stage_started_at is None:
        return Decision(Action.ROLLBACK, index, 0, "no stage is applied: nothing to judge")
    policies = rollout.plan.policies
    if rollout.control is not None:
        return _honour(rollout.control, index, policies.max_pause)
    if (now - rollout.created_at).total_seconds() >= policies.max_duration:
        return Decision(Action.ROLLBACK, index, 0, "the rollout outlived its max_duration")
    elapsed = (now - rollout.stage_started_at).total_seconds()
    if verdict.outcome is Outcome.ERROR:
        # The analysis could not measure (bad key or query, or errors past the plan's limit):
        # no evidence is not good evidence, and a person has to look at the metrics source.
        return Decision(Action.ROLLBACK, index, 0, f"analysis could not measure: {verdict.reason}")
    if verdict.outcome is Outcome.FAIL:
        # Failures a plan tolerates were already counted and softened by the limits
        # (analysis.limits.tolerated_failures): a failing verdict here rolls back.
        return Decision(Action.ROLLBACK, index, 0, f"canary failed analysis: {verdict.reason}")
    if policies.stage_timeout is not None and elapsed >= policies.stage_timeout:
        return Decision(Action.ROLLBACK, index, 0, "the stage outlived its stage_timeout")
    if elapsed < stage.bake:
        return _bake(
            index, stage.bake - elapsed, stage.interval, f"baking, {verdict.outcome} so far"
        )
    if verdict.outcome is Outcome.PASS:
        if stage.approval:
            reason = f"stage {index + 1} passed; waiting for approval to go on"
            return Decision(Action.AWAIT_APPROVAL, index, policies.approval_timeout, reason)
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
        return Decision(Action.PAUSE, index, policies.max_pause, f"paused, no verdict: {why}")
    return Decision(Action.ROLLBACK, index, 0, f"bake ended without a verdict: {why}")


def _honour(control: ControlRequest, index: int, max_pause: int) -> Decision:
    by = f"by {control.actor}" + (f": {control.reason}" if control.reason else "")
    if control.action is ControlAction.ABORT:
        return Decision(Action.ROLLBACK, index, 0, f"aborted {by}")
    if control.action is ControlAction.PROMOTE:
        return Decision(Action.PROMOTE, index, 0, f"promoted {by}")
    if control.action is ControlAction.PAUSE:
        return Decision(Action.PAUSE, index, max_pause, f"paused {by}")
    return Decision(Action.BAKE, index, 1, f"resumed {by}")


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
