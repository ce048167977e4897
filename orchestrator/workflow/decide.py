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
from orchestrator.models import Rollout


class Action(StrEnum):
    APPLY = "apply"  # write the weights of ``stage``
    BAKE = "bake"  # wait ``wait_seconds`` more, then analyze again
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
    stage, index = rollout.stage, rollout.stage_index
    if stage is None or rollout.stage_started_at is None:
        return Decision(Action.ROLLBACK, index, 0, "no stage is applied: nothing to judge")
    if verdict.outcome is Outcome.FAIL:
        return Decision(Action.ROLLBACK, index, 0, f"canary failed analysis: {verdict.reason}")
    elapsed = (now - rollout.stage_started_at).total_seconds()
    if elapsed < stage.bake:
        return _bake(
            index, stage.bake - elapsed, stage.interval, f"baking, {verdict.outcome} so far"
        )
    if verdict.outcome is Outcome.PASS:
        return _advance(rollout, index)
    # Inconclusive: never promote on missing evidence; extend the bake if allowed.
    policies = rollout.plan.policies
    extension = stage.bake if policies.max_extension is None else policies.max_extension
    if policies.on_inconclusive == "extend" and elapsed < stage.bake + extension:
        left = stage.bake + extension - elapsed
        return _bake(
            index, left, stage.interval, f"bake extended, no verdict yet: {verdict.reason}"
        )
    return Decision(Action.ROLLBACK, index, 0, f"bake ended without a verdict: {verdict.reason}")


def _bake(index: int, remaining: float, interval: int, reason: str) -> Decision:
    return Decision(Action.BAKE, index, max(1, min(interval, math.ceil(remaining))), reason)


def _advance(rollout: Rollout, index: int) -> Decision:
    following = index + 1
    stages = rollout.plan.stages
    if following >= len(stages) or stages[following].weight >= 100:
        return Decision(Action.PROMOTE, index, 0, f"stage {index + 1} passed; promoting")
    return Decision(
        Action.APPLY,
        following,
        0,
        f"stage {index + 1} passed; moving to {stages[following].weight}%",
    )
