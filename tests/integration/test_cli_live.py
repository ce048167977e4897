"""The ``rollout`` CLI against the local stack: ``status --watch`` follows real rollouts to
their end (the screen checked frame by frame), then ``list``, ``report`` and ``routes``
read what they left behind."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from orchestrator.cli.main import cli
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.local.feeder import MetricsFeeder, constant
from orchestrator.local.stack import LocalStack
from orchestrator.models import RolloutPlan
from orchestrator.service import RolloutService

pytestmark = pytest.mark.integration

INTERVAL, BAKE = 1, 3
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running


def _plan(host: str) -> RolloutPlan:
    document = demo_plan(demo_route(host, 8001, 8002)).model_dump(mode="json")
    document["stages"] = [
        {"weight": weight, "bake": BAKE, "interval": INTERVAL} for weight in (10, 50, 100)
    ]
    return RolloutPlan.model_validate(document)


def _start(stack: LocalStack, host: str, canary_errors: float) -> tuple[str, MetricsFeeder]:
    """A route for ``host``, synthetic counts for it, and a rollout started on it."""
    stack.store().put_route(demo_route(host, 8001, 8002), expected_revision=None)
    feeder = MetricsFeeder(
        stack.store(), stack.client("cloudwatch"), host, constant(canary_errors), max_seconds=60
    ).start()
    service = RolloutService(stack.store(), stack.client("stepfunctions"), stack.state_machine_arn)
    return service.start(_plan(host), "tests").rollout_id, feeder


def _rollout(stack: LocalStack, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(
        cli, ["--endpoint-url", stack.endpoint_url, *args], env=env, catch_exceptions=False
    )


def _frames(output: str) -> list[str]:
    """Each redraw of the live view, without terminal control codes."""
    plain = _ANSI.sub("", output)
    return ["╭─ rollout" + frame for frame in plain.split("╭─ rollout")[1:]]


@pytest.fixture(scope="module")
def good(stack: LocalStack) -> dict[str, Any]:
    """A good canary watched on a (forced) terminal from start to promotion."""
    rollout_id, feeder = _start(stack, "watch-good.cli.edgeshift.test", 0.005)
    try:
        result = _rollout(
            stack,
            "status",
            rollout_id,
            "--watch",
            "--interval",
            "0.5",
            env={"TTY_COMPATIBLE": "1", "COLUMNS": "160"},
        )
    finally:
        feeder.stop()
    return {"id": rollout_id, "result": result, "frames": _frames(result.output)}


def test_watch_redraws_the_ladder_and_bake_while_the_rollout_runs(good):
    """GIVEN a running rollout WHEN watched THEN frames show the stage, bake and commands."""
    assert good["result"].exit_code == 0, good["result"].output
    running = [frame for frame in good["frames"] if "RUNNING" in frame]
    assert len(running) >= 3
    baking = [frame for frame in running if "▶  2/3" in frame and "left" in frame]
    assert baking, running[-1]
    screen = baking[-1]
    assert "canary 50% · stable 50%" in screen
    assert "stage 2 bake" in screen
    assert re.search(rf"rollout --endpoint-url \S+ pause {good['id']} --reason", screen)
    assert f"abort {good['id']} --reason" in screen


def test_watch_ends_with_the_promoted_screen_and_its_evidence(good):
    """GIVEN a good canary WHEN the watch ends THEN its last screen says PROMOTED, why."""
    final = good["frames"][-1]
    assert "PROMOTED" in final
    assert "v2 for everyone" in final
    assert re.search(r"✓\s+3/3\s+100%.*promoted", final)
    assert "error-rate (critical)" in final
    assert "✓ pass" in final
    assert re.search(r"last look \(stage 2 at 50%.*→ promote", final)
    assert "z " in final and "passes within" in final
    assert f"history {good['id']}" in final and f"report {good['id']} --out" in final


def test_watch_without_a_terminal_logs_events_and_ends_rolled_back(stack):
    """GIVEN a bad canary WHEN watched into a pipe THEN one line per event, then the end."""
    rollout_id, feeder = _start(stack, "watch-bad.cli.edgeshift.test", 0.08)
    try:
        result = _rollout(
            stack, "status", rollout_id, "--watch", "--interval", "0.5", env={"COLUMNS": "160"}
        )
    finally:
        feeder.stop()
    assert result.exit_code == 0, result.output
    assert "\x1b[" not in result.output
    assert re.search(r"stage_applied\s+stage 1: canary at 10", result.output)
    assert re.search(r"analysis\s+fail -> rollback", result.output)
    assert result.output.count("╭─ rollout") == 1
    final = result.output[result.output.index("╭─ rollout") :]
    assert "ROLLED_BACK" in final and "rolled back here" in final
    assert "✗ fail" in final
    assert "canary 0%" in final


def test_list_report_and_routes_read_what_the_rollouts_left(stack, good, tmp_path: Path):
    """GIVEN finished rollouts WHEN listed, reported and routes read THEN all agree."""
    listed = _rollout(stack, "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = {row["rollout_id"]: row for row in json.loads(listed.output)}
    assert rows[good["id"]]["status"] == "PROMOTED"
    active = _rollout(stack, "list", "--active", "--json")
    assert json.loads(active.output) == []

    out = tmp_path / "good.png"
    report = _rollout(stack, "report", good["id"], "--out", str(out))
    assert report.exit_code == 0, report.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 20_000

    routes = _rollout(stack, "routes", "get", "watch-good.cli.edgeshift.test", "--json")
    (rule,) = json.loads(routes.output)
    assert {v["name"]: (v["version"], v["weight"]) for v in rule["variants"]} == {
        "canary": ("v2", 0),
        "stable": ("v2", 10_000),
    }


def _plan_file(tmp_path: Path, host: str) -> Path:
    path = tmp_path / f"{host}.json"
    path.write_text(_plan(host).model_dump_json())
    return path


def _start_waiting(
    stack: LocalStack, tmp_path: Path, host: str, canary_errors: float, *args: str, **env: str
) -> Result:
    """`rollout start PLAN --wait ...` for a fresh route of ``host`` fed synthetic counts."""
    stack.store().put_route(demo_route(host, 8001, 8002), expected_revision=None)
    feeder = MetricsFeeder(
        stack.store(), stack.client("cloudwatch"), host, constant(canary_errors), max_seconds=60
    ).start()
    try:
        return _rollout(
            stack,
            "start",
            str(_plan_file(tmp_path, host)),
            "--wait",
            "--interval",
            "0.5",
            *args,
            env={"COLUMNS": "160", **env},
        )
    finally:
        feeder.stop()


def test_start_wait_shows_stage_weight_and_verdict_live_and_exits_0_when_promoted(
    stack, tmp_path: Path
):
    """GIVEN a good canary WHEN `start --wait` on a terminal THEN its id, then live frames
    with the stage, the weight and the last look's verdict, ending PROMOTED, exit 0."""
    result = _start_waiting(
        stack, tmp_path, "wait-good.cli.edgeshift.test", 0.005, TTY_COMPATIBLE="1"
    )

    assert result.exit_code == 0, result.output
    rollout_id = _ANSI.sub("", result.stdout).splitlines()[0]
    assert re.fullmatch(r"r-\d{8}T\d{6}Z-[0-9a-f]{8}", rollout_id), rollout_id
    frames = _frames(result.output)
    running = [frame for frame in frames if "RUNNING" in frame]
    assert any("canary 10% · stable 90%" in frame and "▶  1/3" in frame for frame in running)
    assert any(re.search(r"last look \(stage \d at \d+%.*\): ✓ pass", f) for f in running)
    assert "PROMOTED" in frames[-1] and "v2 for everyone" in frames[-1]


