"""``rollout report ID --out FILE.png``: a real PNG from the audit trail, a clear message
when matplotlib is missing, and the decisions it marks."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.cli.report import INSTALL_HINT, decision_marks, draw
from orchestrator.models import AuditEvent, Rollout, RolloutPlan, RolloutStatus
from orchestrator.store import Store
from orchestrator.workflow import transitions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def _trail(rollout: Rollout) -> list[AuditEvent]:
    """Two stages, looks of three verdict shapes (older, ratio + threshold, an error), promoted."""

    def event(seq: int, seconds: int, kind: str, **detail: Any) -> AuditEvent:
        return AuditEvent(
            rollout_id=rollout.rollout_id,
            seq=seq,
            at=T0 + timedelta(seconds=seconds),
            actor="workflow",
            kind=kind,
            reason=kind,
            detail=detail,
        )

    def look(seq: int, seconds: int, verdict: dict[str, Any], action: str) -> AuditEvent:
        stage = 0 if seconds < 300 else 1
        return event(
            seq,
            seconds,
            "analysis",
            stage=stage,
            weight=(10.0, 50.0)[stage],
            verdict=verdict,
            decision={"action": action, "stage": stage, "wait_seconds": 60, "reason": action},
        )

    def ratio(errors: int, total: int, outcome: str = "pass") -> dict[str, Any]:
        return {
            "metric": "error-rate",
            "outcome": outcome,
            "canary": {"errors": errors, "total": total},
            "baseline": {"errors": 5, "total": 1000},
            "canary_rate": errors / total,
            "baseline_rate": 0.005,
        }

    latency = {"metric": "latency", "outcome": "pass", "value": 180.0, "threshold": 300.0}
    return [
        event(1, 0, "created"),
        event(2, 5, "stage_applied", stage=0, weights={"canary": 1000, "stable": 9000}),
        look(3, 60, {"outcome": "inconclusive", "canary": {"errors": 1, "total": 90}}, "bake"),
        look(4, 120, {"outcome": "pass", "metrics": [ratio(4, 900), latency]}, "bake"),
        look(5, 240, {"outcome": "pass", "metrics": [ratio(6, 1400), latency]}, "apply"),
        event(6, 300, "stage_applied", stage=1, weights={"canary": 5000, "stable": 5000}),
        look(
            7,
            360,
            {"outcome": "error", "metrics": [{"metric": "latency", "outcome": "error"}]},
            "bake",
        ),
        event(8, 400, "control_requested", control={"action": "pause", "actor": "ana"}),
        event(9, 420, "paused", stage=1),
        event(10, 500, "resumed"),
        look(11, 560, {"outcome": "pass", "metrics": [ratio(30, 6000), latency]}, "promote"),
        event(12, 565, "promoted", weights={"canary": 10000}),
    ]


def _promoted(plan: RolloutPlan) -> Rollout:
    rollout = Rollout.start(plan, "tests", now=T0)
    return rollout.model_copy(
        update={"status": RolloutStatus.PROMOTED, "updated_at": T0 + timedelta(seconds=565)}
    )


def test_draw_writes_a_real_png(plan: RolloutPlan, tmp_path: Path):
    """GIVEN a whole audit trail WHEN drawn THEN a PNG of non-trivial size is written."""
    rollout = _promoted(plan)
    out = draw(rollout, _trail(rollout), tmp_path / "timeline.png")
    data = out.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 30_000


def test_draw_copes_with_a_rollout_without_looks(plan: RolloutPlan, tmp_path: Path):
    """GIVEN a rollout that never reached an analysis WHEN drawn THEN still a PNG."""
    rollout = _promoted(plan)
    out = draw(rollout, _trail(rollout)[:2], tmp_path / "empty.png")
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_decisions_marked_are_the_changes_of_course(plan: RolloutPlan):
    """GIVEN a trail WHEN marks are chosen THEN stage changes, controls and the end, not bakes."""
    rollout = _promoted(plan)
    labels = [mark.label for mark in decision_marks(rollout, _trail(rollout))]
    assert labels == [
        "10%",
        "→ apply",
        "50%",
        "pause requested",
        "paused",
        "resumed",
        "→ promote",
        "PROMOTED",
    ]


# -- the command, against moto in-process ---------------------------------------------------


def _stored(store: Store, plan: RolloutPlan) -> Rollout:
    rollout = Rollout.start(plan, "tests")
    store.create_rollout(
        rollout,
        AuditEvent(
            rollout_id=rollout.rollout_id,
            seq=1,
            at=rollout.created_at,
            actor="tests",
            kind="created",
        ),
    )
    return transitions.commit(
        store,
        rollout,
        "stage_applied",
        "stage 1",
        actor="workflow",
        detail={"stage": 0, "weights": {"canary": 1000, "stable": 9000}},
        status=RolloutStatus.RUNNING,
        stage_index=0,
    )


def test_report_command_writes_the_png(store: Store, plan: RolloutPlan, tmp_path: Path):
    """GIVEN a stored rollout WHEN reported THEN the PNG is written and its path printed."""
    rollout = _stored(store, plan)
    out = tmp_path / "r.png"
    result = CliRunner().invoke(cli, ["report", rollout.rollout_id, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    assert out.read_bytes()[:8] == PNG_SIGNATURE and out.stat().st_size > 10_000


def test_report_of_an_unknown_rollout_exits_4(store: Store, tmp_path: Path):
    """GIVEN no such rollout THEN exit 4 and no file."""
    result = CliRunner().invoke(cli, ["report", "r-nope", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 4
    assert not (tmp_path / "x.png").exists()


def test_report_without_matplotlib_says_how_to_install_it(
    store: Store, plan: RolloutPlan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """GIVEN matplotlib cannot be imported WHEN reporting THEN exit 1 naming the extra."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes every import of it fail
    rollout = _stored(store, plan)
    out = tmp_path / "r.png"

    result = CliRunner().invoke(cli, ["report", rollout.rollout_id, "--out", str(out)])

    assert result.exit_code == 1
    assert INSTALL_HINT in result.output and "matplotlib" in result.output
    assert not out.exists()
