"""Tests for orchestrator.analysis.dispersion: how much more than binomial the counts vary,
measured from a stage's intervals and from the stable fleet's history, and how a test's
statistic widens by it."""

from __future__ import annotations

import math
import random

import pytest
from simulated_counts import interval

from orchestrator.analysis import Counts
from orchestrator.analysis.dispersion import Dispersion, estimate, history_noise, rare_side
from orchestrator.models.analysis import Noise

INTERVALS = 400  # enough for X²/df to sit within ~0.1 of its expectation


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_binomial_intervals_give_a_factor_of_one(seed: int) -> None:
    """GIVEN many intervals of ideal binomial counts, canary at 5% of the traffic WHEN the
    stage's dispersion is estimated THEN phi is about 1 (it is never below)."""
    rng = random.Random(seed)
    rows = [(interval(rng, 1_000, 0.01), interval(rng, 19_000, 0.01)) for _ in range(INTERVALS)]

    dispersion = estimate(rows, None, flipped=False)

    assert 1.0 <= dispersion.phi < 1.2
    assert dispersion.df == INTERVALS - 1
    assert "intervals" in dispersion.source


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_lognormal_noise_gives_a_factor_far_above_one(seed: int) -> None:
    """GIVEN each fleet's rate per interval times a lognormal factor (s = 0.2) at 10,000
    requests each WHEN estimated THEN phi is near the model's 1 + 2 kappa v (about 5)."""
    rng = random.Random(seed)
    rows = [
        (interval(rng, 10_000, 0.01, s=0.2), interval(rng, 10_000, 0.01, s=0.2))
        for _ in range(INTERVALS)
    ]

    dispersion = estimate(rows, None, flipped=False)

    kappa = math.exp(0.2**2) - 1
    predicted = 1 + 2 * kappa * (200 * 0.5 * 0.5)  # 200 errors an interval, shared evenly
    assert dispersion.phi > 3
    assert predicted / 1.5 < dispersion.phi < predicted * 1.5


def test_the_rarer_class_is_counted_for_a_conversion() -> None:
    """GIVEN 95% of events in the counted class WHEN estimated THEN the same phi as when
    the rare class (the misses) is counted directly."""
    rng = random.Random(7)
    rows = [
        (interval(rng, 10_000, 0.05, s=0.2), interval(rng, 10_000, 0.05, s=0.2)) for _ in range(60)
    ]
    mirrored = [
        (Counts(c.total - c.errors, c.total), Counts(b.total - b.errors, b.total)) for c, b in rows
    ]
    flipped, _, _ = rare_side(*mirrored[0])

    assert flipped
    assert estimate(mirrored, None, flipped=True) == estimate(rows, None, flipped=False)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_history_noise_recovers_the_lognormal_variance(seed: int) -> None:
    """GIVEN a stable fleet at a million requests an interval, its rate times a lognormal
    factor of s = 0.2 WHEN its history is read THEN kappa is about s² (0.04)."""
    rng = random.Random(seed)
    periods = [interval(rng, 1_000_000, 0.01, s=0.2) for _ in range(INTERVALS)]

    noise = history_noise(periods)

    assert 0.03 < noise.kappa < 0.055
    assert noise.df == INTERVALS - 1


def test_history_noise_of_binomial_counts_is_nearly_zero() -> None:
    """GIVEN a stable fleet with ideal binomial counts WHEN its history is read THEN kappa
    is next to nothing."""
    rng = random.Random(11)

    noise = history_noise([interval(rng, 20_000, 0.01) for _ in range(INTERVALS)])

    assert 0 <= noise.kappa < 0.002


def test_history_needs_a_few_intervals() -> None:
    """GIVEN two intervals WHEN the history is read THEN no estimate (0 degrees of freedom)."""
    noise = history_noise([Counts(10, 1_000), Counts(30, 1_000)])

    assert (noise.kappa, noise.df) == (0.0, 0)


