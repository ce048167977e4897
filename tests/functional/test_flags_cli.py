"""``rollout flags sync --from-file`` against moto in-process.

A good file is written where the edge reads it (and read back by the edge's own snapshot),
each item with an audit event; a file the SDK's file data source rejects, unknown fields,
and data that cannot serve a stored flag-routed rule exit 2 naming the problem and write
nothing; a second sync of the same file writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from local_aws import flag_rule

from edge import flags
from edge.dynamo import deserialize_item
from orchestrator.cli.main import cli
from orchestrator.store import Store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "flags.json"


def _sync(path: Path, *extra: str) -> Result:
    return CliRunner().invoke(cli, ["flags", "sync", "--from-file", str(path), *extra])


def _flag_items(store: Store) -> list[dict[str, Any]]:
    items = store.client.scan(TableName=store.tables.routes)["Items"]
    return [deserialize_item(i) for i in items if i["host"]["S"] == flags.FLAGS_PARTITION]


def _audit(store: Store) -> list[dict[str, Any]]:
    items = store.client.scan(TableName=store.tables.rollouts)["Items"]
    return [i for i in items if i["pk"]["S"].startswith("FLAGS#")]


def test_sync_writes_flags_where_the_edge_reads_them(store: Store) -> None:
    """GIVEN the example flag file WHEN synced THEN exit 0, one item per flag and segment
    with its audit event, and the edge's snapshot of those items holds every flag."""
    result = _sync(EXAMPLE)

    assert result.exit_code == 0, result.output
    items = _flag_items(store)
    assert sorted(i["path_rule"] for i in items) == [
        "flag:checkout-enabled",
        "flag:new-checkout",
        "segment:staff",
    ]
    assert len(_audit(store)) == 3
    snapshot = flags.Snapshot(items)
    assert sorted(snapshot.flags) == ["checkout-enabled", "new-checkout"]
    assert snapshot.flags["new-checkout"]["prerequisites"][0]["key"] == "checkout-enabled"


def test_a_second_sync_of_the_same_file_writes_nothing(store: Store) -> None:
    """GIVEN a synced file WHEN synced again THEN nothing is written and no audit added."""
    assert _sync(EXAMPLE).exit_code == 0

    again = _sync(EXAMPLE)

    assert again.exit_code == 0
    assert "0 written, 0 deleted, 3 unchanged" in again.output
    assert len(_audit(store)) == 3


def test_a_changed_flag_is_rewritten_at_the_next_revision(store: Store, tmp_path: Path) -> None:
    """GIVEN a synced file WHEN one flag changes THEN only it is written, at revision 2."""
    assert _sync(EXAMPLE).exit_code == 0
    document = json.loads(EXAMPLE.read_text())
    document["flags"]["new-checkout"]["on"] = False
    changed = tmp_path / "flags.json"
    changed.write_text(json.dumps(document))

    result = _sync(changed)

    assert result.exit_code == 0, result.output
    by_name = {i["path_rule"]: i for i in _flag_items(store)}
    assert by_name["flag:new-checkout"]["revision"] == 2
    assert by_name["flag:checkout-enabled"]["revision"] == 1
    assert json.loads(by_name["flag:new-checkout"]["data"])["on"] is False


def test_a_file_the_sdk_rejects_exits_2_with_its_reason(store: Store, tmp_path: Path) -> None:
    """GIVEN a flag whose "on" is a string WHEN synced THEN exit 2 naming the property,
    and nothing is written."""
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"flags": {"x": {"key": "x", "on": "yes", "variations": [1]}}}))

    result = _sync(bad)

    assert result.exit_code == 2
    assert 'property "on"' in result.output
    assert _flag_items(store) == []


def test_unknown_flag_fields_are_refused_by_name(store: Store, tmp_path: Path) -> None:
    """GIVEN a misspelt fallthrough WHEN synced THEN exit 2 naming flag and field."""
    document = json.loads(EXAMPLE.read_text())
    document["flags"]["new-checkout"]["fallthru"] = {"variation": 0}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(document))

    result = _sync(bad)

    assert result.exit_code == 2
    assert "flags.new-checkout.fallthru: unknown field" in result.output
    assert _flag_items(store) == []


def test_data_without_a_routed_flag_is_refused(store: Store, tmp_path: Path) -> None:
    """GIVEN a stored rule routed by flag new-checkout WHEN a file without it is synced
    THEN exit 2 naming the rule and the flag, and nothing is written."""
    store.put_route(flag_rule("new-checkout", {"true": "canary"}), expected_revision=None)
    document = json.loads(EXAMPLE.read_text())
    del document["flags"]["new-checkout"]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(document))

    result = _sync(other)

    assert result.exit_code == 2
    assert "shop.example.com default: assignment.flag: flag 'new-checkout'" in result.output
    assert _flag_items(store) == []