def test_start_wait_into_a_log_exits_1_when_rolled_back(stack, tmp_path: Path):
    """GIVEN a bad canary WHEN `start --wait` writes to a pipe THEN one line per event (the
    stage and weight applied, the verdict and decision), the final screen, exit 1."""
    result = _start_waiting(stack, tmp_path, "wait-bad.cli.edgeshift.test", 0.08)

    assert result.exit_code == 1, result.output
    assert "\x1b[" not in result.output
    assert re.search(r"stage_applied\s+stage 1: canary at 10", result.stdout)
    assert re.search(r"analysis\s+fail -> rollback", result.stdout)
    final = result.stdout[result.stdout.index("╭─ rollout") :]
    assert "ROLLED_BACK" in final


def test_start_wait_json_prints_one_summary_per_change_and_exits_1_when_rolled_back(
    stack, tmp_path: Path
):
    """GIVEN a bad canary WHEN `start --wait --json` THEN only JSON lines, each a summary
    as `status --json` prints, the weight seen at 10%, the last ROLLED_BACK; exit 1."""
    result = _start_waiting(stack, tmp_path, "wait-json.cli.edgeshift.test", 0.08, "--json")

    assert result.exit_code == 1, result.output
    summaries = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(s) == set(summaries[-1]) for s in summaries)
    assert {"rollout_id", "status", "stage", "canary_weight", "reason"} <= set(summaries[-1])
    assert 10 in {s["canary_weight"] for s in summaries}
    assert summaries[-1]["status"] == "ROLLED_BACK"
