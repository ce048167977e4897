"""Request examples in the API document: what a caller can send as is. The plan is
examples/plan.yaml (the README's local walkthrough) with durations in seconds, as the
document types them; a unit test holds the two equal."""

from __future__ import annotations

from typing import Any

PLAN: dict[str, Any] = {
    "target": {"host": "demo.edgeshift.test", "path_rule": "default"},
    "stable": {"name": "stable", "version": "v1"},
    "canary": {"name": "canary", "version": "v2"},
    "stages": [
        {"weight": 10, "bake": 20, "interval": 5},
        {"weight": 50, "bake": 20, "interval": 5},
        {"weight": 100, "bake": 5, "interval": 5},
    ],
    "analysis": {
        "provider": "cloudwatch",
        "namespace": "EdgeShift/Demo",
        "dimensions": {"Host": "{host}", "Variant": "{variant}"},
        "period": 1,
        "alpha": 0.0075,
        "metrics": [
            {
                "name": "error-rate",
                "numerator": "Errors",
                "denominator": "Requests",
                "direction": "lower",
                "tolerance": {"absolute": 0.015},
                "min_samples": 200,
                "limit": 0.05,
                "critical": True,
            }
        ],
        "limits": {"tolerated_failures": 0, "max_error_streak": 3},
    },
    "policies": {"on_inconclusive": "extend"},
}
PLAN_EXAMPLES: dict[str, Any] = {
    "walkthrough": {"summary": "examples/plan.yaml: v1 -> v2 of the local demo", "value": PLAN}
}
REASON_EXAMPLES: dict[str, Any] = {
    "oncall": {"summary": "why, for the audit trail", "value": {"reason": "p99 latency regressed"}}
}
