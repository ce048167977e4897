"""A rollout: one plan being carried out, with its status and audit trail."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .analysis import Noise
from .plan import RolloutPlan, Stage
from .route import FULL_WEIGHT


class RolloutStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    AWAITING_APPROVAL = "AWAITING_APPROVAL"
    PROMOTING = "PROMOTING"
    PROMOTED = "PROMOTED"
    ROLLING_BACK = "ROLLING_BACK"
    ROLLED_BACK = "ROLLED_BACK"
    FAILED = "FAILED"

    @property
    def is_final(self) -> bool:
        return not TRANSITIONS[self]

    @property
    def is_waiting(self) -> bool:
        """Parked on a Step Functions task token until a person answers."""
        return self in (RolloutStatus.PAUSED, RolloutStatus.AWAITING_APPROVAL)

    def can_become(self, other: RolloutStatus) -> bool:
        return other in TRANSITIONS[self]


_S = RolloutStatus
# The one table of legal status changes. Terminal states have no way out; rolling back is
# reachable from every other state; FAILED means a rollback itself could not be completed.
TRANSITIONS: dict[RolloutStatus, frozenset[RolloutStatus]] = {
    _S.PENDING: frozenset({_S.RUNNING, _S.ROLLING_BACK, _S.FAILED}),
    _S.RUNNING: frozenset(
        {_S.PAUSED, _S.AWAITING_APPROVAL, _S.PROMOTING, _S.ROLLING_BACK, _S.FAILED}
    ),
    _S.PAUSED: frozenset({_S.RUNNING, _S.PROMOTING, _S.ROLLING_BACK, _S.FAILED}),
    _S.AWAITING_APPROVAL: frozenset({_S.RUNNING, _S.PROMOTING, _S.ROLLING_BACK, _S.FAILED}),
    _S.PROMOTING: frozenset({_S.PROMOTED, _S.ROLLING_BACK, _S.FAILED}),
    _S.ROLLING_BACK: frozenset({_S.ROLLED_BACK, _S.FAILED}),
    _S.PROMOTED: frozenset(),
    _S.ROLLED_BACK: frozenset(),
    _S.FAILED: frozenset(),
}


class ControlAction(StrEnum):
    PAUSE = "pause"
    RESUME = "resume"
    ABORT = "abort"
    PROMOTE = "promote"


class ControlRequest(BaseModel):
    """A person's request, written on the rollout and honoured at the next decision point."""

    model_config = ConfigDict(frozen=True)

    action: ControlAction
    actor: str
    reason: str = ""
    at: datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_rollout_id(now: datetime | None = None) -> str:
    """Sortable by start time and usable as a Step Functions execution name (≤ 80 chars)."""
    stamp = (now or utcnow()).strftime("%Y%m%dT%H%M%SZ")
    return f"r-{stamp}-{secrets.token_hex(4)}"


class AuditEvent(BaseModel):
    """Who did what, when and why; one per state change, written in the same transaction."""

    model_config = ConfigDict(frozen=True)

    rollout_id: str
    seq: int = Field(ge=1, description="the rollout version this change produced")
    at: datetime
    actor: str
    kind: str
    reason: str = ""
    detail: dict[str, Any] = Field(default_factory=dict)


class StageTally(BaseModel):
    """What the looks of the current stage have added up to; reset when a stage is applied
    and written with each look, so the limits read one typed record, not the audit trail."""

    model_config = ConfigDict(frozen=True)

    looks: int = Field(default=0, ge=0, description="looks taken in this stage")
    judged: int = Field(default=0, ge=0, description="looks past the warm-up")
    inconclusive: int = Field(default=0, ge=0, description="judged looks without a verdict")
    failures: dict[str, int] = Field(
        default_factory=dict, description="failing looks per metric, tolerated ones included"
    )
    error_streak: dict[str, int] = Field(
        default_factory=dict, description="looks in a row each metric went unmeasured"
    )
    noise: dict[str, Noise] = Field(
        default_factory=dict,
        description="per metric, the comparison's own noise measured in this stage so far",
    )


class Rollout(BaseModel):
    model_config = ConfigDict(frozen=True)

    rollout_id: str
    plan: RolloutPlan
    status: RolloutStatus = RolloutStatus.PENDING
    stage_index: int = Field(default=-1, description="last applied stage; -1 before the first")
    stage_started_at: datetime | None = None
    version: int = Field(default=1, ge=1, description="bumped by every conditional write")
    salt: str
    created_at: datetime
    updated_at: datetime
    created_by: str
    execution_arn: str | None = None
    reason: str = ""
    control: ControlRequest | None = None
    task_token: str | None = Field(
        default=None,
        description="the token a PAUSED or AWAITING_APPROVAL execution waits on; kept after "
        "a person's answer until the execution accepts its wake-up call",
    )
    parked_until: datetime | None = Field(
        default=None, description="while parked: when max_pause or approval_timeout runs out"
    )
    split_from: datetime | None = Field(
        default=None,
        description="the served-split check counts from here: set by a resume after a "
        "split_mismatch pause, so the periods that paused it are not judged again",
    )
    tally: StageTally = Field(default_factory=StageTally, description="the current stage's")
    noise: dict[str, Noise] = Field(
        default_factory=dict, description="per metric, the stable fleet's noise at preflight"
    )
    force: bool = Field(default=False, description="started despite a feasibility warning")

    @classmethod
    def start(cls, plan: RolloutPlan, actor: str, now: datetime | None = None) -> Rollout:
        now = now or utcnow()
        rollout_id = new_rollout_id(now)
        return cls(
            rollout_id=rollout_id,
            plan=plan,
            salt=f"{rollout_id}:{secrets.token_hex(8)}",
            created_at=now,
            updated_at=now,
            created_by=actor,
        )

    @property
    def stage(self) -> Stage | None:
        if 0 <= self.stage_index < len(self.plan.stages):
            return self.plan.stages[self.stage_index]
        return None

    @property
    def canary_weight_bp(self) -> int:
        """What the route gives the canary now: all after promotion, none after rollback."""
        if self.status is RolloutStatus.PROMOTED:
            return FULL_WEIGHT
        if self.status is RolloutStatus.ROLLED_BACK:
            return 0
        stage = self.stage
        return stage.weight_bp if stage else 0
