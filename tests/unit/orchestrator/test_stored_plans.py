"""A rule added to plans after a rollout started must not make that rollout unreadable:
its tasks, status, steering and recover all decode it from the store."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from orchestrator.models import Rollout, RolloutPlan
from orchestrator.store import codec

PLAN = {
    "target": {"host": "shop.example.com"},
    "stable": {"name": "stable", "version": "v1"},
    "canary": {"name": "canary", "version": "v2"},
    "stages": [{"weight": 50, "bake": 60, "interval": 10}],
    "analysis": {
        "namespace": "Shop",
        "dimensions": {"Variant": "{variant}"},
        "requests_metric": "Requests",
        "errors_metric": "Errors",
    },
}


def _stored_without_the_variant_dimension() -> dict[str, dict[str, str]]:
    """A rollout as a release before the per-variant rule stored it: no Variant dimension."""
    document = json.loads(
        Rollout.start(RolloutPlan.model_validate(PLAN), "cli:ana").model_dump_json()
    )
    document["plan"]["analysis"]["dimensions"] = {}
    return {"doc": {"S": json.dumps(document)}}


def test_a_stored_rollout_from_before_the_per_variant_rule_is_read_back() -> None:
    """GIVEN a stored rollout whose plan reads its counts without {variant} WHEN the store
    decodes it THEN it is read as it was stored, not refused."""
    rollout = codec.rollout_from_item(_stored_without_the_variant_dimension())

    assert rollout.plan.analysis.dimensions == {}


def test_the_same_plan_submitted_now_is_refused() -> None:
    """GIVEN that plan submitted afresh WHEN validated THEN the per-variant rule refuses it."""
    document = {**PLAN, "analysis": {**PLAN["analysis"], "dimensions": {}}}
    with pytest.raises(
        ValidationError,
        match=r"errors_metric: .Errors.; analysis.requests_metric: .Requests. name neither",
    ):
        RolloutPlan.model_validate(document)
