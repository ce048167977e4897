"""Shared fixtures for the analysis unit tests: a plan with a three-stage schedule."""

from __future__ import annotations

import pytest
from analysis_plans import plan_document

from orchestrator.models import RolloutPlan


@pytest.fixture
def plan() -> RolloutPlan:
    return RolloutPlan.model_validate(plan_document())
