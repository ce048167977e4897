"""Tests for orchestrator.analysis.judge: the canary-vs-baseline verdict of one metric."""

from __future__ import annotations

import json
import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from orchestrator.analysis import Counts, Outcome, judge_ratio, judge_threshold
from orchestrator.analysis.sequential import Look, pass_boundaries
from orchestrator.models.analysis import Direction, RatioMetric, ThresholdMetric, Tolerance

LOOK = Look(number=10, planned=10, extra=10, alpha=0.005)


def _metric(**changes: object) -> RatioMetric:
    fields: dict[str, object] = {
        "name": "error-rate",
        "numerator": "Errors",
        "denominator": "Requests",
        "tolerance": Tolerance(relative=0.5, absolute=0.001),
        "min_samples": 500,
    }
    return RatioMetric.model_validate(fields | changes)


def test_too_few_events_is_inconclusive() -> None:
    """GIVEN fewer canary events than min_samples WHEN judged THEN inconclusive, saying why."""
    verdict = judge_ratio(_metric(), Counts(5, 499), Counts(50, 50_000), LOOK)

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert "too few events" in verdict.reason


def test_doubled_error_rate_fails_with_evidence() -> None:
    """GIVEN 2% vs 1% over 10k canary requests WHEN judged THEN fail with z above the bound."""
    verdict = judge_ratio(_metric(), Counts(200, 10_000), Counts(1_900, 190_000), LOOK)

    assert verdict.outcome is Outcome.FAIL
    assert verdict.statistic is not None and verdict.threshold is not None
    assert verdict.statistic > verdict.threshold
    assert verdict.effect is not None and abs(verdict.effect - 0.01) < 1e-9


def test_equal_rates_with_enough_samples_pass() -> None:
    """GIVEN 1% in both arms over many requests WHEN judged THEN pass within the margin."""
    verdict = judge_ratio(_metric(), Counts(100, 10_000), Counts(1_900, 190_000), LOOK)

    assert verdict.outcome is Outcome.PASS
    assert verdict.interval is not None and verdict.margin is not None
    assert verdict.interval[1] <= verdict.margin


def test_an_open_verdict_says_how_many_looks_a_pass_needs_at_this_traffic() -> None:
    """GIVEN 1% in both arms over 1,000 canary requests (low traffic) WHEN judged THEN
    inconclusive, with the first look at which the within-tolerance z, growing as the root
    of the looks, would clear that look's pass boundary; with twice the traffic, sooner."""
    low = judge_ratio(_metric(), Counts(10, 1_000), Counts(190, 19_000), LOOK)
    double = judge_ratio(_metric(), Counts(20, 2_000), Counts(380, 38_000), LOOK)

    assert low.outcome is Outcome.INCONCLUSIVE and low.looks_to_pass is not None
    assert f"a pass needs about {low.looks_to_pass} looks, the stage has 20" in low.reason
    bounds = pass_boundaries(LOOK.pass_alpha, LOOK.planned, LOOK.extra)
    assert low.pass_statistic is not None
    grown = [low.pass_statistic * math.sqrt(m / LOOK.number) for m in range(11, 21)]
    crossed = [m for m, z in zip(range(11, 21), grown, strict=True) if z > bounds[m - 10]]
    beyond = math.ceil(LOOK.number * (bounds[-1] / low.pass_statistic) ** 2)
    assert low.looks_to_pass == (crossed[0] if crossed else max(21, beyond))
    assert low.looks_to_pass > LOOK.number
    assert double.looks_to_pass is not None and double.looks_to_pass < low.looks_to_pass


def test_an_open_verdict_outside_the_tolerance_says_more_looks_will_not_pass_it() -> None:
    """GIVEN a canary measured at 1.8x the baseline, not yet significant WHEN judged THEN
    inconclusive, no estimate, and the reason says it is outside the tolerance."""
    verdict = judge_ratio(_metric(), Counts(18, 1_000), Counts(190, 19_000), LOOK)

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.looks_to_pass is None
    assert "as measured it is outside the tolerance" in verdict.reason


def test_single_canary_error_over_an_error_free_baseline_is_not_a_failure() -> None:
    """GIVEN one canary error and none in the baseline WHEN judged THEN no rollback on it."""
    verdict = judge_ratio(_metric(min_samples=100), Counts(1, 1_000), Counts(0, 19_000), LOOK)

    assert verdict.outcome is not Outcome.FAIL


def test_new_errors_over_an_error_free_baseline_fail() -> None:
    """GIVEN 1% canary errors against a baseline without any WHEN judged THEN fail."""
    verdict = judge_ratio(_metric(), Counts(50, 5_000), Counts(0, 95_000), LOOK)

    assert verdict.outcome is Outcome.FAIL


def test_absolute_guard_fails_even_below_min_samples() -> None:
    """GIVEN 50% canary errors over 100 requests and a 5% limit WHEN judged THEN fail."""
    verdict = judge_ratio(_metric(limit=0.05), Counts(50, 100), Counts(45, 90), LOOK)

    assert verdict.outcome is Outcome.FAIL
    assert "limit" in verdict.reason


