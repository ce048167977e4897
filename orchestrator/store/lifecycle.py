"""Rollout lifecycle events on EventBridge, announced by the commit that made them true.

``source`` is ``edgeshift.rollouts``; ``detail-type`` is one of ``DETAIL_TYPES``; ``detail``
holds the rollout id, target, status, stage, weight and the reason. What to announce is
read off the audit event a commit writes (``announcements``), so every commit, from a
workflow task or a person's request, announces its change the same way, once, and only
after DynamoDB accepted it. Publishing is best effort: the audit trail in DynamoDB is the
record, an event is a notification.

This sits with the store, under the workflow and the service that commit, because the
commit is the one place that knows a change happened.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from orchestrator.models import AuditEvent, Rollout
from orchestrator.runtime import per_process

SOURCE = "edgeshift.rollouts"
DETAIL_TYPES = {
    "started": "Rollout Started",
    "stage_applied": "Rollout Stage Advanced",
    "paused": "Rollout Paused",
    "resumed": "Rollout Resumed",
    "awaiting_approval": "Rollout Awaiting Approval",
    "promoted": "Rollout Promoted",
    "rolled_back": "Rollout Rolled Back",
    "failed": "Rollout Failed",
    # Not a state change: a look found the edge serving a share other than the weight.
    "split_mismatch": "Rollout Split Mismatch",
}
# Audit event kinds that are lifecycle events of the same name.
_STATE_CHANGES = frozenset(DETAIL_TYPES) - {"split_mismatch"}
_log = logging.getLogger(__name__)


@per_process
def _client() -> Any:
    return boto3.client("events")


def lifecycle_event(
    kind: str, rollout: Rollout, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``extra`` adds to (or overrides) the detail, e.g. the evidence of a split mismatch."""
    target = rollout.plan.target
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPES[kind],
        "EventBusName": os.environ.get("EDGESHIFT_EVENT_BUS", "default"),
        "Detail": json.dumps(
            {
                "rollout_id": rollout.rollout_id,
                "host": target.host,
                "path_rule": target.path_rule,
                "status": rollout.status.value,
                "stage": rollout.stage_index + 1,
                "canary_weight": rollout.canary_weight_bp / 100,
                "canary_version": rollout.plan.canary.version,
                "reason": rollout.reason,
                **(extra or {}),
            }
        ),
    }


def announcements(event: AuditEvent) -> list[tuple[str, dict[str, Any] | None]]:
    """The lifecycle events a committed audit event stands for: ``(kind, extra detail)``."""
    if event.kind in _STATE_CHANGES:
        return [(event.kind, None)]
    verdict = event.detail.get("verdict") if event.kind == "analysis" else None
    split = verdict.get("split") if isinstance(verdict, dict) else None
    if isinstance(split, dict) and split.get("outcome") == "mismatch":
        # Whatever the policy does about it, someone should know the edge is off the plan.
        return [("split_mismatch", {"reason": split.get("reason", ""), "split": split})]
    return []


def publish(
    kind: str, rollout: Rollout, client: Any = None, *, extra: Mapping[str, Any] | None = None
) -> bool:
    """Send one lifecycle event; returns False (and logs) instead of raising."""
    if kind not in DETAIL_TYPES:
        return False
    try:
        event = lifecycle_event(kind, rollout, extra)
        answer = (client or _client()).put_events(Entries=[event])
    except (BotoCoreError, ClientError) as exc:
        _log.warning("event %s for %s not published: %s", kind, rollout.rollout_id, exc)
        return False
    return not answer.get("FailedEntryCount")


def announce(event: AuditEvent, rollout: Rollout, client: Any = None) -> None:
    """Publish what ``event`` (just committed, leaving ``rollout``) stands for."""
    for kind, extra in announcements(event):
        publish(kind, rollout, client, extra=extra)
