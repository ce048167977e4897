"""Listing rollouts newest first, by target and status, page by page; against moto."""

from __future__ import annotations

from datetime import timedelta

import boto3
import pytest
from moto import mock_aws

from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.models import AuditEvent, Rollout, RolloutStatus, utcnow
from orchestrator.service import ACTIVE, RolloutService
from orchestrator.store import Store, TableNames, create_tables


@pytest.fixture
def service():
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, TableNames())
        yield RolloutService(Store(dynamodb, TableNames()), None, "")  # type: ignore[arg-type]


def _create(store: Store, host: str, minutes_ago: int, status=RolloutStatus.PENDING) -> Rollout:
    plan = demo_plan(demo_route(host, 8001, 8002))
    rollout = Rollout.start(plan, "t", now=utcnow() - timedelta(minutes=minutes_ago))
    rollout = rollout.model_copy(update={"status": status})
    event = AuditEvent(
        rollout_id=rollout.rollout_id, seq=1, at=rollout.created_at, actor="t", kind="created"
    )
    store.create_rollout(rollout, event)
    return rollout


def test_listing_is_newest_first_and_pages_with_a_cursor(service):
    """Five rollouts on five hosts come back newest first, two per page, none twice."""
    made = [_create(service.store, f"h{i}.example.com", minutes_ago=i) for i in range(5)]
    seen, cursor = [], None
    for _ in range(3):
        page, cursor = service.list(limit=2, after=cursor)
        seen += [r.rollout_id for r in page]
        if cursor is None:
            break
    assert seen == [r.rollout_id for r in made]


def test_listing_by_target_and_status(service):
    """A target filter returns only that target; a status filter only those statuses."""
    mine = _create(service.store, "a.example.com", 1)
    _create(service.store, "b.example.com", 2, status=RolloutStatus.ROLLED_BACK)
    page, _ = service.list(host="a.example.com")
    assert [r.rollout_id for r in page] == [mine.rollout_id]
    active, _ = service.list(statuses=ACTIVE)
    assert [r.rollout_id for r in active] == [mine.rollout_id]


def test_bad_cursor_and_limit_are_invalid_input(service):
    """A forged cursor or an out-of-range limit is refused naming the parameter."""
    with pytest.raises(ValueError, match="next_token"):
        service.list(after="not-a-token")
    with pytest.raises(ValueError, match="limit"):
        service.list(limit=0)
