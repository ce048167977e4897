"""What happens next, as a pure function of the rollout, the latest verdict and the clock.

The state machine only carries decisions out; keeping them here makes every rule
unit- and property-testable without Step Functions.
"""

from __future__ import annotations

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
    remaining = stage.bake - (now - rollout.stage_started_at).total_seconds()
    if remaining > 0:
        wait = max(1, min(stage.interval, int(remaining + 0.999)))
        return Decision(Action.BAKE, index, wait, f"baking, {verdict.outcome.value} so far")
    if verdict.outcome is Outcome.INCONCLUSIVE:
        # No promotion on missing evidence; the workflow issue adds extend/pause policies.
        return Decision(
            Action.ROLLBACK, index, 0, f"bake ended without a verdict: {verdict.reason}"
        )
    return _advance(rollout, index)


def _advance(rollout: Rollout, index: int) -> Decision:
    following = index + 1
    stages = rollout.plan.stages
    if following >= len(stages) or stages[following].weight >= 100:
        return Decision(Action.PROMOTE, index, 0, f"stage {index + 1} passed; promoting")
    return Decision(
        Action.APPLY, following, 0, f"stage {index + 1} passed; moving to {stages[following].weight}%"
    )
