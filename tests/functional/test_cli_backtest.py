"""``rollout backtest PLAN``: a plan replayed on exported CSV counts and on a past rollout's
recorded counts, every kind of bad input refused with its line and column, exit status 2."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from orchestrator.cli.main import cli
from orchestrator.models import AuditEvent, Rollout, RolloutPlan, RolloutStatus
from orchestrator.store import Store
from orchestrator.workflow import transitions

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
HEADER = "window_start,metric,variant,numerator,denominator"


@pytest.fixture
def backtest_doc(plan_doc: dict[str, Any]) -> dict[str, Any]:
    """Stages 10%/50%, bake 5m every 1m; one critical error-rate, tolerance 0.5x or 0.1%."""
    analysis = plan_doc["analysis"]
    del analysis["requests_metric"], analysis["errors_metric"]
    analysis["metrics"] = [
        {
            "name": "error-rate",
            "numerator": "Errors",
            "denominator": "Requests",
            "min_samples": 100,
            "critical": True,
            "tolerance": {"relative": 0.5, "absolute": 0.001},
        }
    ]
    return plan_doc


@pytest.fixture
def plan_file(tmp_path: Path, backtest_doc: dict[str, Any]) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(backtest_doc))
    return path


def _at(minute: int) -> str:
    return (T0 + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")


def _csv(tmp_path: Path, minutes: int, canary_errors: int, *, baseline: str = "stable") -> Path:
    """Per-minute counts: canary 2,000 requests, baseline 4,000 at a 1% error rate."""
    lines = [HEADER]
    for minute in range(minutes):
        lines.append(f"{_at(minute)},error-rate,canary,{canary_errors},2000")
        lines.append(f"{_at(minute)},error-rate,{baseline},40,4000")
    path = tmp_path / "counts.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _backtest(*args: str) -> Result:
    return CliRunner().invoke(cli, ["backtest", *args])


# -- CSV counts -------------------------------------------------------------------------------


def test_healthy_counts_promote(plan_file: Path, tmp_path: Path):
    """GIVEN a canary as good as stable WHEN backtested THEN promoted after both bakes."""
    result = _backtest(str(plan_file), "--counts", str(_csv(tmp_path, 20, 20)))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[-1] == (
        "plan.yaml would have: PROMOTED at stage 2 after 10 looks: stage 2 passed; promoting"
    )
    assert lines[0].split()[:4] == ["stage", "weight", "look", "window"]
    assert lines[1].split()[:8] == [
        "1",
        "10%",
        "1",
        "2026-03-01",
        "12:01:00",
        "20/2000",
        "40/4000",
        "-",  # without the stable fleet's history the noise is not known at look 1
    ]
    assert lines[4].split()[7] == "1.00"  # from the fourth interval on it is
    assert len(lines) == 1 + 10 + 1


def test_bad_counts_roll_back(plan_file: Path, tmp_path: Path):
    """GIVEN a canary at 5% errors against 1% WHEN backtested THEN rolled back at stage 1,
    at the first look where the noise is known (CSV counts carry no stable-fleet history,
    so the first three intervals only show it)."""
    result = _backtest(str(plan_file), "--counts", str(_csv(tmp_path, 20, 100)))
    assert result.exit_code == 0, result.output
    last = result.stdout.splitlines()[-1]
    assert last.startswith("plan.yaml would have: ROLLED_BACK at stage 1 after 4 looks: ")
    assert "error-rate higher than baseline" in last


def test_json_is_one_document_with_every_look(plan_file: Path, tmp_path: Path):
    """GIVEN healthy counts WHEN --json THEN outcome, stage, looks, reason and the steps."""
    result = _backtest(str(plan_file), "--counts", str(_csv(tmp_path, 20, 20)), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert {k: document[k] for k in ("outcome", "stage", "looks", "counts_end")} == {
        "outcome": "PROMOTED",
        "stage": 1,
        "looks": 10,
        "counts_end": None,
    }
    assert document["reason"] == "stage 2 passed; promoting"
    assert len(document["steps"]) == 10
    first = document["steps"][0]
    assert first["stage"] == 0 and first["weight"] == 10.0
    assert first["window"] == ["2026-03-01T12:00:00+00:00", "2026-03-01T12:01:00+00:00"]
    assert first["decision"]["action"] == "bake"
    (metric,) = first["verdict"]["metrics"]
    assert metric["canary"] == {"errors": 20, "total": 2000}
    assert metric["baseline"] == {"errors": 40, "total": 4000}
    assert "not known yet" in metric["dispersion_source"]
    later = document["steps"][3]["verdict"]["metrics"][0]
    assert later["dispersion"] == 1.0 and "intervals" in later["dispersion_source"]
    assert [step["decision"]["action"] for step in document["steps"]][-1] == "promote"


def test_counts_that_end_early_leave_the_plan_undecided(plan_file: Path, tmp_path: Path):
    """GIVEN three minutes of counts WHEN backtested THEN three looks, UNDECIDED, exit 0."""
    counts = str(_csv(tmp_path, 3, 20))
    result = _backtest(str(plan_file), "--counts", counts, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["outcome"] == "UNDECIDED"
    assert document["looks"] == 3 and len(document["steps"]) == 3
    assert document["counts_end"] == "2026-03-01T12:03:00+00:00"
    assert document["reason"] == (
        "counts end at 2026-03-01T12:03:00+00:00, before look 4 of stage 1: "
        "the plan had not decided after 3 looks"
    )
    human = _backtest(str(plan_file), "--counts", counts)
    assert human.exit_code == 0
    assert human.stdout.splitlines()[-1] == (
        "plan.yaml: counts end at 2026-03-01T12:03:00+00:00, before look 4 of stage 1: "
        "the plan had not decided after 3 looks"
    )


def test_literal_variants_extra_columns_and_rows_summed(plan_file: Path, tmp_path: Path):
    """GIVEN canary/baseline literals, an extra column and each minute split over two rows
    WHEN backtested THEN the rows of a window are summed and the extra column ignored."""
    lines = [HEADER + ",region"]
    for minute in range(20):
        for region in ("eu", "us"):
            lines.append(f"{_at(minute)},error-rate,canary,10,1000,{region}")
            lines.append(f"{_at(minute)},error-rate,baseline,20,2000,{region}")
    path = tmp_path / "split.csv"
    path.write_text("\n".join(lines) + "\n")
    result = _backtest(str(plan_file), "--counts", str(path), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["outcome"] == "PROMOTED"
    assert document["steps"][0]["verdict"]["metrics"][0]["canary"] == {
        "errors": 20,
        "total": 2000,
    }


GOOD = f"{_at(0)},error-rate,canary,20,2000"


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        (
            ["window_start,metric,variant,numerator", GOOD],
            "line 1 (header): missing column(s) denominator",
        ),
        ([HEADER, GOOD, f"{_at(0)},error-rate,stable,40,lots"], "line 3, column denominator"),
        ([HEADER, f"{_at(0)},error-rate,canary,-1,2000"], "line 2, column numerator"),
        ([HEADER, f"{_at(0)},error-rate,canary,30,20"], "line 2, column numerator"),
        ([HEADER, GOOD, f"{_at(0)},latency,canary,1,2"], "line 3, column metric"),
        ([HEADER, f"{_at(0)},error-rate,blue,1,2"], "line 2, column variant"),
        ([HEADER, f"{_at(1)},error-rate,canary,1,2", GOOD], "line 3, column window_start"),
        ([HEADER, "yesterday,error-rate,canary,1,2"], "line 2, column window_start"),
        ([HEADER, "2026-03-01T12:00:00,error-rate,canary,1,2"], "line 2, column window_start"),
        ([HEADER, GOOD], "column metric: no baseline rows for 'error-rate'"),
        ([HEADER], "no rows after the header"),
    ],
    ids=[
        "missing-column",
        "non-numeric",
        "negative",
        "numerator-over-denominator",
        "unknown-metric",
        "unknown-variant",
        "out-of-order",
        "unparseable-time",
        "time-without-offset",
        "one-arm-only",
        "no-rows",
    ],
)
def test_bad_counts_are_refused_naming_line_and_column(
    plan_file: Path, tmp_path: Path, rows: list[str], expected: str
):
    """GIVEN a CSV with one problem WHEN backtested THEN exit 2, the problem named on stderr
    and nothing on stdout."""
    path = tmp_path / "bad.csv"
    path.write_text("\n".join(rows) + "\n")
    result = _backtest(str(plan_file), "--counts", str(path))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"Error: {path}")
    assert expected in result.stderr


def test_an_invalid_plan_is_refused_naming_the_field(backtest_doc: dict[str, Any], tmp_path: Path):
    """GIVEN a plan whose stage weight is out of range WHEN backtested THEN exit 2 naming it."""
    backtest_doc["stages"][0]["weight"] = 150
    path = tmp_path / "bad-plan.yaml"
    path.write_text(yaml.safe_dump(backtest_doc))
    result = _backtest(str(path), "--counts", str(_csv(tmp_path, 20, 20)))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "stages.0.weight" in result.stderr


@pytest.mark.parametrize("extra", [[], ["--counts", "a.csv", "--rollout", "r-1"]])
def test_exactly_one_source_is_required(plan_file: Path, extra: list[str]):
    """GIVEN neither or both of --counts and --rollout THEN exit 2."""
    result = _backtest(str(plan_file), *extra)
    assert result.exit_code == 2
    assert "exactly one of --counts FILE.csv or --rollout ID" in result.stderr


def test_threshold_metrics_are_left_out_and_named(backtest_doc: dict[str, Any], tmp_path: Path):
    """GIVEN a plan with a latency threshold WHEN backtested THEN it is named on stderr and
    the ratio metric alone decides."""
    backtest_doc["analysis"]["metrics"].append(
        {"name": "latency", "kind": "threshold", "query": "Latency", "max": 300}
    )
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(backtest_doc))
    result = _backtest(str(path), "--counts", str(_csv(tmp_path, 20, 20)), "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["outcome"] == "PROMOTED"
    assert json.loads(result.stdout)["not_replayed"] == ["latency"]
    assert "threshold metric 'latency' has no counts; not replayed" in result.stderr


# -- a past rollout ---------------------------------------------------------------------------


# Per minute and stage, as served at 10% and 50%: canary requests (errors: canary_errors
# per 2,000) and baseline requests (1% errors).
CANARY, BASELINE = (2_000, 4_000), (18_000, 4_000)


def _recorded(store: Store, plan: RolloutPlan, looks: int, canary_errors: int) -> str:
    """A rollout whose trail holds ``looks`` looks per stage, each recording the stage's
    counts so far, split as the stage's weight serves them (CANARY, BASELINE)."""
    rollout = Rollout.start(plan, "tests", now=T0)
    created = AuditEvent(rollout_id=rollout.rollout_id, seq=1, at=T0, actor="tests", kind="created")
    store.create_rollout(rollout, created)
    rollout = transitions.commit(
        store,
        rollout,
        "stage_applied",
        "stage 1",
        actor="workflow",
        detail={"stage": 0},
        status=RolloutStatus.RUNNING,
        stage_index=0,
    )
    for stage in (0, 1):
        opened = T0 + timedelta(minutes=5 * stage)
        for look in range(1, looks + 1):
            metric = {
                "metric": "error-rate",
                "outcome": "inconclusive",
                "canary": {
                    "errors": canary_errors * CANARY[stage] // 2000 * look,
                    "total": CANARY[stage] * look,
                },
                "baseline": {
                    "errors": BASELINE[stage] // 100 * look,
                    "total": BASELINE[stage] * look,
                },
            }
            window = [opened.isoformat(), (opened + timedelta(minutes=look)).isoformat()]
            rollout = transitions.commit(
                store,
                rollout,
                "analysis",
                "baking",
                actor="workflow",
                detail={
                    "stage": stage,
                    "weight": (10.0, 50.0)[stage],
                    "window": window,
                    "verdict": {"outcome": "inconclusive", "metrics": [metric]},
                    "decision": {"action": "bake", "stage": stage},
                },
            )
    return rollout.rollout_id


