"""The split-mismatch lifecycle event carries the evidence of the look that found it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from orchestrator.events.bus import DETAIL_TYPES, lifecycle_event
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.models import Rollout


def test_the_split_mismatch_event_names_the_share_and_the_band() -> None:
    """GIVEN a split check's evidence WHEN the event is built THEN its detail-type is
    Rollout Split Mismatch and its detail holds the reason and the check."""
    plan = demo_plan(demo_route("shop.example.com", 8001, 8002))
    rollout = Rollout.start(plan, "t", now=datetime(2024, 5, 1, tzinfo=UTC))
    split = {"share": 0.2, "weight": 0.1, "low": 0.075, "high": 0.125, "outcome": "mismatch"}

    event = lifecycle_event("split_mismatch", rollout, {"reason": "served 20%", "split": split})

    assert event["DetailType"] == DETAIL_TYPES["split_mismatch"] == "Rollout Split Mismatch"
    detail = json.loads(event["Detail"])
    assert detail["reason"] == "served 20%" and detail["split"] == split
    assert detail["rollout_id"] == rollout.rollout_id
