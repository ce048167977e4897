"""Tests for orchestrator.analysis: Counts invariants and the canary-vs-baseline judge."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from orchestrator.analysis import Counts, Outcome, judge

TOLERANCE = 0.01


def test_too_few_canary_requests_is_inconclusive() -> None:
    """GIVEN 99 canary requests against a minimum of 100 WHEN judged THEN inconclusive."""
    verdict = judge(Counts(99, 99), Counts(0, 50_000), min_samples=100, tolerance=TOLERANCE)

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.reason == "too few requests: canary 99, baseline 50000, need 100 each"


def test_too_few_baseline_requests_is_inconclusive() -> None:
    """GIVEN plenty of canary traffic but a thin baseline WHEN judged THEN inconclusive."""
    verdict = judge(Counts(0, 50_000), Counts(0, 10), min_samples=100, tolerance=TOLERANCE)

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.reason.startswith("too few requests")


def test_exactly_min_samples_is_judged() -> None:
    """GIVEN exactly min_samples in each arm WHEN judged THEN it is not 'too few requests'."""
    verdict = judge(Counts(0, 100), Counts(0, 100), min_samples=100, tolerance=TOLERANCE)

    assert not verdict.reason.startswith("too few requests")


def test_clear_regression_fails() -> None:
    """GIVEN 8% canary errors against 0.5% baseline over thousands WHEN judged THEN fail."""
    verdict = judge(Counts(400, 5_000), Counts(100, 20_000), min_samples=100, tolerance=TOLERANCE)

    assert verdict.outcome is Outcome.FAIL
    assert verdict.lower > TOLERANCE
    assert verdict.difference == pytest.approx(0.075, abs=0.002)


def test_equal_rates_with_large_samples_pass() -> None:
    """GIVEN 0.5% errors in both arms over 20000 requests WHEN judged THEN pass."""
    verdict = judge(Counts(100, 20_000), Counts(100, 20_000), min_samples=100, tolerance=TOLERANCE)

    assert verdict.outcome is Outcome.PASS
    assert verdict.lower < 0 < verdict.upper <= TOLERANCE


def test_zero_errors_in_both_arms_pass_with_a_tolerance() -> None:
    """GIVEN no errors anywhere over thousands WHEN judged THEN pass with finite bounds."""
    verdict = judge(Counts(0, 5_000), Counts(0, 5_000), min_samples=100, tolerance=TOLERANCE)

    assert verdict.outcome is Outcome.PASS
    assert verdict.difference == 0.0
    assert 0 < verdict.upper < TOLERANCE


def test_zero_errors_with_zero_tolerance_is_not_a_pass() -> None:
    """GIVEN no errors in either arm and tolerance 0 WHEN judged THEN never pass (upper > 0)."""
    verdict = judge(Counts(0, 5_000), Counts(0, 5_000), min_samples=100, tolerance=0.0)

    assert verdict.outcome is Outcome.INCONCLUSIVE


def test_small_rise_with_little_data_is_inconclusive() -> None:
    """GIVEN 3% vs 1% over only 300 requests each WHEN judged THEN inconclusive either way."""
    verdict = judge(Counts(9, 300), Counts(3, 300), min_samples=100, tolerance=TOLERANCE)

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.lower <= TOLERANCE < verdict.upper


def test_verdict_as_dict_is_plain_data() -> None:
    """GIVEN a verdict WHEN turned into a dict THEN outcome is its string and counts are dicts."""
    data = judge(Counts(1, 1_000), Counts(1, 1_000), min_samples=100, tolerance=0.01).as_dict()

    assert data["outcome"] == "pass"
    assert data["canary"] == {"errors": 1, "total": 1_000}


@pytest.mark.parametrize(("errors", "total"), [(-1, 10), (0, -1), (11, 10), (1, 0)])
def test_counts_reject_impossible_values(errors: int, total: int) -> None:
    """GIVEN negative counts or more errors than requests WHEN built THEN ValueError."""
    with pytest.raises(ValueError, match=r"negative|more errors"):
        Counts(errors, total)


def test_counts_add_and_rate() -> None:
    """GIVEN two windows WHEN added THEN errors and totals add and the rate follows."""
    combined = Counts(1, 100) + Counts(3, 300)

    assert combined == Counts(4, 400)
    assert combined.rate == 0.01
    assert Counts(0, 0).rate == 0.0


# -- properties --------------------------------------------------------------------------

_RANK = {Outcome.PASS: 0, Outcome.INCONCLUSIVE: 1, Outcome.FAIL: 2}


@given(
    errors=st.integers(min_value=0, max_value=1_000),
    total=st.integers(min_value=1_000, max_value=20_000),
    canary_scale=st.integers(min_value=1, max_value=10),
    baseline_scale=st.integers(min_value=1, max_value=10),
    tolerance=st.floats(min_value=0, max_value=0.1),
)
def test_same_rate_as_baseline_never_fails(
    errors: int, total: int, canary_scale: int, baseline_scale: int, tolerance: float
) -> None:
    """GIVEN canary and baseline with exactly the same error rate WHEN judged THEN never fail."""
    assume(errors <= total)
    canary = Counts(errors * canary_scale, total * canary_scale)
    baseline = Counts(errors * baseline_scale, total * baseline_scale)

    verdict = judge(canary, baseline, min_samples=1_000, tolerance=tolerance)

    assert verdict.outcome is not Outcome.FAIL


@st.composite
def _canary_windows(draw: st.DrawFn) -> tuple[int, int, int]:
    """A canary total and two error counts ``fewer < more`` that both fit in it."""
    total = draw(st.integers(min_value=100, max_value=5_000))
    more = draw(st.integers(min_value=1, max_value=total))
    fewer = draw(st.integers(min_value=0, max_value=more - 1))
    return total, fewer, more


@given(
    window=_canary_windows(),
    baseline=st.builds(
        lambda total, share: Counts(int(total * share), total),
        st.integers(min_value=100, max_value=20_000),
        st.floats(min_value=0, max_value=0.2),
    ),
    tolerance=st.floats(min_value=0, max_value=0.05),
)
def test_more_canary_errors_never_turn_a_fail_into_a_pass(
    window: tuple[int, int, int], baseline: Counts, tolerance: float
) -> None:
    """GIVEN a canary window WHEN errors are added (same total) THEN the verdict never improves."""
    total, fewer, more = window
    before = judge(Counts(fewer, total), baseline, min_samples=100, tolerance=tolerance)
    after = judge(Counts(more, total), baseline, min_samples=100, tolerance=tolerance)

    if before.outcome is Outcome.FAIL:
        assert after.outcome is not Outcome.PASS
    assert _RANK[after.outcome] >= _RANK[before.outcome]
