"""`rollout forecast`: the preflight forecast from numbers a person gives, and whether the
judge then does what it forecasts."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from orchestrator.analysis.forecast import forecast, plan_with_bake
from orchestrator.analysis.replay import replay
from orchestrator.cli.main import cli
from orchestrator.models import RolloutPlan

PLAN = """\
target: {host: shop.example.com}
stable: {name: stable, version: v1}
canary: {name: canary, version: v2}
stages:
  - {weight: 5, bake: 10m, interval: 1m}
  - {weight: 50, bake: 10m, interval: 1m}
analysis:
  namespace: Shop
  dimensions: {Variant: "{variant}"}
  metrics:
    - name: conversion
      numerator: Orders
      denominator: Visits
      direction: higher
      tolerance: {relative: 0.05}
"""


@pytest.fixture()
def plan_file(tmp_path: Path) -> Path:
    path = tmp_path / "plan.yaml"
    path.write_text(PLAN)
    return path


def _forecast(*args: str) -> object:
    return CliRunner().invoke(cli, ["forecast", *args])


def test_a_first_stage_too_short_for_the_tolerance_is_flagged_with_a_bake(plan_file: Path) -> None:
    """GIVEN a 5% conversion tolerance at 1,000 canary requests a minute WHEN forecast THEN
    stage 1 is too short, with the bake that would do, and the exit status says so."""
    result = _forecast(
        str(plan_file), "--requests-per-minute", "20000", "--rate", "conversion=0.05"
    )

    assert result.exit_code == 1, result.output
    first, second = result.output.strip().splitlines()
    assert first.startswith("TOO SHORT stage 1 at 5% sees ~1,000 canary requests/min")
    assert "use a bake of at least" in first
    assert second.startswith("ok")


def test_json_and_the_recommended_bake_is_feasible(plan_file: Path, tmp_path: Path) -> None:
    """GIVEN the recommended bake written into the plan WHEN forecast again THEN feasible."""
    result = _forecast(
        str(plan_file), "--requests-per-minute", "20000", "--rate", "conversion=0.05", "--json"
    )
    stages = json.loads(result.output)
    assert [s["feasible"] for s in stages] == [False, True]
    bake = stages[0]["recommended_bake"]
    assert bake > 600 and stages[0]["looks_needed"] > stages[0]["looks_allowed"]

    longer = tmp_path / "longer.yaml"
    longer.write_text(PLAN.replace("{weight: 5, bake: 10m", f"{{weight: 5, bake: {bake}"))
    again = _forecast(str(longer), "--requests-per-minute", "20000", "--rate", "conversion=0.05")
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--rate", "conv=0.05"], "unknown metric 'conv'"),
        (["--rate", "conversion=x"], "--rate"),
        (["--rate", "conversion=-1"], "--rate"),
        (["--rate", "conversion=0.05", "--noise", "conversion"], "--noise"),
    ],
)
def test_bad_numbers_are_refused_naming_the_option(
    plan_file: Path, args: list[str], named: str
) -> None:
    result = _forecast(str(plan_file), "--requests-per-minute", "20000", *args)

    assert result.exit_code == 2
    assert named in result.output


def test_what_the_forecast_recommends_the_judge_does() -> None:
    """GIVEN the recommended first bake WHEN healthy conversions are replayed THEN nearly
    all pass the first stage; with the default bake many run out of time."""
    plan = RolloutPlan.model_validate(yaml.safe_load(PLAN))
    (first, _) = forecast(plan, 20_000, {"conversion": 0.05})
    assert first.recommended_bake is not None
    recommended = plan_with_bake(plan, 0, first.recommended_bake)

    def passed_first_stage(candidate: RolloutPlan, seed: int) -> bool:
        rng = random.Random(seed)

        def source(window: object) -> dict[str, dict[str, tuple[int, int]]]:
            canary = round(20_000 * window.weight / 100)  # type: ignore[attr-defined]
            baseline = 20_000 - canary
            return {
                "conversion": {
                    "canary": (_binomial(rng, canary, 0.05), canary),
                    "baseline": (_binomial(rng, baseline, 0.05), baseline),
                }
            }

        result = replay(candidate, source)
        return result.outcome == "PROMOTED" or result.stage > 0

    rollouts = 60
    short = sum(passed_first_stage(plan, seed) for seed in range(rollouts))
    long = sum(passed_first_stage(recommended, seed) for seed in range(rollouts))
    assert long >= rollouts - 2  # the forecast aims at ~99.5%
    assert short < long


def _binomial(rng: random.Random, n: int, p: float) -> int:
    mean, spread = n * p, (n * p * (1 - p)) ** 0.5
    return min(n, max(0, round(rng.gauss(mean, spread))))
