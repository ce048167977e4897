"""The served-split check counting viewers where its counts are partial or recorded: one
variant's viewer count absent, and a past rollout's viewer split replayed by a backtest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator.analysis import Counts
from orchestrator.analysis.evaluate import contexts
from orchestrator.analysis.providers.base import (
    BaseProvider,
    IncompleteData,
    Measurement,
    ProviderError,
    measure,
)
from orchestrator.analysis.split import served_split
from orchestrator.models import AuditEvent, Rollout, RolloutPlan
from orchestrator.models.analysis import SPLIT_VIEWERS
from tests.unit.analysis.analysis_plans import in_first_stage

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
                "dimensions": {"Variant": "{variant}"},
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
    return in_first_stage(plan, T0)


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


# -- backtest --rollout -------------------------------------------------------------------------


def _trail(plan: RolloutPlan, looks: int, viewer_share: float) -> list[AuditEvent]:
    """A past rollout's analysis events: 10% of the requests on the canary each minute, and
    ``viewer_share`` of the 1,000 viewers a minute, recorded as the split check records
    them (the stage's viewers so far)."""
    events = []
    for look in range(1, looks + 1):
        viewers = 1_000 * look
        metric = {
            "metric": "error-rate",
            "outcome": "inconclusive",
            "canary": {"errors": 20 * look, "total": 2_000 * look},
            "baseline": {"errors": 180 * look, "total": 18_000 * look},
        }
        split = {
            "share": viewer_share,
            "weight": 0.1,
            "low": 0.075,
            "high": 0.125,
            "outcome": "mismatch",
            "reason": "recorded",
            "requests": viewers,
            "periods": look,
            "unit": "viewers",
        }
        window = [T0.isoformat(), (T0 + timedelta(minutes=look)).isoformat()]
        events.append(
            AuditEvent(
                rollout_id="r-1",
                seq=look,
                at=T0 + timedelta(minutes=look),
                actor="workflow",
                kind="analysis",
                detail={
                    "stage": 0,
                    "weight": 10.0,
                    "window": window,
                    "verdict": {"outcome": "inconclusive", "metrics": [metric], "split": split},
                    "decision": {"action": "bake", "stage": 0},
                },
            )
        )
    return events


def test_a_past_rollouts_viewer_split_is_replayed() -> None:
    """GIVEN a past rollout whose edge served the canary 25% of the viewers at a 10%
    weight (its requests at 10%) WHEN backtested from its trail THEN the replay's split
    check counts those viewers and flags the mismatch, as the rollout did, instead of
    reporting the split unknown at every look and promoting."""
    from orchestrator.cli.backtest import RecordedCounts, run

    plan = _plan()
    recorded = RecordedCounts(_trail(plan, looks=5, viewer_share=0.25), plan)
    result = run(plan, recorded, T0)
    splits = [step["verdict"].get("split", {}) for step in result.steps]
    assert any(s.get("outcome") == "mismatch" for s in splits), splits
    assert result.outcome == "PAUSED", result.reason


def test_a_past_rollouts_viewers_served_at_the_weight_are_ok() -> None:
    """GIVEN the same trail with 10% of the viewers on the canary WHEN backtested THEN the
    replayed split is ok once it has the periods, and nothing pauses."""
    from orchestrator.cli.backtest import RecordedCounts, run

    plan = _plan()
    result = run(plan, RecordedCounts(_trail(plan, looks=5, viewer_share=0.1), plan), T0)
    last = result.steps[-1]["verdict"]["split"]
    assert (last["outcome"], last["unit"], last["requests"]) == ("ok", "viewers", 5_000)
    assert result.outcome == "UNDECIDED"


# -- the viewer count beside the metrics ------------------------------------------------------


class _ViewersFail(BaseProvider):
    """Counts for the metrics; the viewer count's metric fails the way it is told to (as
    CloudWatch reports PartialData, or Datadog a rate limit or a rejected query, for the
    whole batch a query was sent in)."""

    def __init__(self, failure: ProviderError) -> None:
        self.failure = failure

    def fetch_series(
        self, queries: Any, start: Any, end: Any, period: Any, *, deadline: Any = None
    ) -> Any:
        if any(q.text == "Viewers" for q in queries):
            raise self.failure
        table = {"Requests": {"canary": 1_000.0, "stable": 9_000.0}, "Errors": {}}
        return {
            q.id: {
                start + timedelta(minutes=m): table[q.text].get(q.context.variant, 0.0) / 6
                for m in range(6)
            }
            for q in queries
        }


@pytest.mark.parametrize(
    "failure",
    [
        IncompleteData("CloudWatch data not complete (Viewers: PartialData)"),
        ProviderError("Datadog v2 timeseries: 400 bad query", transient=False),
    ],
)
def test_a_failing_viewer_count_leaves_the_metrics_judged(failure: ProviderError) -> None:
    """GIVEN the metrics' counts answered and only the viewer count failing WHEN a look
    measures them THEN the metrics are measured as without split.viewers and only the split
    is unknown: a count the split check alone reads never makes a look inconclusive or an
    error (which the stage's limits turn into a rollback)."""
    plan = _plan()
    found = measure(
        _ViewersFail(failure),
        plan.analysis,
        contexts(_rollout(plan)),
        T0,
        T0 + timedelta(minutes=6),
    )
    assert found["error-rate", "canary"].ok and found["error-rate", "stable"].ok
    assert found["error-rate", "canary"].counts == Counts(0, 1_000)
    assert not found[SPLIT_VIEWERS, "canary"].ok
    check = served_split(_rollout(plan), found)
    assert check is not None and check.outcome == "unknown"
