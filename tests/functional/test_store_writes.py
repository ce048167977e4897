"""Functional tests for orchestrator.store against moto's in-process DynamoDB.

Every state change is one transaction, so a refused write must leave nothing behind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from orchestrator.models import AuditEvent, Rollout, RolloutPlan, RouteRule, Variant, utcnow
from orchestrator.store import (
    RouteChange,
    StaleRolloutError,
    StaleRouteError,
    StaleWriteError,
    Store,
    TableNames,
    TargetLockedError,
    create_tables,
)

TABLES = TableNames(routes="test-routes", rollouts="test-rollouts")


@pytest.fixture
def store() -> Iterator[Store]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(client, TABLES)
        yield Store(client, TABLES)


def _created(rollout: Rollout) -> AuditEvent:
    return AuditEvent(
        rollout_id=rollout.rollout_id, seq=1, at=rollout.created_at, actor="t", kind="created"
    )


def _start(store: Store, plan: RolloutPlan) -> Rollout:
    rollout = Rollout.start(plan, "t")
    store.create_rollout(rollout, _created(rollout))
    return rollout


def _next(before: Rollout, kind: str = "step", **changes: Any) -> tuple[Rollout, AuditEvent]:
    after = before.model_copy(
        update={**changes, "version": before.version + 1, "updated_at": utcnow()}
    )
    event = AuditEvent(
        rollout_id=before.rollout_id, seq=after.version, at=after.updated_at, actor="t", kind=kind
    )
    return after, event


def _items(store: Store, table: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = store.client.scan(TableName=table, ConsistentRead=True)["Items"]
    return items


def _canary_at(route: RouteRule, canary_bp: int, rollout: Rollout) -> RouteChange:
    variants = [
        Variant(name="canary", version="v2", weight=canary_bp),
        Variant(name="stable", version="v1", weight=10_000 - canary_bp),
    ]
    return RouteChange(
        rule=route, variants=variants, salt=rollout.salt, rollout_id=rollout.rollout_id
    )


def test_create_rollout_writes_rollout_lock_and_event(store: Store, plan: RolloutPlan) -> None:
    """GIVEN a free target WHEN a rollout is created THEN it, its lock and event are stored."""
    rollout = _start(store, plan)

    assert store.get_rollout(rollout.rollout_id) == rollout
    assert store.lock_holder("shop.example.com", "default") == rollout.rollout_id
    assert [e.kind for e in store.events(rollout.rollout_id)] == ["created"]


def test_second_rollout_on_a_locked_target_writes_nothing(store: Store, plan: RolloutPlan) -> None:
    """GIVEN a target held by rollout A WHEN B is created THEN TargetLockedError names A, no B."""
    first = _start(store, plan)
    second = Rollout.start(plan, "someone-else")
    before = _items(store, TABLES.rollouts)

    with pytest.raises(TargetLockedError) as refused:
        store.create_rollout(second, _created(second))

    assert refused.value.holder == first.rollout_id
    assert first.rollout_id in str(refused.value)
    assert refused.value.target == "shop.example.com default"
    assert _items(store, TABLES.rollouts) == before
    assert store.events(second.rollout_id) == []
    assert store.lock_holder("shop.example.com", "default") == first.rollout_id


def test_other_path_rule_of_the_same_host_is_a_separate_target(
    store: Store, plan: RolloutPlan
) -> None:
    """GIVEN a lock on host 'default' WHEN a rollout targets 'prefix:/api/' THEN it proceeds."""
    _start(store, plan)
    other = plan.model_copy(
        update={"target": plan.target.model_copy(update={"path_rule": "prefix:/api/"})}
    )

    rollout = _start(store, other)

    assert store.lock_holder("shop.example.com", "prefix:/api/") == rollout.rollout_id


def test_commit_moves_the_version_and_records_the_event(store: Store, plan: RolloutPlan) -> None:
    """GIVEN a stored rollout WHEN committed to version 2 THEN both the doc and event are there."""
    rollout = _start(store, plan)
    after, event = _next(rollout, "started", reason="go")

    store.commit(rollout, after, event)

    assert store.get_rollout(rollout.rollout_id) == after
    assert [(e.seq, e.kind) for e in store.events(rollout.rollout_id)] == [
        (1, "created"),
        (2, "started"),
    ]


def test_commit_from_a_stale_version_changes_nothing(store: Store, plan: RolloutPlan) -> None:
    """GIVEN a rollout already moved to v2 WHEN another writer commits from v1 THEN stale, no-op."""
    rollout = _start(store, plan)
    store.commit(rollout, *_next(rollout, "first-writer"))
    before = _items(store, TABLES.rollouts)
    late, late_event = _next(rollout, "second-writer", reason="late")

    with pytest.raises(StaleRolloutError):
        store.commit(rollout, late, late_event)

    assert _items(store, TABLES.rollouts) == before
    assert [e.kind for e in store.events(rollout.rollout_id)] == ["created", "first-writer"]


def test_commit_refuses_a_version_jump_before_writing(store: Store, plan: RolloutPlan) -> None:
    """GIVEN an 'after' two versions ahead WHEN committed THEN ValueError and nothing written."""
    rollout = _start(store, plan)
    after, event = _next(rollout)
    jumped = after.model_copy(update={"version": 3})
    before = _items(store, TABLES.rollouts)

    with pytest.raises(ValueError, match="exactly one"):
        store.commit(rollout, jumped, event.model_copy(update={"seq": 3}))

    assert _items(store, TABLES.rollouts) == before


def test_commit_with_a_stale_route_is_all_or_nothing(
    store: Store, plan: RolloutPlan, route: RouteRule
) -> None:
    """GIVEN a route moved on after it was read (edited outside edgeshift: the store itself
    refuses route writes under a held lock) WHEN a stage commits THEN nothing changes."""
    from orchestrator.store import codec

    stored_route = store.put_route(route, expected_revision=None)
    rollout = _start(store, plan)
    read = store.get_route("shop.example.com")
    assert read is not None
    concurrent = read.model_copy(update={"salt": "operator", "revision": read.revision + 1})
    store.client.put_item(TableName=TABLES.routes, Item=codec.route_item(concurrent))
    rollouts_before = _items(store, TABLES.rollouts)
    after, event = _next(rollout, "stage_applied", stage_index=0, stage_started_at=utcnow())

    with pytest.raises(StaleRouteError):
        store.commit(rollout, after, event, route=_canary_at(read, 1_000, rollout))

    assert store.get_route("shop.example.com") == concurrent
    assert concurrent.revision == stored_route.revision + 1
    assert store.get_rollout(rollout.rollout_id) == rollout
    assert [e.kind for e in store.events(rollout.rollout_id)] == ["created"]
    assert _items(store, TABLES.rollouts) == rollouts_before


def test_commit_with_a_fresh_route_moves_weights_and_revision(
    store: Store, plan: RolloutPlan, route: RouteRule
) -> None:
    """GIVEN the current route WHEN a stage commits with it THEN weights, salt and revision move."""
    store.put_route(route, expected_revision=None)
    rollout = _start(store, plan)
    read = store.get_route("shop.example.com")
    assert read is not None

    store.commit(
        rollout,
        *_next(rollout, "stage_applied", stage_index=0),
        route=_canary_at(read, 1_000, rollout),
    )

    now = store.get_route("shop.example.com")
    assert now is not None
    assert now.weights() == {"canary": 1_000, "stable": 9_000}
    assert (now.revision, now.salt, now.rollout_id) == (
        read.revision + 1,
        rollout.salt,
        rollout.rollout_id,
    )


def test_commit_refuses_a_route_change_that_does_not_cover_everyone(
    store: Store, plan: RolloutPlan, route: RouteRule
) -> None:
    """GIVEN new variants summing to 9000 bp WHEN committed THEN refused and the route unchanged."""
    store.put_route(route, expected_revision=None)
    rollout = _start(store, plan)
    read = store.get_route("shop.example.com")
    assert read is not None
    change = _canary_at(read, 1_000, rollout)
    short = RouteChange(
        rule=read,
        variants=[change.variants[0], change.variants[1].model_copy(update={"weight": 8_000})],
        salt=rollout.salt,
        rollout_id=rollout.rollout_id,
    )

    with contextlib.suppress(ValueError):  # refusing is the expected outcome
        store.commit(rollout, *_next(rollout, "stage_applied"), route=short)

    assert store.get_route("shop.example.com") == read


def test_final_commit_releases_the_lock_for_a_new_rollout(store: Store, plan: RolloutPlan) -> None:
    """GIVEN rollout A ends with release_lock WHEN B starts on the same target THEN B holds it."""
    first = _start(store, plan)
    store.commit(first, *_next(first, "rolled_back"), release_lock=True)
    assert store.lock_holder("shop.example.com", "default") is None

    second = _start(store, plan)

    assert store.lock_holder("shop.example.com", "default") == second.rollout_id


def test_release_lock_does_not_release_someone_elses_lock(store: Store, plan: RolloutPlan) -> None:
    """GIVEN B holds the target WHEN a stale A commits with release_lock THEN B keeps it."""
    first = _start(store, plan)
    store.commit(first, *_next(first, "rolled_back"), release_lock=True)
    second = _start(store, plan)
    again, event = _next(store.get_rollout(first.rollout_id), "late")

    with pytest.raises(StaleWriteError):
        store.commit(store.get_rollout(first.rollout_id), again, event, release_lock=True)

    assert store.lock_holder("shop.example.com", "default") == second.rollout_id
    assert store.get_rollout(first.rollout_id).version == 2


def test_put_route_create_twice_is_stale(store: Store, route: RouteRule) -> None:
    """GIVEN a created route WHEN created again (expected_revision None) THEN StaleRouteError."""
    first = store.put_route(route, expected_revision=None)

    with pytest.raises(StaleRouteError):
        store.put_route(route.model_copy(update={"salt": "again"}), expected_revision=None)

    assert first.revision == 1
    assert store.get_route("shop.example.com") == first


def test_put_route_at_an_old_revision_is_stale(store: Store, route: RouteRule) -> None:
    """GIVEN a route at revision 2 WHEN replaced expecting revision 1 THEN StaleRouteError."""
    created = store.put_route(route, expected_revision=None)
    current = store.put_route(created, expected_revision=1)

    with pytest.raises(StaleRouteError):
        store.put_route(created, expected_revision=1)

    assert current.revision == 2
    assert store.get_route("shop.example.com") == current


def test_a_route_write_under_a_held_lock_is_refused_naming_the_rollout(
    store: Store, plan: RolloutPlan, route: RouteRule
) -> None:
    """GIVEN a rollout holding the target WHEN its route is written at its current revision
    THEN TargetLockedError names the rollout (the lock is checked in the write's own
    transaction) and neither the route nor a route audit event is written."""
    created = store.put_route(route, expected_revision=None)
    rollout = _start(store, plan)
    before = {t: _items(store, t) for t in (TABLES.rollouts, TABLES.routes)}

    with pytest.raises(TargetLockedError) as refused:
        store.put_route(created.model_copy(update={"salt": "x"}), expected_revision=1)

    assert refused.value.holder == rollout.rollout_id
    assert {t: _items(store, t) for t in (TABLES.rollouts, TABLES.routes)} == before


def test_a_held_lock_refuses_the_whole_write_and_spares_other_targets(
    store: Store, plan: RolloutPlan, route: RouteRule
) -> None:
    """GIVEN a lock on 'default' only WHEN 'default' and 'prefix:/api/' are written together
    THEN nothing is written (all or nothing); alone, 'prefix:/api/' is written."""
    created = store.put_route(route, expected_revision=None)
    _start(store, plan)
    api_rule = route.model_copy(update={"path_rule": "prefix:/api/"})

    with pytest.raises(TargetLockedError):
        store.put_routes([(api_rule, None), (created, created.revision)])
    assert store.get_route("shop.example.com", "prefix:/api/") is None

    written = store.put_routes([(api_rule, None)])
    assert written[0].revision == 1


def test_a_lock_taken_after_the_stores_own_read_still_refuses_the_write(
    store: Store, plan: RolloutPlan, route: RouteRule, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN the store's read of the lock found the target free (a rollout took it right
    after) WHEN the route is written THEN the transaction's own check refuses it."""
    created = store.put_route(route, expected_revision=None)
    rollout = _start(store, plan)
    real = Store.lock_holder
    reads: list[str | None] = []

    def free_at_first_read(self: Store, host: str, path_rule: str) -> str | None:
        holder = real(self, host, path_rule) if reads else None
        reads.append(holder)
        return holder

    monkeypatch.setattr(Store, "lock_holder", free_at_first_read)
    before = _items(store, TABLES.routes)

    with pytest.raises(TargetLockedError) as refused:
        store.put_route(created.model_copy(update={"salt": "x"}), expected_revision=1)

    assert refused.value.holder == rollout.rollout_id  # read again to name it
    assert _items(store, TABLES.routes) == before


