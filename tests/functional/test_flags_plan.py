"""A rollout cannot change the weights of a rule a flag routes: its plan is refused, naming
the flag, before anything is written."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from orchestrator.models import RolloutPlan, RouteRule
from orchestrator.service import PlanRejected, RolloutService
from orchestrator.store import Store


def _flag_routed(route: RouteRule) -> RouteRule:
    assignment = {
        "provider": "launchdarkly",
        "flag": "new-checkout",
        "context": {"key_from": "cookie:ld_uid"},
        "variations": {"true": "canary", "false": "stable"},
        "fallback": "stable",
    }
    return RouteRule.model_validate({**route.model_dump(), "assignment": assignment})


def _written(store: Store) -> list[dict[str, Any]]:
    items = store.client.scan(TableName=store.tables.rollouts)["Items"]
    return [i for i in items if not i["pk"]["S"].startswith("ROUTE#")]


def test_a_plan_on_a_flag_routed_rule_is_refused_naming_the_flag(
    store: Store, route: RouteRule, plan: RolloutPlan
) -> None:
    """GIVEN the plan's target rule routed by flag new-checkout WHEN the rollout starts
    THEN PlanRejected at 'target' naming the flag, and no rollout or lock is written."""
    store.put_route(_flag_routed(route), expected_revision=None)
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    service = RolloutService(store, sfn, "arn:aws:states:us-east-1:123456789012:stateMachine:x")

    with pytest.raises(PlanRejected) as refused:
        service.start(plan, "test")

    assert "routed by flag 'new-checkout'" in str(refused.value)
    assert "target" in str(refused.value)
    assert _written(store) == []


def test_the_same_plan_on_the_weighted_rule_is_not_refused_for_it(
    store: Store, route: RouteRule, plan: RolloutPlan
) -> None:
    """GIVEN the same rule without assignment WHEN the route is checked THEN no refusal
    mentions a flag (the refusal above is the assignment's doing)."""
    store.put_route(route, expected_revision=None)
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    service = RolloutService(store, sfn, "arn:aws:states:us-east-1:123456789012:stateMachine:x")

    service._check_route(plan)  # raises PlanRejected on any mismatch
