"""A route write and a flag sync racing over one flag, each fault between two calls.

A flag-routed rule is checked against the stored flag data, then written; a sync reads the
flag items, checks them against the stored rules, then writes. Whichever lands second must
fail whole instead of leaving a rule whose flag is gone (its viewers would all get the
fallback while `routes put` said it was served).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from local_aws import flag_rule

from edge import flags
from edge.dynamo import deserialize_item
from orchestrator.cli.main import cli
from orchestrator.flags import FlagData, FlagStore, StaleFlagError, UnservedRules, load_file
from orchestrator.models import RouteRule
from orchestrator.service import RolloutService
from orchestrator.store import StaleRouteError, Store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flags.json"
FLAG = "flag:new-checkout"


def _rule() -> RouteRule:
    return flag_rule("new-checkout", {"true": "canary"})


def _without_new_checkout() -> FlagData:
    data = load_file(EXAMPLE)
    return FlagData(
        flags={k: v for k, v in data.flags.items() if k != "new-checkout"},
        segments=data.segments,
    )


def _flag_items(store: Store) -> dict[str, dict[str, Any]]:
    items = store.client.scan(TableName=store.tables.routes)["Items"]
    plain = [deserialize_item(i) for i in items]
    return {i["path_rule"]: i for i in plain if i["host"] == flags.FLAGS_PARTITION}


def _routes(store: Store) -> list[RouteRule]:
    return store.get_routes("shop.example.com")


@pytest.fixture
def synced(store: Store) -> FlagStore:
    flag_store = FlagStore(store.client, store.tables)
    flag_store.sync(load_file(EXAMPLE), actor="test", source="example")
    return flag_store


def test_a_sync_deleting_the_flag_between_the_routes_check_and_write_fails_the_write(
    store: Store, synced: FlagStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN a flag-routed rule whose flag the stored data holds WHEN a sync deletes that
    flag after the route write checked it and before its transaction THEN the route write
    fails naming the flag, no route and no route audit event is written, and the sync's
    deletion stands."""
    original = Store.put_routes

    def sync_lands_first(self: Store, *args: Any, **kwargs: Any) -> Any:
        synced.sync(_without_new_checkout(), actor="flag-sync", source="launchdarkly")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Store, "put_routes", sync_lands_first)
    service = RolloutService(store, None, "")  # type: ignore[arg-type]

    with pytest.raises(StaleRouteError, match=f"flag data changed .*{FLAG}"):
        service.define_routes("shop.example.com", [(_rule(), None)], "cli:ana", "new checkout")

    assert _routes(store) == []
    assert FLAG not in _flag_items(store)
    audit = store.client.scan(TableName=store.tables.rollouts)["Items"]
    assert not [i for i in audit if i["pk"]["S"].startswith("ROUTE#")]


@pytest.mark.parametrize(
    ("after", "refusal"),
    [("stored", UnservedRules), ("flag_routed_rules", StaleFlagError)],
    ids=["after-the-flags-read", "after-the-rules-scan"],
)
def test_a_route_written_while_a_sync_runs_makes_that_sync_fail(
    store: Store,
    synced: FlagStore,
    monkeypatch: pytest.MonkeyPatch,
    after: str,
    refusal: type[Exception],
) -> None:
    """GIVEN a sync that would delete new-checkout WHEN a rule routed by it is written
    after the sync read the flag items (it then finds the rule in its scan: refused), or
    after its rules scan found no rule (its write at the revision it read fails as stale)
    THEN the sync writes nothing; the flag stays, at the revision the route write moved it
    to, with an audit event naming the rule."""
    service = RolloutService(store, None, "")  # type: ignore[arg-type]
    original = getattr(FlagStore, after)
    calls: list[int] = []

    def route_lands_after(self: FlagStore) -> Any:
        answer = original(self)
        if not calls:  # the sync's own call; the route write reads the flags itself
            calls.append(1)
            service.define_routes("shop.example.com", [(_rule(), None)], "cli:ana", "new checkout")
        return answer

    before = int(_flag_items(store)[FLAG]["revision"])
    monkeypatch.setattr(FlagStore, after, route_lands_after)

    with pytest.raises(refusal):
        synced.sync(_without_new_checkout(), actor="flag-sync", source="launchdarkly")

    assert calls == [1]
    routed = [rule.assignment.flag for rule in _routes(store) if rule.assignment]
    assert routed == ["new-checkout"]
    item = _flag_items(store)[FLAG]
    assert int(item["revision"]) == before + 1
    events = [
        i
        for i in store.client.scan(TableName=store.tables.rollouts)["Items"]
        if i["pk"]["S"] == f"FLAGS#{FLAG}"
    ]
    assert any(e["reason"]["S"].startswith("routed by shop.example.com default") for e in events)


def test_the_next_sync_after_the_race_is_refused_naming_the_rule(
    store: Store, synced: FlagStore, tmp_path: Path
) -> None:
    """GIVEN a rule routed by new-checkout written through the service WHEN a sync without
    that flag runs THEN exit 2 naming the rule and the flag, and the flag is kept."""
    service = RolloutService(store, None, "")  # type: ignore[arg-type]
    service.define_routes("shop.example.com", [(_rule(), None)], "cli:ana", "new checkout")
    document = json.loads(EXAMPLE.read_text())
    del document["flags"]["new-checkout"]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(document))

    result = CliRunner().invoke(cli, ["flags", "sync", "--from-file", str(other)])

    assert result.exit_code == 2, result.output
    assert "shop.example.com default: assignment.flag: flag 'new-checkout'" in result.output
    assert FLAG in _flag_items(store)


@pytest.mark.parametrize(
    ("dropped", "item"),
    [("prerequisite", "flag:checkout-enabled"), ("segment", "segment:staff")],
)
def test_a_sync_cannot_drop_what_the_new_rules_flag_needs(
    store: Store, synced: FlagStore, monkeypatch: pytest.MonkeyPatch, dropped: str, item: str
) -> None:
    """GIVEN a sync that keeps new-checkout but drops its prerequisite checkout-enabled, or
    the segment staff its rules match WHEN a rule routed by new-checkout is written after
    the sync's rules scan THEN the sync fails as stale, writes nothing, and the item the
    flag needs stays (the route write pinned it too)."""
    service = RolloutService(store, None, "")  # type: ignore[arg-type]
    data = load_file(EXAMPLE)
    wanted = (
        FlagData(
            flags={k: v for k, v in data.flags.items() if k != "checkout-enabled"},
            segments=data.segments,
        )
        if dropped == "prerequisite"
        else FlagData(flags=data.flags, segments={})
    )
    original = FlagStore.flag_routed_rules
    calls: list[int] = []

    def route_lands_after_the_scan(self: FlagStore) -> Any:
        answer = original(self)
        if not calls:
            calls.append(1)
            service.define_routes("shop.example.com", [(_rule(), None)], "cli:ana", "new checkout")
        return answer

    monkeypatch.setattr(FlagStore, "flag_routed_rules", route_lands_after_the_scan)

    with pytest.raises(StaleFlagError):
        synced.sync(wanted, actor="flag-sync", source="launchdarkly")

    assert item in _flag_items(store)