def test_conversion_drop_fails_when_higher_is_better() -> None:
    """GIVEN conversion 4% vs 5% over large samples WHEN higher is better THEN fail."""
    metric = _metric(name="conversion", direction=Direction.HIGHER)

    verdict = judge_ratio(metric, Counts(2_000, 50_000), Counts(7_500, 150_000), LOOK)

    assert verdict.outcome is Outcome.FAIL


def test_verdict_as_dict_is_json() -> None:
    """GIVEN a verdict WHEN turned into a dict THEN it is JSON with counts and evidence."""
    data = judge_ratio(_metric(), Counts(100, 10_000), Counts(1_900, 190_000), LOOK).as_dict()

    assert json.loads(json.dumps(data))["canary"] == {"errors": 100, "total": 10_000}
    assert {"statistic", "threshold", "interval", "margin", "outcome"} <= set(data)


def test_threshold_metric_fails_above_max_and_is_inconclusive_without_data() -> None:
    """GIVEN a p99 bound of 800 WHEN 900, 500 or nothing is measured THEN fail, pass, unsure."""
    metric = ThresholdMetric(name="p99", kind="threshold", query="Latency", max=800)

    assert judge_threshold(metric, 900.0).outcome is Outcome.FAIL
    assert judge_threshold(metric, 500.0).outcome is Outcome.PASS
    assert judge_threshold(metric, None).outcome is Outcome.INCONCLUSIVE


# -- properties --------------------------------------------------------------------------

_RANK = {Outcome.PASS: 0, Outcome.INCONCLUSIVE: 1, Outcome.FAIL: 2}


@st.composite
def _windows(draw: st.DrawFn) -> tuple[int, int, int, Counts]:
    total = draw(st.integers(min_value=1, max_value=50_000))
    more = draw(st.integers(min_value=1, max_value=total))
    fewer = draw(st.integers(min_value=0, max_value=more - 1))
    baseline_total = draw(st.integers(min_value=1, max_value=200_000))
    baseline_errors = draw(st.integers(min_value=0, max_value=baseline_total))
    return total, fewer, more, Counts(baseline_errors, baseline_total)


@settings(max_examples=300)
@given(window=_windows(), number=st.integers(1, 20), limit=st.none() | st.floats(0, 1))
def test_more_canary_errors_never_improve_a_verdict(
    window: tuple[int, int, int, Counts], number: int, limit: float | None
) -> None:
    """GIVEN a canary window WHEN it has more errors (same total) THEN no better verdict."""
    total, fewer, more, baseline = window
    metric = _metric(min_samples=100, limit=limit)
    look = Look(number=number, planned=10, extra=10, alpha=0.005)

    before = judge_ratio(metric, Counts(fewer, total), baseline, look)
    after = judge_ratio(metric, Counts(more, total), baseline, look)

    assert _RANK[after.outcome] >= _RANK[before.outcome]


@settings(max_examples=300)
@given(window=_windows(), absolute=st.floats(0, 0.05))
def test_swapping_the_direction_mirrors_the_verdict(
    window: tuple[int, int, int, Counts], absolute: float
) -> None:
    """GIVEN counts judged lower-is-better WHEN their complements are judged higher-is-better
    THEN the verdict is the same; and what fails one way never fails the other way."""
    total, errors, _, baseline = window
    canary = Counts(errors, total)
    lower = _metric(min_samples=100, tolerance=Tolerance(absolute=absolute))
    higher = _metric(
        min_samples=100, tolerance=Tolerance(absolute=absolute), direction=Direction.HIGHER
    )
    flipped_canary = Counts(total - errors, total)
    flipped_baseline = Counts(baseline.total - baseline.errors, baseline.total)

    straight = judge_ratio(lower, canary, baseline, LOOK)
    mirrored = judge_ratio(higher, flipped_canary, flipped_baseline, LOOK)
    swapped = judge_ratio(higher, canary, baseline, LOOK)

    assert straight.outcome is mirrored.outcome
    if straight.outcome is Outcome.FAIL:
        assert swapped.outcome is not Outcome.FAIL


@settings(max_examples=200)
@given(
    rate=st.floats(0, 0.2),
    total=st.integers(20_000, 200_000),
    scale=st.integers(1, 20),
)
def test_a_canary_identical_to_the_baseline_passes_once_samples_suffice(
    rate: float, total: int, scale: int
) -> None:
    """GIVEN the same error rate in both arms and enough events WHEN judged THEN pass."""
    errors = round(rate * total)
    canary, baseline = Counts(errors, total), Counts(errors * scale, total * scale)
    assume(canary.rate == baseline.rate)

    verdict = judge_ratio(
        _metric(tolerance=Tolerance(relative=0.5, absolute=0.005)), canary, baseline, LOOK
    )

    assert verdict.outcome is Outcome.PASS