def test_a_failed_rollouts_lock_lets_a_person_repair_the_route(
    store: Store, plan: RolloutPlan, route: RouteRule
) -> None:
    """GIVEN a FAILED rollout (its rollback could not finish; it keeps the lock) WHEN a
    person rewrites the route, as runbooks/rollback-failed.md says before recover THEN it
    is written, and the lock stays with the FAILED rollout."""
    from orchestrator.models import RolloutStatus

    created = store.put_route(route, expected_revision=None)
    rollout = _start(store, plan)
    failed, event = _next(rollout, "failed", status=RolloutStatus.FAILED, reason="rollback failed")
    store.commit(rollout, failed, event)  # no release_lock: FAILED keeps it

    written = store.put_route(created, expected_revision=created.revision, reason="repair")

    assert written.revision == created.revision + 1
    assert store.lock_holder("shop.example.com", "default") == rollout.rollout_id


def test_get_missing_route_is_none(store: Store) -> None:
    """GIVEN an empty routes table WHEN a route is read THEN None."""
    assert store.get_route("nothing.example.com") is None


def test_events_come_back_in_seq_order(store: Store, plan: RolloutPlan) -> None:
    """GIVEN twelve commits (seq 1..13, past single digits) WHEN listed THEN in seq order."""
    rollout = _start(store, plan)
    for step in range(12):
        after, event = _next(rollout, f"step-{step}")
        store.commit(rollout, after, event)
        rollout = after

    events = store.events(rollout.rollout_id)

    assert [e.seq for e in events] == list(range(1, 14))
    assert events[-1].kind == "step-11"
    assert store.get_rollout(rollout.rollout_id).version == 13
