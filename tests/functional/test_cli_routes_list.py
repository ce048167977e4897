"""``rollout routes get|put`` and ``rollout list`` against moto in-process.

Invalid routes exit 2 naming the field path and write nothing; a route owned by an
active rollout, or changed since the file's revision, exits 3; unknown hosts exit 4.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli.main import cli
from orchestrator.models import AuditEvent, Rollout, RolloutPlan, RolloutStatus
from orchestrator.store import Store
from orchestrator.workflow import transitions

HOST = "shop.example.com"
ROUTES_YAML = f"""\
host: {HOST}
rules:
  - variants:
      - {{name: canary, version: v1, weight: 0}}
      - {{name: stable, version: v1, weight: 10000}}
  - path_rule: "prefix:/api"
    variants:
      - name: canary
        version: v1
        weight: 0
        actions: {{set_headers: {{x-api-version: "{{version}}"}}}}
      - {{name: stable, version: v1, weight: 10000}}
"""


def _rollout(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def _write(tmp_path: Path, text: str, name: str = "routes.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _route_items(store: Store) -> list[dict[str, Any]]:
    return store.client.scan(TableName=store.tables.routes)["Items"]


def test_put_then_get_shows_every_rule(store: Store, tmp_path: Path):
    """GIVEN a valid routes file WHEN put THEN both rules are created and get shows them."""
    put = _rollout("routes", "put", str(_write(tmp_path, ROUTES_YAML)), "--reason", "first")
    got = _rollout("routes", "get", HOST)

    assert put.exit_code == 0, put.output
    assert put.output.splitlines() == [
        f"{HOST} default: created, revision 1",
        f"{HOST} prefix:/api: created, revision 1",
    ]
    assert f"{HOST} prefix:/api  (revision 1)" in got.output
    assert "canary       v1                    0%  set_headers" in got.output
    assert "stable       v1                  100%" in got.output


def test_get_json_round_trips_through_put_with_the_revision_checked(store: Store, tmp_path: Path):
    """GIVEN routes read as JSON WHEN edited and put back THEN replaced at the next revision;
    putting the same stale file again is a conflict that changes nothing."""
    _rollout("routes", "put", str(_write(tmp_path, ROUTES_YAML)))
    rules = json.loads(_rollout("routes", "get", HOST, "--json").output)
    assert [rule["revision"] for rule in rules] == [1, 1]
    rules[0]["variants"][0]["weight"], rules[0]["variants"][1]["weight"] = 500, 9500
    edited = _write(tmp_path, json.dumps(rules[:1]), "edited.json")

    first = _rollout("routes", "put", str(edited))
    again = _rollout("routes", "put", str(edited))

    assert first.exit_code == 0, first.output
    assert first.output.strip() == f"{HOST} default: replaced, revision 2"
    assert again.exit_code == 3
    assert "revision 1" in again.output and "at 2" in again.output
    assert store.get_route(HOST).weights() == {"canary": 500, "stable": 9500}
    assert store.get_route(HOST).revision == 2


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (ROUTES_YAML.replace("weight: 10000}\n  - path", "weight: 9000}\n  - path"), "rules.0"),
        (ROUTES_YAML.replace("weight: 0}", "weight: -1}", 1), "rules.0.variants.0.weight"),
        (ROUTES_YAML.replace("x-api-version", "x-amz-cf-id"), "rules.1.variants.0.actions"),
        (ROUTES_YAML.replace('"prefix:/api"', '"prefix:api"'), "rules.1.path_rule"),
        (ROUTES_YAML.replace("  - path_rule", "  - colour: red\n    path_rule"), "rules.1.colour"),
        (ROUTES_YAML.replace(f"host: {HOST}", "host: Shop.Example.com"), "rules.0.host"),
        (ROUTES_YAML.replace('"prefix:/api"', "default"), "path_rule"),
        (ROUTES_YAML + "extra: 1\n", "extra"),
        ("variants: [oops", "(file)"),
        ("just text", "(file)"),
    ],
    ids=[
        "weights-sum",
        "negative-weight",
        "forbidden-header",
        "path-rule",
        "unknown-field",
        "host",
        "duplicate-path-rule",
        "unknown-top-level",
        "broken-yaml",
        "not-a-mapping",
    ],
)
def test_invalid_routes_exit_2_naming_the_field_and_write_nothing(
    store: Store, tmp_path: Path, text: str, field: str
):
    """GIVEN a routes file with one problem WHEN put THEN exit 2, the field path, no write."""
    result = _rollout("routes", "put", str(_write(tmp_path, text)))
    assert result.exit_code == 2, result.output
    assert f"  {field}" in result.output
    assert _route_items(store) == []


def test_a_single_rule_file_is_accepted(store: Store, tmp_path: Path):
    """GIVEN a file holding one rule (JSON) WHEN put THEN it is created."""
    rule = {
        "host": HOST,
        "variants": [
            {"name": "canary", "version": "v1", "weight": 0},
            {"name": "stable", "version": "v1", "weight": 10_000},
        ],
    }
    result = _rollout("routes", "put", str(_write(tmp_path, json.dumps(rule), "one.json")))
    assert result.exit_code == 0, result.output
    assert store.get_route(HOST) is not None


def test_a_route_owned_by_an_active_rollout_is_refused(
    store: Store, tmp_path: Path, plan: RolloutPlan
):
    """GIVEN an active rollout on the host WHEN its route is put THEN exit 3, unchanged."""
    _rollout("routes", "put", str(_write(tmp_path, ROUTES_YAML)))
    active = _create(store, plan)
    changed = ROUTES_YAML.replace("weight: 0}", "weight: 100}", 1).replace(
        "weight: 10000}", "weight: 9900}", 1
    )

    result = _rollout("routes", "put", str(_write(tmp_path, changed, "changed.yaml")))

    assert result.exit_code == 3
    assert active.rollout_id in result.output
    assert store.get_route(HOST).revision == 1


def test_get_of_an_unknown_host_exits_4(store: Store):
    """GIVEN no rules for a host WHEN read THEN exit 4."""
    result = _rollout("routes", "get", "nowhere.example.com")
    assert result.exit_code == 4
    assert "nowhere.example.com" in result.output


def test_put_of_a_missing_file_exits_2(store: Store, tmp_path: Path):
    """GIVEN a path that does not exist THEN exit 2 naming the file."""
    result = _rollout("routes", "put", str(tmp_path / "missing.yaml"))
    assert result.exit_code == 2
    assert "(file): cannot be read" in result.output


# -- list ------------------------------------------------------------------------------------


def _create(store: Store, plan: RolloutPlan, host: str = HOST) -> Rollout:
    document = plan.model_dump(mode="json")
    document["target"]["host"] = host
    rollout = Rollout.start(RolloutPlan.model_validate(document), "tests")
    store.create_rollout(
        rollout,
        AuditEvent(
            rollout_id=rollout.rollout_id, seq=1, at=rollout.created_at, actor="t", kind="created"
        ),
    )
    return rollout


def _finish(store: Store, rollout: Rollout) -> Rollout:
    return transitions.commit(
        store,
        rollout,
        "rolled_back",
        "test",
        actor="t",
        status=RolloutStatus.ROLLING_BACK,
        reason="canary failed",
    )


@pytest.fixture
def three(store: Store, plan: RolloutPlan) -> dict[str, Rollout]:
    """One active rollout on shop, one finished on shop, one active on blog."""
    old = _create(store, plan)
    ended = transitions.commit(
        store,
        _finish(store, old),
        "rolled_back",
        "done",
        actor="t",
        status=RolloutStatus.ROLLED_BACK,
    )
    return {
        "ended": ended,
        "shop": _create(store, plan),
        "blog": _create(store, plan, host="blog.example.com"),
    }


def test_list_json_is_newest_first_with_targets(store: Store, three: dict[str, Rollout]):
    """GIVEN three rollouts WHEN listed as JSON THEN all, newest first, with their targets."""
    result = _rollout("list", "--json")
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {row["rollout_id"] for row in rows} == {r.rollout_id for r in three.values()}
    assert [row["created_at"] for row in rows] == sorted(
        (row["created_at"] for row in rows), reverse=True
    )
    ended = next(row for row in rows if row["rollout_id"] == three["ended"].rollout_id)
    assert ended["status"] == "ROLLED_BACK" and ended["host"] == HOST


def test_list_filters_by_active_and_host(store: Store, three: dict[str, Rollout]):
    """GIVEN three rollouts WHEN filtered THEN only active ones, only the host's ones."""
    active = json.loads(_rollout("list", "--active", "--json").output)
    shop = json.loads(_rollout("list", "--host", HOST, "--json").output)
    both = json.loads(_rollout("list", "--active", "--host", HOST, "--json").output)
    assert {r["rollout_id"] for r in active} == {three["shop"].rollout_id, three["blog"].rollout_id}
    assert {r["rollout_id"] for r in shop} == {three["shop"].rollout_id, three["ended"].rollout_id}
    assert [r["rollout_id"] for r in both] == [three["shop"].rollout_id]


def test_list_prints_one_line_per_rollout(store: Store, three: dict[str, Rollout]):
    """GIVEN rollouts WHEN listed for people THEN one line each with status and target."""
    lines = _rollout("list", "--host", HOST).output.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith(three["ended"].rollout_id)
    assert "ROLLED_BACK" in lines[1] and f"{HOST} default" in lines[1]
    assert "canary failed" in lines[1]
    assert (
        _rollout("list", "--host", "none.example.com").output
        == "no rollouts for none.example.com\n"
    )
