"""Plans and rollouts for the analysis unit tests (a helper module, not a conftest)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.models import Rollout, RolloutPlan

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
    """A rollout in its first stage, ``minutes`` into the bake."""
    rollout = Rollout.start(plan, actor="test", now=NOW - timedelta(minutes=minutes))
    return rollout.model_copy(
        update={"stage_index": 0, "stage_started_at": NOW - timedelta(minutes=minutes)}
    )