@pytest.fixture
def recorded_plan(backtest_doc: dict[str, Any]) -> RolloutPlan:
    return RolloutPlan.model_validate(backtest_doc)


def test_a_past_rollout_is_replayed_from_its_increments(
    store: Store, recorded_plan: RolloutPlan, plan_file: Path
):
    """GIVEN a stored healthy rollout with five looks per stage WHEN backtested THEN each
    look gets what that look added, and the plan promotes after ten looks."""
    rollout_id = _recorded(store, recorded_plan, looks=5, canary_errors=20)
    result = _backtest(str(plan_file), "--rollout", rollout_id, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["outcome"], document["stage"], document["looks"]) == ("PROMOTED", 1, 10)
    second = document["steps"][1]["verdict"]["metrics"][0]
    assert second["canary"] == {"errors": 40, "total": 4000}
    assert second["baseline"] == {"errors": 360, "total": 36_000}
    assert document["steps"][0]["window"][0] == T0.isoformat()


def test_a_past_bad_rollout_rolls_back(store: Store, recorded_plan: RolloutPlan, plan_file: Path):
    """GIVEN a stored rollout with a canary at 5% errors WHEN backtested THEN rolled back."""
    rollout_id = _recorded(store, recorded_plan, looks=5, canary_errors=100)
    result = _backtest(str(plan_file), "--rollout", rollout_id)
    assert result.exit_code == 0, result.output
    assert "would have: ROLLED_BACK at stage 1 after 4 looks" in result.stdout


def test_a_short_past_rollout_leaves_the_plan_undecided(
    store: Store, recorded_plan: RolloutPlan, plan_file: Path
):
    """GIVEN two looks recorded per stage WHEN backtested THEN undecided after two looks."""
    rollout_id = _recorded(store, recorded_plan, looks=2, canary_errors=20)
    result = _backtest(str(plan_file), "--rollout", rollout_id, "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["outcome"], document["looks"]) == ("UNDECIDED", 2)
    assert "before look 3 of stage 1" in document["reason"]


def test_an_unknown_rollout_exits_4(store: Store, plan_file: Path):
    """GIVEN no such rollout WHEN backtested THEN exit 4."""
    result = _backtest(str(plan_file), "--rollout", "r-missing")
    assert result.exit_code == 4
    assert "r-missing" in result.stderr
    assert result.stdout == ""
