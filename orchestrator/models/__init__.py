"""Domain models: routes the edge reads, plans people submit, rollouts the workflow drives."""

from .analysis import AnalysisSpec
from .durations import Duration, format_duration, parse_duration
from .plan import Invalidation, Policies, RolloutPlan, Stage, Target
from .rollout import (
    TRANSITIONS,
    AuditEvent,
    ControlAction,
    ControlRequest,
    Rollout,
    RolloutStatus,
    StageTally,
    new_rollout_id,
    utcnow,
)
from .route import FULL_WEIGHT, Release, RouteRule, SetOrigin, Variant, VariantActions

__all__ = [
    "FULL_WEIGHT",
    "TRANSITIONS",
    "AnalysisSpec",
    "AuditEvent",
    "ControlAction",
    "ControlRequest",
    "Duration",
    "Invalidation",
    "Policies",
    "Release",
    "Rollout",
    "RolloutPlan",
    "RolloutStatus",
    "RouteRule",
    "SetOrigin",
    "Stage",
    "StageTally",
    "Target",
    "Variant",
    "VariantActions",
    "format_duration",
    "new_rollout_id",
    "parse_duration",
    "utcnow",
]
