"""Tests for orchestrator.models: routes, plans and durations reject bad input by field path."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from orchestrator.models import (
    FULL_WEIGHT,
    RolloutPlan,
    RouteRule,
    format_duration,
    parse_duration,
)
from orchestrator.plans import InvalidPlan, parse_plan


def _route(**overrides: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "host": "shop.example.com",
        "path_rule": "default",
        "variants": [
            {"name": "canary", "version": "v2", "weight": 1_000},
            {"name": "stable", "version": "v1", "weight": 9_000},
        ],
    }
    doc.update(overrides)
    return doc


def _locations(error: ValidationError) -> list[tuple[int | str, ...]]:
    return [tuple(e["loc"]) for e in error.errors()]


def _problems(doc: dict[str, Any]) -> dict[str, str]:
    """Parse ``doc`` as a plan file, expecting it to be refused; field path -> rule."""
    with pytest.raises(InvalidPlan) as refused:
        parse_plan(json.dumps(doc), "plan.json")
    return dict(refused.value.problems)


# -- RouteRule ---------------------------------------------------------------------------


def test_route_with_weights_covering_everyone_is_accepted() -> None:
    """GIVEN two variants summing to 10000 bp WHEN validated THEN the rule keeps their weights."""
    rule = RouteRule.model_validate(_route())

    assert rule.weights() == {"canary": 1_000, "stable": 9_000}
    assert sum(rule.weights().values()) == FULL_WEIGHT


@pytest.mark.parametrize(("canary", "stable"), [(1_000, 8_999), (1_000, 9_001), (0, 0)])
def test_route_weights_must_sum_to_full_weight(canary: int, stable: int) -> None:
    """GIVEN variant weights not summing to 10000 WHEN validated THEN the route is refused."""
    doc = _route(
        variants=[
            {"name": "canary", "version": "v2", "weight": canary},
            {"name": "stable", "version": "v1", "weight": stable},
        ]
    )

    with pytest.raises(ValidationError, match="sum to 10000"):
        RouteRule.model_validate(doc)


def test_route_variant_names_must_be_unique() -> None:
    """GIVEN two variants with the same name WHEN validated THEN the route is refused."""
    doc = _route(
        variants=[
            {"name": "stable", "version": "v2", "weight": 5_000},
            {"name": "stable", "version": "v1", "weight": 5_000},
        ]
    )

    with pytest.raises(ValidationError, match="unique"):
        RouteRule.model_validate(doc)


@pytest.mark.parametrize(
    "host", ["Shop.example.com", "shop..example.com", "-shop.example.com", "shop_1.example.com", ""]
)
def test_route_host_must_be_a_lowercase_dns_name(host: str) -> None:
    """GIVEN a malformed host WHEN validated THEN the error is located at ``host``."""
    with pytest.raises(ValidationError) as refused:
        RouteRule.model_validate(_route(host=host))

    assert _locations(refused.value) == [("host",)]


@pytest.mark.parametrize("path_rule", ["default", "exact:/index.html", "prefix:/app/"])
def test_route_accepts_the_three_path_rule_forms(path_rule: str) -> None:
    """GIVEN default, exact: and prefix: rules WHEN validated THEN each is kept as written."""
    assert RouteRule.model_validate(_route(path_rule=path_rule)).path_rule == path_rule


@pytest.mark.parametrize("path_rule", ["/app", "prefix:app", "exact:", "regex:/a.*", "Default"])
def test_route_path_rule_must_be_a_known_form(path_rule: str) -> None:
    """GIVEN a path rule outside the three forms WHEN validated THEN it is refused at path_rule."""
    with pytest.raises(ValidationError) as refused:
        RouteRule.model_validate(_route(path_rule=path_rule))

    assert _locations(refused.value) == [("path_rule",)]


def test_route_rejects_unknown_fields_at_any_depth() -> None:
    """GIVEN typos at the top level and inside a variant WHEN validated THEN both are named."""
    doc = _route(wieghts={"canary": 1})
    doc["variants"][0]["colour"] = "blue"

    with pytest.raises(ValidationError) as refused:
        RouteRule.model_validate(doc)

    assert set(_locations(refused.value)) == {("wieghts",), ("variants", 0, "colour")}


# -- RolloutPlan -------------------------------------------------------------------------


def test_valid_plan_parses_with_durations_in_seconds(plan_doc: dict[str, Any]) -> None:
    """GIVEN a valid plan with '10m' bakes WHEN parsed THEN durations are seconds, weights bp."""
    plan = parse_plan(json.dumps(plan_doc))

    assert [(s.bake, s.interval) for s in plan.stages] == [(600, 60), (600, 60), (60, 60)]
    assert [s.weight_bp for s in plan.stages] == [500, 2_500, 10_000]
    assert len(plan.baked_stages()) == 2


@pytest.mark.parametrize("weights", [[25, 5, 100], [5, 5, 100], [5, 50, 50]])
def test_stage_weights_must_strictly_increase(
    plan_doc: dict[str, Any], weights: list[float]
) -> None:
    """GIVEN stage weights that fall or repeat WHEN parsed THEN the plan is refused."""
    for stage, weight in zip(plan_doc["stages"], weights, strict=True):
        stage["weight"] = weight

    problems = _problems(plan_doc)

    assert any("strictly increase" in rule for rule in problems.values())


def test_first_stage_of_100_percent_is_refused(plan_doc: dict[str, Any]) -> None:
    """GIVEN a single 100% stage WHEN parsed THEN the plan is refused: no baseline to compare."""
    plan_doc["stages"] = [{"weight": 100, "bake": "5m", "interval": "1m"}]

    problems = _problems(plan_doc)

    assert any("first stage must be below 100%" in rule for rule in problems.values())


@pytest.mark.parametrize("weights", [[25, 5, 100], [100]], ids=["falling", "first-stage-100"])
def test_stage_order_errors_name_the_stages_field(
    plan_doc: dict[str, Any], weights: list[float]
) -> None:
    """GIVEN stage weights that break the climb WHEN parsed THEN the problem names ``stages``."""
    plan_doc["stages"] = [{"weight": w, "bake": "5m", "interval": "1m"} for w in weights]

    problems = _problems(plan_doc)

    assert any(path == "stages" or path.startswith("stages.") for path in problems)


@pytest.mark.parametrize(("index", "weight"), [(0, 0), (0, -5), (1, 100.5), (1, "ten")])
def test_stage_weight_must_be_within_0_exclusive_and_100(
    plan_doc: dict[str, Any], index: int, weight: Any
) -> None:
    """GIVEN a stage weight outside (0, 100] WHEN parsed THEN the problem is at its weight."""
    plan_doc["stages"][index]["weight"] = weight

    assert f"stages.{index}.weight" in _problems(plan_doc)


@pytest.mark.parametrize("weight", [0.001, 99.999])
def test_stage_weight_that_rounds_to_no_canary_or_no_baseline_is_refused(
    plan_doc: dict[str, Any], weight: float
) -> None:
    """GIVEN a weight that rounds to 0 or 10000 bp WHEN parsed THEN the plan is refused."""
    plan_doc["stages"] = [{"weight": weight, "bake": "5m", "interval": "1m"}]

    assert "stages.0.weight" in _problems(plan_doc)


def test_empty_stages_are_refused_at_stages(plan_doc: dict[str, Any]) -> None:
    """GIVEN no stages WHEN parsed THEN the problem is at ``stages``."""
    plan_doc["stages"] = []

    assert "stages" in _problems(plan_doc)


def test_more_than_twenty_stages_are_refused_at_stages(plan_doc: dict[str, Any]) -> None:
    """GIVEN 21 climbing stages WHEN parsed THEN the problem is at ``stages``."""
    plan_doc["stages"] = [{"weight": w, "bake": 60, "interval": 60} for w in range(1, 22)]

    assert "stages" in _problems(plan_doc)


def test_bake_shorter_than_interval_is_refused_at_the_stage(plan_doc: dict[str, Any]) -> None:
    """GIVEN stage 2 baking 30s with a 1m interval WHEN parsed THEN ``stages.1`` is named."""
    plan_doc["stages"][1]["bake"] = "30s"

    problems = _problems(plan_doc)

    assert list(problems) == ["stages.1"]
    assert "bake (30s) must be at least one interval (60s)" in problems["stages.1"]


def test_bake_equal_to_interval_is_accepted(plan_doc: dict[str, Any]) -> None:
    """GIVEN a bake of exactly one interval WHEN parsed THEN the stage is kept."""
    plan_doc["stages"][0].update(bake="90s", interval=90)

    assert parse_plan(json.dumps(plan_doc)).stages[0].bake == 90


@pytest.mark.parametrize("template", ["{region}", "{0}", "{variant", "{variant[5]}", "{}"])
def test_unknown_dimension_placeholder_is_refused(plan_doc: dict[str, Any], template: str) -> None:
    """GIVEN a dimension template the query cannot fill WHEN parsed THEN analysis.dimensions."""
    plan_doc["analysis"]["dimensions"]["Region"] = template

    problems = _problems(plan_doc)

    assert list(problems) == ["analysis.dimensions"]
    assert "'Region'" in problems["analysis.dimensions"]


@pytest.mark.parametrize("template", ["{variant.x}", "{variant[x]}"])
def test_dimension_template_with_bad_field_access_is_an_invalid_plan(
    plan_doc: dict[str, Any], template: str
) -> None:
    """GIVEN a template indexing into a placeholder WHEN parsed THEN InvalidPlan, not a crash."""
    plan_doc["analysis"]["dimensions"]["Variant"] = template

    assert "analysis.dimensions" in _problems(plan_doc)


def test_all_known_dimension_placeholders_are_accepted(plan_doc: dict[str, Any]) -> None:
    """GIVEN every documented placeholder WHEN parsed THEN the dimensions are kept verbatim."""
    dims = {"A": "{variant}", "B": "{host}", "C": "{version}", "D": "{rollout_id}", "E": "lit"}
    plan_doc["analysis"]["dimensions"] = dims

    assert parse_plan(json.dumps(plan_doc)).analysis.dimensions == dims


@pytest.mark.parametrize(
    ("mutate", "path"),
    [
        (lambda d: d.update(colour="blue"), "colour"),
        (lambda d: d["stages"][0].update(wieght=5), "stages.0.wieght"),
        (lambda d: d["analysis"].update(treshold=0.1), "analysis.treshold"),
        (lambda d: d["policies"].update(on_failure="page"), "policies.on_failure"),
    ],
)
def test_unknown_plan_fields_are_refused_by_path(
    plan_doc: dict[str, Any], mutate: Any, path: str
) -> None:
    """GIVEN a misspelt field anywhere in the plan WHEN parsed THEN its full path is named."""
    mutate(plan_doc)
    stage = " (stage 1)" if path.startswith("stages.0.") else ""  # people count from 1

    assert _problems(plan_doc) == {path: f"Extra inputs are not permitted{stage}"}


def test_stable_and_canary_must_differ(plan_doc: dict[str, Any]) -> None:
    """GIVEN stable and canary with the same name WHEN validated THEN the plan is refused."""
    plan_doc["canary"]["name"] = "stable"

    with pytest.raises(ValidationError, match="different names"):
        RolloutPlan.model_validate(plan_doc)


# -- durations ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10m", 600),
        ("3h", 10_800),
        ("1d", 86_400),
        ("45", 45),
        (" 7 m ", 420),
        (30, 30),
        (30.0, 30),
    ],
)
def test_durations_are_read_as_seconds(text: object, seconds: int) -> None:
    """GIVEN a duration as people write it WHEN parsed THEN it is whole seconds."""
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["1.5m", "10 minutes", "-5s", "5S", "", "m", True, 2.5, None])
def test_malformed_durations_are_refused(text: object) -> None:
    """GIVEN something that is not a duration WHEN parsed THEN ValueError names the value."""
    with pytest.raises(ValueError, match=r"not a duration|a duration is"):
        parse_duration(text)


@pytest.mark.parametrize(
    ("field", "value"),
    [("bake", "10 minutes"), ("bake", "1.5h"), ("interval", True), ("interval", "0s")],
)
def test_bad_stage_durations_are_refused_at_their_field(
    plan_doc: dict[str, Any], field: str, value: object
) -> None:
    """GIVEN a bad bake or interval in stage 1 WHEN parsed THEN ``stages.0.<field>`` is named."""
    plan_doc["stages"][0][field] = value

    assert f"stages.0.{field}" in _problems(plan_doc)


def test_plan_durations_in_hours_minutes_and_seconds(plan_doc: dict[str, Any]) -> None:
    """GIVEN '3h', '10m' and '90s' in a plan WHEN parsed THEN they are 10800, 600 and 90."""
    plan_doc["stages"][0].update(bake="3h", interval="10m")
    plan_doc["analysis"]["period"] = "90s"

    plan = parse_plan(json.dumps(plan_doc))

    assert (plan.stages[0].bake, plan.stages[0].interval, plan.analysis.period) == (10_800, 600, 90)


@given(st.integers(min_value=0, max_value=30 * 86_400))
def test_format_duration_round_trips(seconds: int) -> None:
    """GIVEN any whole number of seconds WHEN formatted and parsed back THEN it is unchanged."""
    assert parse_duration(format_duration(seconds)) == seconds
