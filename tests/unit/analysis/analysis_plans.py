"""Plans and rollouts for the analysis unit tests (a helper module, not a conftest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.models import Rollout, RolloutPlan, RolloutStatus
from orchestrator.models.analysis import Noise

NOW = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)


def plan_document(**analysis: Any) -> dict[str, Any]:
    return {
        "target": {"host": "shop.example.com"},
        "stable": {"name": "stable", "version": "v1"},
        "canary": {"name": "canary", "version": "v2"},
        "stages": [{"weight": w, "bake": "10m", "interval": "1m"} for w in (5, 25, 50)],
        "analysis": {
            "namespace": "Shop/Edge",
            "dimensions": {"Variant": "{variant}"},
            "metrics": [
                {
                    "name": "error-rate",
                    "numerator": "Errors",
                    "denominator": "Requests",
                    "min_samples": 100,
                    "critical": True,
                }
            ],
        }
        | analysis,
    }


def running(plan: RolloutPlan, minutes: float = 5) -> Rollout:
    """A rollout in its first stage, ``minutes`` into the bake, whose preflight found the
    stable fleet's last hour binomial (the fake answers a whole window as one period, so
    without that history the noise would not be known yet and nothing would be judged)."""
    rollout = Rollout.start(plan, actor="test", now=NOW - timedelta(minutes=minutes))
    return rollout.model_copy(
        update={
            "stage_index": 0,
            "stage_started_at": NOW - timedelta(minutes=minutes),
            "noise": binomial_history(plan),
        }
    )


def binomial_history(plan: RolloutPlan) -> dict[str, Noise]:
    return {
        metric.name: Noise(kappa=0.0, df=59, source="stable fleet, last 60 min")
        for metric in plan.analysis.judged_metrics()
    }


def replay_plan(*, critical: bool, **analysis: Any) -> dict[str, Any]:
    """Stages 5/25/50%, ten 1-minute looks each; errors may pass up to 1.5x the baseline's."""
    metric = {
        "name": "error-rate",
        "numerator": "Errors",
        "denominator": "Requests",
        "tolerance": {"relative": 0.5, "absolute": 0.001},
        "min_samples": 500,
        "critical": critical,
    }
    return {
        "target": {"host": "shop.example.com"},
        "stable": {"name": "stable", "version": "v1"},
        "canary": {"name": "canary", "version": "v2"},
        "stages": [{"weight": w, "bake": "10m", "interval": "1m"} for w in (5, 25, 50)],
        "analysis": {
            "namespace": "Shop",
            "dimensions": {"Variant": "{variant}"},
            "metrics": [metric],
        }
        | analysis,
    }


def in_first_stage(plan: RolloutPlan, started: datetime) -> Rollout:
    """A RUNNING rollout whose first stage (its weight applied) began at ``started``."""
    rollout = Rollout.start(plan, "t", now=started - timedelta(hours=1))
    return rollout.model_copy(
        update={"status": RolloutStatus.RUNNING, "stage_index": 0, "stage_started_at": started}
    )
