"""Shared fixtures for the orchestrator unit tests: a valid plan document to break."""

from __future__ import annotations

from typing import Any

import pytest


def _valid_plan_doc() -> dict[str, Any]:
    return {
        "target": {"host": "shop.example.com", "path_rule": "default"},
        "stable": {"name": "stable", "version": "v1"},
        "canary": {"name": "canary", "version": "v2"},
        "stages": [
            {"weight": 5, "bake": "10m", "interval": "1m"},
            {"weight": 25, "bake": "10m", "interval": "1m"},
            {"weight": 100, "bake": "1m", "interval": "1m"},
        ],
        "analysis": {
            "provider": "cloudwatch",
            "namespace": "Shop/Edge",
            "requests_metric": "Requests",
            "errors_metric": "Errors",
            "dimensions": {"Host": "{host}", "Variant": "{variant}"},
        },
        "policies": {"on_inconclusive": "extend"},
    }


@pytest.fixture
def plan_doc() -> dict[str, Any]:
    """A fresh, valid plan as plain data; each test mutates its own copy."""
    return _valid_plan_doc()