def test_variations_the_flag_cannot_serve_are_refused(store: Store) -> None:
    """GIVEN a rule mapping the value "beta" of a boolean flag WHEN the flag is synced THEN
    exit 2 naming the value."""
    store.put_route(
        flag_rule("new-checkout", {"true": "canary", "beta": "canary"}), expected_revision=None
    )

    result = _sync(EXAMPLE)

    assert result.exit_code == 2
    assert "assignment.variations.beta: flag 'new-checkout' has no such value" in result.output
    assert _flag_items(store) == []


def test_list_shows_the_items_and_which_rules_they_serve(store: Store, tmp_path: Path) -> None:
    """GIVEN a synced file and two flag-routed rules, one naming a flag it lacks WHEN listed
    THEN every item with its revision, the served rule ok, the other named with the reason."""
    assert _sync(EXAMPLE).exit_code == 0
    store.put_route(flag_rule("new-checkout", {"true": "canary"}), expected_revision=None)
    missing = flag_rule("old-checkout", {"true": "canary"}).model_copy(
        update={"path_rule": "prefix:/old"}
    )
    store.put_route(missing, expected_revision=None)

    result = CliRunner().invoke(cli, ["flags", "list", "--json"])

    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert [i["item"] for i in shown["items"]] == [
        "flag:checkout-enabled",
        "flag:new-checkout",
        "segment:staff",
    ]
    status = {r["path_rule"]: r["status"] for r in shown["rules"]}
    assert status["default"] == "ok"
    assert "flag 'old-checkout' is not in the flag data" in status["prefix:/old"]


def test_list_without_flag_data_says_rules_fall_back(store: Store) -> None:
    """GIVEN no flag data WHEN listed THEN it says so."""
    result = CliRunner().invoke(cli, ["flags", "list"])

    assert result.exit_code == 0
    assert "no flag data" in result.output


def test_a_flag_deleted_then_added_again_syncs(store: Store, tmp_path: Path) -> None:
    """GIVEN a flag synced, then a file without it (the flag deleted) WHEN a file with it
    again is synced THEN exit 0 and the flag is stored once more, with one audit event per
    change (created, deleted, created): the re-created item's first revision must not
    collide with the first item's audit event."""
    one = tmp_path / "one.json"
    other = tmp_path / "other.json"
    one.write_text(json.dumps({"flagValues": {"new-checkout": True}}))
    other.write_text(json.dumps({"flagValues": {"other": True}}))

    assert _sync(one).exit_code == 0
    assert _sync(other).exit_code == 0
    result = _sync(one)

    assert result.exit_code == 0, result.output
    assert [i["path_rule"] for i in _flag_items(store)] == ["flag:new-checkout"]
    events = [i for i in _audit(store) if i["pk"]["S"] == "FLAGS#flag:new-checkout"]
    assert sorted(e["reason"]["S"].split()[0] for e in events) == ["deleted", "synced", "synced"]


def test_a_flag_too_big_for_a_table_item_is_refused_before_anything_is_written(
    store: Store, tmp_path: Path
) -> None:
    """GIVEN 60 small flags and one whose target list is over DynamoDB's 400 KB item limit
    (sorted last, so it would fall in the second transaction) WHEN synced THEN exit 2
    naming that flag and the limit, and none of the others written either."""
    small = {f"flag-{i:02d}": True for i in range(60)}
    big = {
        "key": "zz-big",
        "version": 1,
        "on": True,
        "variations": [True, False],
        "targets": [{"variation": 0, "values": [f"user-{i:06d}-abcdefgh" for i in range(30_000)]}],
        "fallthrough": {"variation": 1},
    }
    path = tmp_path / "big.json"
    path.write_text(json.dumps({"flags": {"zz-big": big}, "flagValues": small}))

    result = _sync(path)

    assert result.exit_code == 2, result.output
    assert "flags.zz-big" in result.output and "400 KB" in result.output
    assert _flag_items(store) == []
    assert _audit(store) == []


