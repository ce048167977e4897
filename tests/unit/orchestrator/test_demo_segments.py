"""Tests for the segment-regression demo scenario's plan and wiring (no stack needed)."""

from __future__ import annotations

from click.testing import CliRunner

from orchestrator.local.demo import SCENARIOS, demo_plan, demo_route
from orchestrator.local.traffic import population
from orchestrator.models import RolloutStatus


def test_segment_regression_breaks_ie_11_only_and_expects_a_rollback() -> None:
    """GIVEN the scenario WHEN read THEN its canary fails every IE 11 request and nothing
    else, and it must end ROLLED_BACK."""
    scenario = SCENARIOS["segment-regression"]

    assert scenario.expected is RolloutStatus.ROLLED_BACK
    assert dict(scenario.canary_segment_errors) == {"browser=ie-11": 1.0}
    assert scenario.canary_error_rate == scenario.stable_error_rate
    assert scenario.segments == ("browser",)


def test_ie_11_is_about_one_percent_of_the_scenario_viewers() -> None:
    """GIVEN the scenario's population WHEN counted THEN IE 11 is about 1% of viewers."""
    from edge import segments

    viewers = population(SCENARIOS["segment-regression"].users)
    share = sum(segments.classify(v.user_agent)[0] == "ie-11" for v in viewers) / len(viewers)

    assert 0.008 < share < 0.012


def test_demo_plan_declares_the_scenario_segments() -> None:
    """GIVEN segments WHEN the demo plan is built THEN analysis.segments cuts by them, and
    without them the plan has none."""
    route = demo_route("h.demo.edgeshift.test", 18001, 18002)
    scenario = SCENARIOS["segment-regression"]

    plan = demo_plan(route, stages=scenario.stages, segments=scenario.segments)

    assert [s.by for s in plan.analysis.segments] == ["browser"]
    assert [stage.weight for stage in plan.stages] == [10, 50, 100]
    assert demo_plan(route).analysis.segments == []


def test_cli_offers_the_scenario() -> None:
    """GIVEN `rollout demo --help` WHEN read THEN segment-regression is a choice."""
    from orchestrator.cli.local import demo

    result = CliRunner().invoke(demo, ["--help"])

    assert "segment-regression" in result.output