def test_the_stable_fleets_noise_widens_the_first_looks() -> None:
    """GIVEN one interval (nothing to estimate from yet) and the stable fleet's kappa WHEN
    estimated THEN phi is the prior's prediction 1 + 2 kappa v, credited to the history."""
    rows = [(Counts(100, 10_000), Counts(100, 10_000))]
    prior = Noise(kappa=0.04, df=59, source="stable fleet, last 60 min")

    dispersion = estimate(rows, prior, flipped=False)

    variance = 200 * 0.5 * 0.5  # the canary's share of 200 errors
    assert math.isclose(dispersion.phi, 1 + 2 * 0.04 * variance, rel_tol=0.01)
    assert dispersion.df == 59 and "stable fleet" in dispersion.source


def test_without_enough_intervals_or_a_prior_the_noise_is_not_known() -> None:
    """GIVEN one interval and no prior WHEN estimated THEN the noise is not known, and a
    statistic is worth no evidence for either side (judging it as binomial rolled back
    healthy canaries on noisy traffic)."""
    dispersion = estimate([(Counts(100, 10_000), Counts(100, 10_000))], None, flipped=False)

    assert not dispersion.known and "not known yet" in dispersion.source
    assert dispersion.widen(8.0) == 0.0 and dispersion.widen(-2.0) == -2.0


def test_a_stage_far_noisier_than_a_calm_history_is_judged_by_its_own_intervals() -> None:
    """GIVEN a calm prior and a stage whose intervals swing far beyond it WHEN estimated
    THEN the stage's own estimate is used, and it is what the next stage learns."""
    from orchestrator.analysis.dispersion import NOISIER, learn

    rows = [(Counts(c, 10_000), Counts(100, 10_000)) for c in (60, 150, 70, 160, 50, 140)]
    calm = Noise(kappa=0.0, df=59, source="stable fleet")

    dispersion = estimate(rows, calm, flipped=False)

    assert dispersion.noisier and dispersion.phi > 3 and dispersion.df == 5
    assert dispersion.stage_kappa is not None and dispersion.stage_kappa > 0.01
    learned = learn(
        {"m": calm}, {"m": Noise(kappa=dispersion.stage_kappa, df=5, source=NOISIER)}, 1
    )
    assert learned["m"].kappa == dispersion.stage_kappa and learned["m"].df == 5


@pytest.mark.parametrize("z", [-3.0, 0.0, 1.5, 2.8, 6.0])
def test_widen_is_the_identity_at_phi_one(z: float) -> None:
    """GIVEN a binomial dispersion WHEN a statistic is widened THEN it is unchanged."""
    assert Dispersion().widen(z) == z
    assert Dispersion(1.0, 3.0, "estimated, at the floor").widen(z) == z


@pytest.mark.parametrize("z", [1.5, 2.8, 6.0])
def test_widen_divides_by_the_root_of_phi_when_phi_is_known(z: float) -> None:
    """GIVEN phi 4 with unlimited degrees of freedom WHEN widened THEN z / 2."""
    assert math.isclose(Dispersion(4.0, math.inf, "known").widen(z), z / 2)


@pytest.mark.parametrize("z", [1.5, 2.8, 6.0])
def test_an_estimated_phi_shrinks_a_statistic_more_than_a_known_one(z: float) -> None:
    """GIVEN phi 4 estimated with 9 degrees of freedom WHEN widened THEN smaller than z / 2
    (read against Student's t), still positive, and shrinking more with fewer df."""
    few, more = Dispersion(4.0, 9.0, "9 intervals"), Dispersion(4.0, 90.0, "90 intervals")

    assert 0 < few.widen(z) < more.widen(z) < z / 2 + 1e-12


def test_effective_degrees_of_freedom_grow_as_the_excess_shrinks() -> None:
    """Satterthwaite: only the estimated excess (phi - 1) carries estimation error."""
    assert Dispersion().effective_df == math.inf
    assert Dispersion(1.1, 10.0).effective_df > Dispersion(4.0, 10.0).effective_df > 10.0