def test_big_flags_are_written_in_transactions_within_the_size_limit(store: Store) -> None:
    """GIVEN twelve flags of about 250 KB each (6 MB with their audit events, over a
    transaction's 4 MB) WHEN the store syncs them THEN all are written; and a flag over the
    item limit is refused by the store itself, naming it, before any write."""
    from orchestrator.flags import FlagData, FlagDataError, FlagStore
    from orchestrator.flags.store import _batches

    def flag(key: str, targets: int) -> dict[str, Any]:
        values = [f"user-{i:06d}-abcdefgh" for i in range(targets)]
        return {
            "key": key,
            "version": 1,
            "on": True,
            "variations": [True, False],
            "targets": [{"variation": 0, "values": values}],
            "fallthrough": {"variation": 1},
        }

    flag_store = FlagStore(store.client, store.tables)
    data = FlagData(flags={f"f{i:02d}": flag(f"f{i:02d}", 12_000) for i in range(12)})
    changes = [(f"flag:{k}", v, None) for k, v in data.flags.items()]
    assert len(_batches(changes)) >= 2

    result = flag_store.sync(data, actor="test", source="test")

    assert len(result.written) == 12
    with pytest.raises(FlagDataError, match=r"flags\.huge: .* over the 400 KB"):
        flag_store.sync(FlagData(flags={"huge": flag("huge", 30_000)}), actor="t", source="t")
    assert "flag:huge" not in flag_store.stored() and len(flag_store.stored()) == 12


def test_keep_missing_checks_the_rules_against_what_will_be_stored(
    store: Store, tmp_path: Path
) -> None:
    """GIVEN new-checkout synced and a rule routed by it WHEN a file holding only another
    flag is synced with --keep-missing THEN exit 0 (new-checkout is kept, so the rule is
    still served) and both flags are stored; without --keep-missing it is refused."""
    assert _sync(EXAMPLE).exit_code == 0
    store.put_route(flag_rule("new-checkout", {"true": "canary"}), expected_revision=None)
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"flagValues": {"other": True}}))

    assert _sync(other).exit_code == 2
    result = _sync(other, "--keep-missing")

    assert result.exit_code == 0, result.output
    names = {i["path_rule"] for i in _flag_items(store)}
    assert {"flag:new-checkout", "flag:other"} <= names


def test_a_routed_flag_whose_prerequisite_or_segment_is_missing_is_refused(
    store: Store, tmp_path: Path
) -> None:
    """GIVEN a rule routed by new-checkout WHEN a file is synced whose new-checkout needs a
    prerequisite flag, or matches a segment, that the file lacks THEN exit 2 naming the
    missing flag or segment (the SDK would silently serve the off variation, or never match
    the segment), and nothing is written."""
    store.put_route(flag_rule("new-checkout", {"true": "canary"}), expected_revision=None)
    for section, key in (("flags", "checkout-enabled"), ("segments", "staff")):
        document = json.loads(EXAMPLE.read_text())
        del document[section][key]
        path = tmp_path / f"without-{key}.json"
        path.write_text(json.dumps(document))

        result = _sync(path)

        assert result.exit_code == 2, result.output
        assert f"'{key}'" in result.output and "new-checkout" in result.output
        assert _flag_items(store) == []


def test_an_unreadable_stored_item_is_reported_not_a_crash(store: Store) -> None:
    """GIVEN the example synced and an item whose data is not JSON (written by hand) WHEN
    the flags are listed THEN exit 0, the item marked unreadable and the rules' status
    still computed from the readable items."""
    assert _sync(EXAMPLE).exit_code == 0
    store.put_route(flag_rule("new-checkout", {"true": "canary"}), expected_revision=None)
    store.client.put_item(
        TableName=store.tables.routes,
        Item={
            "host": {"S": flags.FLAGS_PARTITION},
            "path_rule": {"S": "flag:junk"},
            "data": {"S": "{not json"},
            "revision": {"N": "1"},
        },
    )

    result = CliRunner().invoke(cli, ["flags", "list", "--json"])

    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    by_item = {row["item"]: row for row in listed["items"]}
    assert by_item["flag:junk"]["unreadable"] is True
    assert by_item["flag:new-checkout"]["unreadable"] is False
    assert [row["status"] for row in listed["rules"]] == ["ok"]


def test_an_unquoted_yaml_on_is_named_with_the_fix(store: Store, tmp_path: Path) -> None:
    """GIVEN a YAML flag file writing ``on: true`` unquoted (YAML 1.1 reads the key as the
    boolean true, and the SDK would see a flag that is off) WHEN synced THEN exit 2 naming
    flags.<key>.on and saying to quote it, and nothing written."""
    path = tmp_path / "flags.yaml"
    path.write_text(
        "flags:\n  f:\n    key: f\n    version: 1\n    on: true\n"
        "    variations: [true, false]\n    fallthrough: {variation: 0}\n"
    )

    result = _sync(path)

    assert result.exit_code == 2
    assert "flags.f.on:" in result.output and '"on"' in result.output
    assert _flag_items(store) == []
