"""Functional tests for ``rollout start`` against moto's in-process AWS.

Invalid input must exit 2 with the field path and write nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from click.testing import CliRunner
from local_aws import seed_v1_route, stand_in_state_machine
from moto import mock_aws

from orchestrator.cli.main import cli
from orchestrator.store import Store, TableNames, create_tables

HOST = "shop.example.com"


@pytest.fixture
def aws() -> Iterator[dict[str, Any]]:
    """moto in-process with both tables and a (never executed) state machine."""
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, TableNames())
        machine = stand_in_state_machine()
        yield {"store": Store(dynamodb, TableNames()), "machine": machine}


def _items(store: Store) -> list[dict[str, Any]]:
    """Rollout-side items (rollouts, locks, their events); route audit records excluded."""
    items: list[dict[str, Any]] = store.client.scan(TableName=store.tables.rollouts)["Items"]
    return [item for item in items if not item["pk"]["S"].startswith("ROUTE#")]


def _seed_route(store: Store) -> None:
    seed_v1_route(store, HOST)


def _write(tmp_path: Path, doc: dict[str, Any] | str, name: str = "plan.json") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def _start(path: Path, state_machine_arn: str | None = None) -> Any:
    group = ["--state-machine-arn", state_machine_arn] if state_machine_arn else []
    return CliRunner().invoke(cli, [*group, "start", str(path), "--actor", "tester"])


def test_invalid_plan_exits_2_naming_the_field_and_writes_nothing(
    aws: dict[str, Any], tmp_path: Path, plan_doc: dict[str, Any]
) -> None:
    """GIVEN a plan whose second stage is 250% WHEN started THEN exit 2, path shown, no writes."""
    doc = plan_doc
    doc["stages"][1]["weight"] = 250
    path = _write(tmp_path, doc)

    result = _start(path, aws["machine"])

    assert result.exit_code == 2, result.output
    assert "stages.1.weight" in result.stderr
    assert str(path) in result.stderr
    assert result.stdout == ""
    assert _items(aws["store"]) == []


def test_yaml_syntax_error_exits_2_with_its_line(aws: dict[str, Any], tmp_path: Path) -> None:
    """GIVEN a YAML file with an unclosed list WHEN started THEN exit 2 naming the line."""
    path = _write(tmp_path, "target:\n  host: [shop.example.com\n", "plan.yaml")

    result = _start(path)

    assert result.exit_code == 2
    assert "not valid YAML or JSON at line" in result.stderr
    assert _items(aws["store"]) == []


def test_missing_plan_file_exits_2(aws: dict[str, Any], tmp_path: Path) -> None:
    """GIVEN a plan path that does not exist WHEN started THEN exit 2, 'cannot be read'."""
    missing = tmp_path / "nowhere.yaml"

    result = _start(missing)

    assert result.exit_code == 2
    assert "cannot be read" in result.stderr
    assert str(missing) in result.stderr
    assert _items(aws["store"]) == []


def test_plan_without_a_route_is_rejected_with_exit_2(
    aws: dict[str, Any], tmp_path: Path, plan_doc: dict[str, Any]
) -> None:
    """GIVEN a valid plan for a host with no route WHEN started THEN exit 2 at 'target'."""
    result = _start(_write(tmp_path, plan_doc), aws["machine"])

    assert result.exit_code == 2
    assert "plan rejected: target: no route for shop.example.com default" in result.stderr
    assert _items(aws["store"]) == []


def test_plan_naming_the_wrong_stable_version_is_rejected(
    aws: dict[str, Any], tmp_path: Path, plan_doc: dict[str, Any]
) -> None:
    """GIVEN the route serving v1 WHEN a plan says stable is v0 THEN exit 2 at stable.version."""
    _seed_route(aws["store"])
    doc = plan_doc
    doc["stable"]["version"] = "v0"

    result = _start(_write(tmp_path, doc), aws["machine"])

    assert result.exit_code == 2
    assert "stable.version" in result.stderr
    assert _items(aws["store"]) == []


def test_valid_plan_starts_and_a_second_start_conflicts(
    aws: dict[str, Any], tmp_path: Path, plan_doc: dict[str, Any]
) -> None:
    """GIVEN a route and a valid plan WHEN started twice THEN 0 with an id, then 3 naming it."""
    store: Store = aws["store"]
    _seed_route(store)
    path = _write(tmp_path, plan_doc)

    first = _start(path)
    second = _start(path)

    assert first.exit_code == 0, first.output
    rollout_id = first.stdout.strip()
    assert store.get_rollout(rollout_id).created_by == "tester"
    assert store.lock_holder(HOST, "default") == rollout_id
    assert second.exit_code == 3
    assert f"locked by rollout {rollout_id}" in second.stderr
    assert len([i for i in _items(store) if i["kind"]["S"] == "rollout"]) == 1


def test_state_machine_that_cannot_start_releases_the_lock(
    aws: dict[str, Any], tmp_path: Path, plan_doc: dict[str, Any]
) -> None:
    """GIVEN a state machine ARN that does not exist WHEN started THEN the rollout is FAILED."""
    store: Store = aws["store"]
    _seed_route(store)
    gone = aws["machine"].replace("edgeshift-rollout", "deleted-machine")

    result = _start(_write(tmp_path, plan_doc), gone)

    assert result.exit_code == 1
    assert store.lock_holder(HOST, "default") is None
    [rollout] = [i for i in _items(store) if i["kind"]["S"] == "rollout"]
    assert rollout["status"]["S"] == "FAILED"


def test_malformed_dimension_template_exits_2(
    aws: dict[str, Any], tmp_path: Path, plan_doc: dict[str, Any]
) -> None:
    """GIVEN a dimension template '{variant.x}' WHEN started THEN exit 2 at analysis.dimensions."""
    doc = plan_doc
    doc["analysis"]["dimensions"] = {"Variant": "{variant.x}"}

    result = _start(_write(tmp_path, doc))

    assert result.exit_code == 2
    assert "analysis.dimensions" in result.stderr


@pytest.mark.parametrize("verb", ["pause", "resume", "abort", "promote", "recover"])
def test_every_steering_command_refuses_without_a_reason(aws: dict[str, Any], verb: str) -> None:
    """GIVEN any steering command without --reason WHEN run THEN exit 2 naming the option
    and the rule, before anything is read (an unknown rollout would exit 4) or written."""
    result = CliRunner().invoke(cli, [verb, "r-20250101T000000Z-00000000"])

    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"Error: --reason: required to {verb} a rollout"), result.stderr
    assert _items(aws["store"]) == []


def test_resume_publishes_its_event_through_a_client_made_like_the_clis_others(
    aws: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN `rollout --region eu-west-1 resume` WHEN the service publishes its lifecycle
    event THEN through an EventBridge client of the CLI's region and endpoint, not the
    process default (which would miss the local stack, or need a region of its own)."""
    from orchestrator import service as service_module

    seen: dict[str, Any] = {}

    def resume(self: Any, rollout_id: str, actor: str, reason: str) -> Any:
        seen["client"] = self.eventbridge
        raise service_module.ControlRefused("not paused")

    monkeypatch.setattr(service_module.RolloutService, "resume", resume)

    result = CliRunner().invoke(
        cli, ["--region", "eu-west-1", "resume", "r-1", "--reason", "dashboards normal"]
    )

    assert result.exit_code == 3
    assert seen["client"].meta.service_model.service_name == "events"
    assert seen["client"].meta.region_name == "eu-west-1"


def test_plain_status_shows_a_pending_request(
    aws: dict[str, Any], tmp_path: Path, plan_doc: dict[str, Any]
) -> None:
    """GIVEN a started rollout and a pause asked for WHEN `rollout status` (plain) THEN the
    pending request is shown with who asked and why, as the README says."""
    from orchestrator.models import RolloutStatus
    from orchestrator.workflow import transitions

    store: Store = aws["store"]
    _seed_route(store)
    rollout_id = _start(_write(tmp_path, plan_doc)).stdout.strip()
    transitions.commit(
        store,
        store.get_rollout(rollout_id),
        "started",
        "execution began",
        actor="test",
        status=RolloutStatus.RUNNING,
    )
    pause = CliRunner().invoke(
        cli, ["pause", rollout_id, "--reason", "p99 looks odd", "--actor", "ana"]
    )

    status = CliRunner().invoke(cli, ["status", rollout_id])

    assert pause.exit_code == 0, pause.output
    assert status.exit_code == 0, status.output
    assert "pending: pause by ana: p99 looks odd (carried out at the next decision point)" in (
        status.stdout
    )
