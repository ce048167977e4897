"""Tests for orchestrator.plans: reading plan files (YAML or JSON) into a RolloutPlan."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.plans import MAX_PLAN_BYTES, InvalidPlan, load_plan, parse_plan


def test_yaml_and_json_spellings_give_equal_plans(plan_doc: dict[str, Any]) -> None:
    """GIVEN one plan written as YAML and as JSON WHEN parsed THEN both plans are equal."""
    from_yaml = parse_plan(yaml.safe_dump(plan_doc, sort_keys=False), "plan.yaml")
    from_json = parse_plan(json.dumps(plan_doc, indent=2), "plan.json")

    assert from_yaml == from_json
    assert from_yaml.target.host == "shop.example.com"


def test_load_plan_reads_a_yaml_file(tmp_path: Path, plan_doc: dict[str, Any]) -> None:
    """GIVEN a valid plan.yaml on disk WHEN loaded THEN it equals the parsed text."""
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan_doc), encoding="utf-8")

    assert load_plan(path) == parse_plan(json.dumps(plan_doc))


@pytest.mark.parametrize(
    "text", ["target: [unclosed", '{"target": {"host": }', "a: b\n  c: d\n", "\t- tab"]
)
def test_text_that_is_not_yaml_is_refused_with_its_position(text: str) -> None:
    """GIVEN malformed YAML/JSON WHEN parsed THEN the only problem is '(file)' with a line."""
    with pytest.raises(InvalidPlan) as refused:
        parse_plan(text, "broken.yaml")

    [(field, rule)] = refused.value.problems
    assert field == "(file)"
    assert rule.startswith("not valid YAML or JSON at line ")
    assert refused.value.source == "broken.yaml"
    assert "broken.yaml" in str(refused.value)


@pytest.mark.parametrize("text", ["- target: x\n- stages: []\n", "[]", "42", "just words", ""])
def test_a_document_that_is_not_a_mapping_is_refused(text: str) -> None:
    """GIVEN a list, scalar or empty document WHEN parsed THEN '(file)' must hold a mapping."""
    with pytest.raises(InvalidPlan) as refused:
        parse_plan(text)

    assert refused.value.problems == [("(file)", "must hold a mapping with target, stages, ...")]


def test_a_mapping_missing_fields_lists_each_missing_path() -> None:
    """GIVEN a mapping with only a target WHEN parsed THEN every required field is named."""
    with pytest.raises(InvalidPlan) as refused:
        parse_plan("target: {host: shop.example.com}\n")

    missing = {field for field, rule in refused.value.problems if rule == "Field required"}
    assert missing == {"stable", "canary", "stages", "analysis"}


def test_oversize_plan_file_is_refused_before_reading(
    tmp_path: Path, plan_doc: dict[str, Any]
) -> None:
    """GIVEN a valid plan padded past 256 KiB WHEN loaded THEN '(file)' names the size limit."""
    path = tmp_path / "huge.yaml"
    text = yaml.safe_dump(plan_doc)
    path.write_text(text + "#" * (MAX_PLAN_BYTES - len(text) + 1) + "\n", encoding="utf-8")

    with pytest.raises(InvalidPlan) as refused:
        load_plan(path)

    [(field, rule)] = refused.value.problems
    assert field == "(file)"
    assert rule == f"{path.stat().st_size} bytes; at most {MAX_PLAN_BYTES}"


def test_plan_at_exactly_the_size_limit_is_read(tmp_path: Path, plan_doc: dict[str, Any]) -> None:
    """GIVEN a valid plan padded to exactly 256 KiB WHEN loaded THEN it parses."""
    path = tmp_path / "full.yaml"
    text = yaml.safe_dump(plan_doc) + "#"
    path.write_text(text + "x" * (MAX_PLAN_BYTES - len(text)), encoding="utf-8")
    assert path.stat().st_size == MAX_PLAN_BYTES

    assert load_plan(path).canary.version == "v2"


def test_missing_file_is_an_invalid_plan(tmp_path: Path) -> None:
    """GIVEN a path that does not exist WHEN loaded THEN '(file)' says it cannot be read."""
    path = tmp_path / "nope.yaml"

    with pytest.raises(InvalidPlan) as refused:
        load_plan(path)

    [(field, rule)] = refused.value.problems
    assert field == "(file)" and rule.startswith("cannot be read")
    assert refused.value.source == str(path)


def test_file_that_is_not_utf8_is_an_invalid_plan(tmp_path: Path) -> None:
    """GIVEN bytes that are not UTF-8 WHEN loaded THEN InvalidPlan, not UnicodeDecodeError."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"target: {host: caf\xe9.example.com}\n")

    with pytest.raises(InvalidPlan) as refused:
        load_plan(path)

    assert refused.value.problems[0][0] == "(file)"


def test_field_problems_carry_the_file_name(tmp_path: Path, plan_doc: dict[str, Any]) -> None:
    """GIVEN a plan file with a bad stage weight WHEN loaded THEN message has path and field."""
    plan_doc["stages"][1]["weight"] = 250
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(plan_doc), encoding="utf-8")

    with pytest.raises(InvalidPlan) as refused:
        load_plan(path)

    assert [field for field, _ in refused.value.problems] == ["stages.1.weight"]
    assert str(path) in str(refused.value)
    assert "  stages.1.weight: " in str(refused.value)
