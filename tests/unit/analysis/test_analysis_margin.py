"""Tests for orchestrator.analysis.margin: the within-tolerance score test."""

from __future__ import annotations

import math
import random

import pytest

from benchmarks.judge import binomial
from orchestrator.analysis import Counts, Outcome, judge_ratio
from orchestrator.analysis.margin import LIMIT, Margin, margin_for, within_z
from orchestrator.analysis.sequential import Look
from orchestrator.models.analysis import Direction, RatioMetric, Tolerance


@pytest.mark.parametrize(
    ("tolerance", "direction", "rate", "margin"),
    [
        (Tolerance(relative=0.5, absolute=0.001), Direction.LOWER, 0.01, Margin(1.5, 0.0)),
        (Tolerance(relative=0.5, absolute=0.01), Direction.LOWER, 0.01, Margin(1.0, 0.01)),
        (Tolerance(relative=0.05), Direction.HIGHER, 0.05, Margin(0.95, 0.05)),
        (Tolerance(absolute=0.002), Direction.HIGHER, 0.05, Margin(1.0, 0.002)),
        (Tolerance(relative=2.0), Direction.HIGHER, 0.05, Margin(0.0, 2.0)),
    ],
)
def test_the_binding_tolerance_becomes_a_line_on_bad_event_rates(
    tolerance: Tolerance, direction: Direction, rate: float, margin: Margin
) -> None:
    """GIVEN a tolerance, a direction and the baseline's rate as written WHEN mapped THEN the
    worst passing canary's bad-event rate is slope x baseline's + offset."""
    assert margin_for(tolerance, direction, rate) == margin


def test_a_conversion_margin_is_the_drop_of_the_good_rate() -> None:
    """GIVEN conversion 5% with a 5% relative tolerance WHEN the line is read at the
    baseline's miss rate THEN the worst canary converts 4.75%."""
    margin = margin_for(Tolerance(relative=0.05), Direction.HIGHER, 0.05)

    assert math.isclose(1 - margin.at(0.95), 0.0475)


def test_within_z_leans_in_for_an_equal_canary_and_out_for_one_beyond_the_margin() -> None:
    """GIVEN 1% baseline and a 1.5x margin WHEN the canary is at 1% or 2.5% THEN z > 0
    (clearly at 20k requests) or z < 0."""
    margin = Margin(1.5, 0.0)
    baseline = Counts(1_900, 190_000)

    assert within_z(Counts(200, 20_000), baseline, margin) > 3
    assert within_z(Counts(500, 20_000), baseline, margin) < 0


def test_no_bad_events_and_no_margin_is_no_evidence() -> None:
    """GIVEN zero errors on both sides and a zero margin WHEN scored THEN not above zero,
    which no pass boundary allows; a tolerated 100% drop of a conversion THEN the ceiling."""
    assert within_z(Counts(0, 10_000), Counts(0, 10_000), Margin(1.0, 0.0)) <= 0
    assert within_z(Counts(10, 100), Counts(10, 100), Margin(0.0, 1.0)) == LIMIT


def test_empty_arms_are_no_evidence() -> None:
    """GIVEN no events in an arm WHEN scored THEN the floor."""
    assert within_z(Counts(0, 0), Counts(5, 100), Margin(1.5, 0.0)) == -LIMIT


@pytest.mark.parametrize(
    ("tolerance", "direction", "baseline_rate"),
    [
        (Tolerance(relative=0.5, absolute=0.001), Direction.LOWER, 0.01),
        (Tolerance(absolute=0.005), Direction.LOWER, 0.01),
        (Tolerance(relative=0.2), Direction.HIGHER, 0.3),
    ],
)
def test_a_canary_at_the_margin_passes_at_most_pass_alpha_of_the_time(
    tolerance: Tolerance, direction: Direction, baseline_rate: float
) -> None:
    """GIVEN a canary exactly at the tolerance, low traffic (100 canary requests a look) and
    binomial counts WHEN judged from the bake's end to the extension's THEN it passes about
    pass_alpha (5%) of the time, not more: the estimate's own spread cannot sneak it in."""
    rng, runs, planned, extra, passed = random.Random(3), 1_500, 10, 10, 0
    metric = RatioMetric(
        name="m",
        numerator="bad",
        denominator="all",
        direction=direction,
        tolerance=tolerance,
        min_samples=1,
    )
    shift = tolerance.margin(baseline_rate)
    canary_rate = baseline_rate + shift if direction is Direction.LOWER else baseline_rate - shift
    for _ in range(runs):
        canary, baseline = Counts(0, 0), Counts(0, 0)
        for number in range(1, planned + extra + 1):
            canary = Counts(canary.errors + binomial(rng, 100, canary_rate), canary.total + 100)
            baseline = Counts(
                baseline.errors + binomial(rng, 1_900, baseline_rate), baseline.total + 1_900
            )
            look = Look(number, planned, extra, alpha=0.00375, pass_alpha=0.05)
            outcome = judge_ratio(metric, canary, baseline, look).outcome
            if outcome is Outcome.FAIL:
                break
            if outcome is Outcome.PASS and number >= planned:
                passed += 1
                break

    assert passed / runs < 0.05 + 2 * math.sqrt(0.05 * 0.95 / runs)
