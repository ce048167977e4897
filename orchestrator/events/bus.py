"""Rollout lifecycle events on EventBridge.

``source`` is ``edgeshift.rollouts``; ``detail-type`` is one of ``DETAIL_TYPES``; ``detail``
holds the rollout id, target, status, stage, weight and the reason. Publishing is best
effort: the audit trail in DynamoDB is the record, an event is a notification.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from orchestrator.models import Rollout
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
