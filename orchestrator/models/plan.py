"""The rollout plan a person or pipeline submits: validated before anything is written."""

from __future__ import annotations

import math
from itertools import pairwise
from typing import Annotated, Literal

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from .analysis import AnalysisSpec
from .durations import Duration
from .route import Host, PathRule, Release, Strict

MAX_STAGES = 20
# A parked rollout re-reads its record at most this often per park (see recheck_every).
MAX_RECHECKS = 288


class Target(Strict):
    host: Host
    path_rule: PathRule = "default"


class Stage(Strict):
    weight: float = Field(gt=0, le=100, description="percent of users on the canary")
    bake: Duration = Field(ge=1, le=7 * 86400, description="how long the stage is watched")
    interval: Duration = Field(ge=1, le=86400, description="time between two analyses")
    approval: bool = Field(
        default=False, description="after a passing bake, wait for `rollout resume` to go on"
    )

    @field_validator("weight")
    @classmethod
    def _whole_basis_points(cls, value: float) -> float:
        # Routes hold basis points; a finer weight would be silently rounded (to 0 or 100%).
        if abs(value * 100 - round(value * 100)) > 1e-6:
            raise ValueError("must be a multiple of 0.01 (one basis point)")
        return value

    @model_validator(mode="after")
    def _bake_holds_an_interval(self) -> Stage:
        if self.bake < self.interval:
            raise ValueError(
                f"bake ({self.bake}s) must be at least one interval ({self.interval}s)"
            )
        return self

    @property
    def weight_bp(self) -> int:
        return round(self.weight * 100)

    def looks(self, extension: int = 0) -> int:
        """Analyses of this stage: one every interval until the bake (and ``extension``
        seconds more) is over, the last one at or after its end."""
        return max(1, -(-(self.bake + extension) // self.interval))


DEFAULT_EXTENSION_BAKES = 6
DEFAULT_EXTENSION = 3600


class Policies(Strict):
    on_inconclusive: Literal["extend", "pause", "rollback"] = Field(
        default="extend",
        description="at the end of a bake without a verdict: keep baking up to max_extension "
        "then roll back; pause for a person; or roll back at once",
    )
    on_split_mismatch: Literal["pause", "rollback", "continue"] = Field(
        default="pause",
        description="when the edge credibly serves the canary a share of requests outside "
        "analysis.split.tolerance of the weight: pause for a person, roll back, or go on",
    )
    max_extension: Duration | None = Field(
        default=None,
        ge=0,
        le=86400,
        description="extra bake time; default: six more bakes up to an hour, or one more "
        "bake when that is longer or the history budget has no room for more",
    )
    stage_timeout: Duration | None = Field(
        default=None, ge=1, le=7 * 86400, description="longest time in one stage, pauses included"
    )
    max_duration: Duration = Field(
        default=7 * 86400, ge=1, le=30 * 86400, description="longest rollout before rolling back"
    )
    max_pause: Duration = Field(
        default=86400, ge=1, le=30 * 86400, description="a pause longer than this rolls back"
    )
    approval_timeout: Duration = Field(
        default=86400, ge=1, le=30 * 86400, description="an approval not given by then rolls back"
    )
    park_recheck: Duration | None = Field(
        default=None,
        ge=1,
        le=3600,
        description="how often a PAUSED or AWAITING_APPROVAL rollout re-reads its record, so a "
        "request whose wake-up call was lost is carried out anyway; default: every minute, or "
        f"often enough for at most {MAX_RECHECKS} re-reads within max_pause/approval_timeout",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: object) -> object:
        if isinstance(data, dict) and "failure_limit" in data:
            raise ValueError(
                "policies.failure_limit was replaced by analysis.limits.tolerated_failures: "
                "failing looks tolerated in a stage before rolling back (failure_limit N is "
                "tolerated_failures N - 1)"
            )
        return data

    def recheck_every(self, limit: int) -> int:
        """Seconds a parked rollout waits on its task token before it re-reads its record.

        The record is the truth and the wake-up call only a hint: a resume, abort or promote
        whose SendTaskSuccess is lost is carried out at the next re-read. Each re-read costs
        about EVENTS_PER_RECHECK Step Functions history events, so a long limit re-reads less
        often: at most MAX_RECHECKS times per park (every 5 minutes for the default 24 h)."""
        every = self.park_recheck or max(60, math.ceil(limit / MAX_RECHECKS))
        return max(1, min(every, limit))

    def extension(self, stage: Stage, long: bool = True) -> int:
        """Seconds an inconclusive bake of ``stage`` may be extended by.

        By default (``long``) six more bakes up to an hour, or one more bake when that is
        longer: at low traffic the evidence needs time (a 5% stage of 2,000 requests a
        minute needs most of an hour to show that a 1% error rate is within 1.5x), and
        meanwhile the canary stays at its small weight; a bad canary is still failed at
        whichever look the evidence is enough. Healthy canaries with enough traffic pass at
        the bake's end. ``long=False`` is one more bake, for plans whose Step Functions
        history has no room for more (see ``RolloutPlan.extension``)."""
        if self.on_inconclusive != "extend":
            return 0
        if self.max_extension is not None:
            return self.max_extension
        if not long:
            return stage.bake
        return max(stage.bake, min(DEFAULT_EXTENSION_BAKES * stage.bake, DEFAULT_EXTENSION))


class Invalidation(Strict):
    """CloudFront paths to invalidate on rollback, so nobody keeps a cached canary."""

    distribution_id: str = Field(pattern=r"^[A-Z0-9]{1,32}$")
    paths: list[Annotated[str, Field(pattern=r"^/", max_length=4096)]] = Field(
        min_length=1, max_length=15
    )


# Step Functions Standard keeps at most 25,000 history events per execution; a plan must
# stay far below it, or a long rollout would fail in the middle of a stage.
HISTORY_EVENT_LIMIT = 25_000
HISTORY_EVENT_BUDGET = 10_000
EVENTS_PER_LOOK = 9  # Wait (2) + Analyze task (5) + Decide choice (2)
EVENTS_PER_STAGE = 5  # ApplyStage task
EVENTS_FIXED = 24  # start, Begin, Promote or Rollback, end, one pause or approval
# Paused task timing out (5) + Recheck task (6) + Decide (2), at most MAX_RECHECKS per park:
# about 4,000 events for a park that lasts its whole limit. Parks are a person's choice and
# not in the plan, so they are not in the budget: the 15,000 events between the budget and
# the hard limit hold three parks that each run out their limit.
EVENTS_PER_RECHECK = 13


def estimated_history_events(stages: list[Stage], policies: Policies, long: bool = True) -> int:
    total = EVENTS_FIXED
    for stage in stages:
        if stage.weight >= 100:
            continue
        looks = stage.looks(policies.extension(stage, long))
        total += EVENTS_PER_STAGE + looks * EVENTS_PER_LOOK + (5 if stage.approval else 0)
    return total


def _field_error(loc: tuple[str, ...], kind: str, message: str, value: object) -> ValidationError:
    """A cross-field rule's refusal located at the field to change, not at the plan."""
    return ValidationError.from_exception_data(
        "RolloutPlan",
        [InitErrorDetails(type=PydanticCustomError(kind, message), loc=loc, input=value)],
    )


class RolloutPlan(Strict):
    target: Target
    stable: Release
    canary: Release
    stages: list[Stage] = Field(min_length=1, max_length=MAX_STAGES)
    analysis: AnalysisSpec
    policies: Policies = Policies()
    invalidation: Invalidation | None = None

    @field_validator("stages")
    @classmethod
    def _stages_climb(cls, stages: list[Stage]) -> list[Stage]:
        weights = [stage.weight for stage in stages]
        for before, after in pairwise(weights):
            if after <= before:
                raise ValueError(f"stage weights must strictly increase, got {weights}")
        if weights and weights[0] >= 100:
            raise ValueError("the first stage must be below 100%: a canary needs a baseline")
        return stages

    @model_validator(mode="after")
    def _history_fits(self) -> RolloutPlan:
        events = estimated_history_events(self.stages, self.policies, self._long_extensions())
        if events > HISTORY_EVENT_BUDGET:
            raise ValueError(
                f"stages: about {events} Step Functions history events, over the budget of "
                f"{HISTORY_EVENT_BUDGET} (the hard limit is {HISTORY_EVENT_LIMIT}); use longer "
                "intervals, fewer stages or a shorter policies.max_extension"
            )
        return self

    @model_validator(mode="after")
    def _warm_up_fits(self) -> RolloutPlan:
        delay = self.analysis.initial_delay
        for number, stage in enumerate(self.stages, start=1):
            if delay % stage.interval:
                raise ValueError(
                    f"analysis.initial_delay ({delay}s) must be a whole number of every "
                    f"stage's interval: stage {number} looks every {stage.interval}s"
                )
            if stage.weight < 100 and delay >= stage.bake:
                raise ValueError(
                    f"analysis.initial_delay ({delay}s) must be shorter than every stage's "
                    f"bake: stage {number} bakes {stage.bake}s, so nothing would be judged"
                )
        return self

    @model_validator(mode="after")
    def _distinct_releases(self) -> RolloutPlan:
        if self.stable.name == self.canary.name:
            raise ValueError("stable and canary must have different names")
        if self.stable.version == self.canary.version:
            # It would take the target's lock and "promote" what already serves everyone.
            raise _field_error(
                ("canary", "version"),
                "same_version",
                f"must differ from stable.version ({self.stable.version}): a canary of the "
                "version the route already serves promotes nothing",
                self.canary.version,
            )
        return self

    def extension(self, stage: Stage) -> int:
        """Seconds an inconclusive bake of ``stage`` may be extended by: the policy's, with
        the long default only when the whole plan's history stays within its budget."""
        return self.policies.extension(stage, self._long_extensions())

    def _long_extensions(self) -> bool:
        return estimated_history_events(self.stages, self.policies) <= HISTORY_EVENT_BUDGET

    def baked_stages(self) -> list[Stage]:
        """Stages that are watched; a final 100% stage is the promotion itself."""
        return [stage for stage in self.stages if stage.weight < 100]
