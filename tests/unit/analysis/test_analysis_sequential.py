"""Tests for orchestrator.analysis.sequential and schedule: boundaries and budgets."""

from __future__ import annotations

import math
import random

import pytest

from orchestrator.analysis.schedule import look_at, stage_alpha
from orchestrator.analysis.sequential import (
    Look,
    binomial_upper_tail,
    boundaries,
    crossing_bounds,
    pass_boundaries,
    z_quantile,
)
from orchestrator.models import RolloutPlan


def test_one_look_is_the_fixed_sample_quantile() -> None:
    """GIVEN a single planned look WHEN bounded THEN the one-sided 1-alpha quantile."""
    assert math.isclose(boundaries(0.01, 1)[0], z_quantile(0.99), rel_tol=1e-9)


def test_bounds_fall_across_the_bake_and_stay_above_the_fixed_sample_one() -> None:
    """GIVEN ten looks WHEN bounded THEN strict early, falling to above the fixed-sample
    bound late; spent evenly (FAIL_SPENDING_RHO 1), the first is Bonferroni's alpha / 10
    and every later one is below it (the looks' correlation is used)."""
    bounds = boundaries(0.005, 10)
    bonferroni = z_quantile(1 - 0.005 / 10)

    assert list(bounds) == sorted(bounds, reverse=True)
    assert z_quantile(1 - 0.005) < bounds[-1] < bonferroni - 0.2
    assert abs(bounds[0] - bonferroni) < 1e-3


def test_repeated_looks_keep_the_false_alarm_rate_at_alpha() -> None:
    """GIVEN a null random walk checked at every look WHEN simulated THEN ~alpha crossings."""
    rng, alpha, runs, crossed = random.Random(7), 0.05, 20_000, 0
    bounds = boundaries(alpha, 10, 5)
    for _ in range(runs):
        total = 0.0
        for k, bound in enumerate(bounds, start=1):
            total += rng.gauss(0, 1)
            if total / math.sqrt(k) > bound:
                crossed += 1
                break

    assert abs(crossed / runs - alpha) < 0.008


def test_pass_with_one_look_is_the_fixed_sample_quantile() -> None:
    """GIVEN no extension WHEN the pass is bounded THEN the one-sided 1-pass_alpha quantile."""
    assert pass_boundaries(0.05, 10, 0) == (z_quantile(0.95),)


def test_pass_bounds_beat_a_bonferroni_split_at_the_extension_end() -> None:
    """GIVEN a pass asked at 51 looks WHEN bounded THEN each bound is below Bonferroni's and
    the last one is within 0.3 of a single test's."""
    bounds = pass_boundaries(0.05, 10, 50)

    assert len(bounds) == 51
    assert max(bounds) < z_quantile(1 - 0.05 / 51)
    assert z_quantile(0.95) < bounds[-1] < z_quantile(0.95) + 0.3


def test_pass_looks_keep_the_chance_of_passing_a_canary_at_the_margin_at_pass_alpha() -> None:
    """GIVEN a canary exactly at the margin, its pass statistic checked from the bake's last
    look to the extension's WHEN simulated THEN it passes ~pass_alpha of the time."""
    rng, pass_alpha, runs, passed = random.Random(11), 0.05, 20_000, 0
    planned, extra = 10, 10
    bounds = pass_boundaries(pass_alpha, planned, extra)
    for _ in range(runs):
        total = sum(rng.gauss(0, 1) for _ in range(planned))
        for offset, bound in enumerate(bounds):
            if offset:
                total += rng.gauss(0, 1)
            if total / math.sqrt(planned + offset) > bound:
                passed += 1
                break

    assert abs(passed / runs - pass_alpha) < 0.008


def test_a_look_shows_the_first_pass_bound_before_the_bake_ends() -> None:
    """GIVEN looks before, at and after the bake's end WHEN asked THEN the bake-end bound
    until then, the extension's own bounds after."""
    bounds = pass_boundaries(0.05, 10, 5)
    at = [Look(number=n, planned=10, extra=5).pass_bound() for n in (3, 10, 11, 15, 99)]

    assert at == [bounds[0], bounds[0], bounds[1], bounds[5], bounds[5]]


def test_unequal_increments_match_the_equal_ones_they_add_up_to() -> None:
    """GIVEN a first look at 4 units then one per look WHEN bounded THEN the same as 4 equal
    looks where the first three spend nothing but a trace."""
    spent = (0.01, 0.005, 0.005)
    direct = crossing_bounds(spent, (4.0, 5.0, 6.0))
    stepped = crossing_bounds((1e-12, 1e-12, 1e-12, *spent), (1.0, 2.0, 3.0, 4.0, 5.0, 6.0))

    assert all(math.isclose(a, b, abs_tol=5e-3) for a, b in zip(direct, stepped[3:], strict=True))


def test_a_look_that_spends_nothing_is_refused() -> None:
    """GIVEN a zero share WHEN bounded THEN a ValueError, not an infinite boundary."""
    with pytest.raises(ValueError, match="error budget"):
        crossing_bounds((0.01, 0.0), (1.0, 2.0))


def test_binomial_tail_matches_the_sum() -> None:
    """GIVEN small binomials WHEN the tail is computed THEN it equals the exact sum."""
    for k, n, p in [(0, 5, 0.3), (3, 10, 0.05), (15, 200, 0.05), (200, 200, 0.5)]:
        exact = sum(math.comb(n, i) * p**i * (1 - p) ** (n - i) for i in range(k, n + 1))
        assert math.isclose(binomial_upper_tail(k, n, p), exact, rel_tol=1e-9)


def test_budget_is_shared_by_the_baked_stages(plan: RolloutPlan) -> None:
    """GIVEN alpha and three baked stages WHEN shared THEN half first, the rest even, sum alpha."""
    shares = [stage_alpha(0.01, i, 3) for i in range(3)]

    assert math.isclose(sum(shares), 0.01) and shares[0] == 0.005


def test_look_number_follows_the_elapsed_time(plan: RolloutPlan) -> None:
    """GIVEN a 10-minute bake with 1-minute looks WHEN 3 minutes in THEN look 3 of 10 + 50
    (the default extension: six more bakes, up to an hour)."""
    look = look_at(plan, 0, 180.4)

    assert (look.number, look.planned, look.extra) == (3, 10, 60)
