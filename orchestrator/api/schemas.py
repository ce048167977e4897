"""Request and response bodies of the API (the pydantic models behind its OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.models import AuditEvent, Rollout, RouteRule
from orchestrator.models.route import HOST_PATTERN as HOST_PATTERN
from orchestrator.service import MAX_REASON
from orchestrator.store.repository import MAX_RULES_PER_WRITE

MAX_HOST = 253  # with HOST_PATTERN, check_host as JSON Schema can say it (no look-ahead)
# A character other than whitespace as Python's str.strip() sees it (the service's own
# check), spelled out: JSON Schema's \s and Python's differ (U+001C, U+0085, U+FEFF).
NOT_BLANK = (
    r"[^\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029"
    r"\u202f\u205f\u3000]"
)
# Visible ASCII, as a header value carries it unchanged through API Gateway.
IDEMPOTENCY_KEY_PATTERN = r"^[!-~]{1,255}$"


class Reason(BaseModel):
    """Why a person steers a rollout: required, recorded in the audit trail."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1,
        max_length=MAX_REASON,
        pattern=NOT_BLANK,
        description="why (recorded in the audit trail); not empty, not only spaces",
    )


class RolloutView(BaseModel):
    """A rollout as callers see it: everything but the Step Functions task token."""

    rollout_id: str
    status: str
    stage: int = Field(description="last applied stage, 1-based; 0 before the first")
    stages: int
    canary_weight: float
    reason: str
    created_at: datetime
    updated_at: datetime
    created_by: str
    control: dict[str, Any] | None
    plan: dict[str, Any]

    @classmethod
    def of(cls, rollout: Rollout) -> RolloutView:
        return cls(
            rollout_id=rollout.rollout_id,
            status=rollout.status.value,
            stage=rollout.stage_index + 1,
            stages=len(rollout.plan.stages),
            canary_weight=rollout.canary_weight_bp / 100,
            reason=rollout.reason,
            created_at=rollout.created_at,
            updated_at=rollout.updated_at,
            created_by=rollout.created_by,
            control=rollout.control.model_dump(mode="json") if rollout.control else None,
            plan=rollout.plan.model_dump(mode="json"),
        )


class RolloutPage(BaseModel):
    items: list[RolloutView]
    next_token: str | None = None


class EventPage(BaseModel):
    """One page of the audit trail, oldest first. ``next_after`` is the ``after`` that reads
    the next page; null when this page reaches the latest event."""

    items: list[AuditEvent]
    next_after: int | None = None


class HostRules(BaseModel):
    """All rules of one host, as the edge reads them."""

    rules: list[RouteRule]


class RoutesWrite(BaseModel):
    """Rules of one host to define or replace, all or nothing. Each rule's ``revision`` is
    the one it was read at (0 to create it): a rule changed since by someone else is a
    conflict, and so is a rule whose target has an active rollout."""

    model_config = ConfigDict(extra="forbid")

    rules: list[RouteRule] = Field(min_length=1, max_length=MAX_RULES_PER_WRITE)
    reason: str = Field(default="", max_length=MAX_REASON)
