"""Tests for orchestrator.analysis.sequential and schedule: boundaries and budgets."""

from __future__ import annotations

import math
import random

from orchestrator.analysis.schedule import look_at, stage_alpha
from orchestrator.analysis.sequential import binomial_upper_tail, boundaries, z_quantile
from orchestrator.models import RolloutPlan


def test_one_look_is_the_fixed_sample_quantile() -> None:
    """GIVEN a single planned look WHEN bounded THEN the one-sided 1-alpha quantile."""
    assert math.isclose(boundaries(0.01, 1)[0], z_quantile(0.99), rel_tol=1e-9)


def test_bounds_fall_across_the_bake_and_stay_above_the_fixed_sample_one() -> None:
    """GIVEN ten looks WHEN bounded THEN strict early, close to (above) fixed-sample late."""
    bounds = boundaries(0.005, 10)

    assert list(bounds) == sorted(bounds, reverse=True)
    assert z_quantile(1 - 0.005) < bounds[-1] < z_quantile(1 - 0.005) + 0.3


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
    """GIVEN a 10-minute bake with 1-minute looks WHEN 3 minutes in THEN look 3 of 10 + 10."""
    look = look_at(plan, 0, 180.4)

    assert (look.number, look.planned, look.extra) == (3, 10, 10)
