"""The served-split check counting viewers where its counts are partial: one variant's
viewer count absent."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.analysis import Counts
from orchestrator.analysis.providers.base import Measurement
from orchestrator.analysis.split import served_split
from orchestrator.models import Rollout, RolloutPlan, RolloutStatus
from orchestrator.models.analysis import SPLIT_VIEWERS

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _plan(**split: Any) -> RolloutPlan:
    return RolloutPlan.model_validate(
        {
            "target": {"host": "shop.example.com"},
            "stable": {"name": "stable", "version": "v1"},
            "canary": {"name": "canary", "version": "v2"},
            "stages": [{"weight": w, "bake": 300, "interval": 60} for w in (10, 50)],
            "analysis": {
                "namespace": "N",
                "metrics": [
                    {
                        "name": "error-rate",
                        "numerator": "Errors",
                        "denominator": "Requests",
                        "min_samples": 100,
                        "tolerance": {"relative": 0.5, "absolute": 0.001},
                    }
                ],
                "split": {"viewers": "Viewers"} | split,
            },
        }
    )


def _rollout(plan: RolloutPlan) -> Rollout:
    rollout = Rollout.start(plan, "t", now=T0 - timedelta(hours=1))
    return rollout.model_copy(
        update={
            "status": RolloutStatus.RUNNING,
            "stage_index": 0,
            "stage_started_at": T0,
            "canary_weight_bp": 1_000,
        }
    )


def _counted(per_period: int) -> Measurement:
    series = {T0 + timedelta(minutes=m): Counts(0, per_period) for m in range(6)}
    return Measurement(counts=Counts(0, per_period * 6), series=series)


def test_one_variants_viewers_absent_leave_the_split_unknown_not_a_mismatch() -> None:
    """GIVEN the canary's requests counted at 10% but its viewer count reporting no data
    (a build that does not publish it yet) WHEN checked THEN unknown, naming the query:
    no data is not zero viewers, so it is never a mismatch."""
    plan = _plan()
    measured = {
        ("error-rate", "canary"): _counted(100),
        ("error-rate", "stable"): _counted(900),
        (SPLIT_VIEWERS, "canary"): Measurement(missing="no data for 'Viewers'"),
        (SPLIT_VIEWERS, "stable"): _counted(400),
    }
    check = served_split(_rollout(plan), measured)
    assert check is not None
    assert check.outcome == "unknown", check.reason
    assert "Viewers" in check.reason and "no data" in check.reason


def test_no_viewer_data_on_either_side_is_unknown() -> None:
    """GIVEN neither variant's viewers reported WHEN checked THEN unknown."""
    plan = _plan()
    measured = {
        (SPLIT_VIEWERS, "canary"): Measurement(missing="no data for 'Viewers'"),
        (SPLIT_VIEWERS, "stable"): Measurement(missing="no data for 'Viewers'"),
    }
    check = served_split(_rollout(plan), measured)
    assert check is not None and check.outcome == "unknown"
