"""Is the canary within its tolerance? A score test against the worst canary that passes.

The tolerance allows the larger of ``relative`` x the baseline's rate (as written) and
``absolute`` rate points. On bad events (errors; for a higher-is-better metric the misses)
the worst canary that may pass is a line in the baseline's rate,
``q_canary = slope * q_baseline + offset``:

- lower is better, relative binds: ``slope = 1 + relative``, ``offset = 0``;
- higher is better, relative binds: the good rate may drop to ``(1 - relative)`` of the
  baseline's, i.e. ``slope = 1 - relative``, ``offset = relative``;
- absolute binds: ``slope = 1``, ``offset = absolute``.

The statistic is the Farrington-Manning score test of that line: its variance is taken at
the two rates that best fit the counts *on* the line (the restricted maximum likelihood),
not at the observed ones. A Wald interval estimates its spread from the same counts as the
effect, so at low counts a canary that happens to show few errors also shows a small spread
and passes too often (8.5% instead of 5% at the margin, 1,000 canary requests at 1%); the
score test stays near its level (3.9% to 5.2% at the margin across error-rate checks, and
up to 5.5% for a conversion with a handful of conversions a look, where the normal
approximation is slightly liberal), and it accounts for the baseline's own noise in a
relative tolerance. Which of the two tolerances binds is read off the observed baseline rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from orchestrator.models.analysis import Direction, Tolerance

from .counts import Counts

LIMIT = 40.0
_ITERATIONS = 52  # the rate to 2e-16 of [0, 1]: double precision
_EDGE = 1e-12


@dataclass(frozen=True)
class Margin:
    """The worst canary that may pass, on bad-event rates: slope * baseline + offset."""

    slope: float
    offset: float

    def at(self, baseline_rate: float) -> float:
        return self.slope * baseline_rate + self.offset


def margin_for(tolerance: Tolerance, direction: Direction, baseline_rate: float) -> Margin:
    """``baseline_rate`` is as written (errors, or conversions for higher-is-better)."""
    relative_binds = tolerance.relative * baseline_rate >= tolerance.absolute
    if relative_binds and tolerance.relative > 0:
        if direction is Direction.LOWER:
            return Margin(1 + tolerance.relative, 0.0)
        return Margin(max(0.0, 1 - tolerance.relative), tolerance.relative)
    return Margin(1.0, tolerance.absolute)


def within_z(canary: Counts, baseline: Counts, margin: Margin) -> float:
    """Score z of "the canary is better than the margin" (bad-event counts); > 0 leans in.

    Nothing to judge by (an empty arm, or no bad
    events on either side and a margin of zero) gives zero or less: never a pass, as every
    pass boundary is above zero."""
    if canary.total <= 0 or baseline.total <= 0:
        return -LIMIT
    if margin.slope <= 0:  # a drop of 100% or more is tolerated: only the canary counts
        worst = min(margin.offset, 1.0)
        if worst >= 1:
            return LIMIT
        return (worst - canary.rate) / math.sqrt(worst * (1 - worst) / canary.total)
    gap = margin.at(baseline.rate) - canary.rate
    q_baseline = _restricted_baseline(canary, baseline, margin)
    q_canary = min(1.0, max(0.0, margin.at(q_baseline)))
    variance = (
        q_canary * (1 - q_canary) / canary.total
        + margin.slope**2 * q_baseline * (1 - q_baseline) / baseline.total
    )
    if variance <= 0:
        return -LIMIT
    # Not clamped: at high traffic the dispersion divides this, and a ceiling here would
    # become a ceiling on the evidence (the judge clamps what it stores).
    return gap / math.sqrt(variance)


def _restricted_baseline(canary: Counts, baseline: Counts, margin: Margin) -> float:
    """The baseline rate that, with the canary's on the margin line, best fits the counts.

    The log likelihood is concave along the line, so its derivative is found by bisection
    between the rates that keep both arms within [0, 1]."""
    slope, offset = margin.slope, margin.offset  # slope > 0 here
    low = max(0.0, -offset / slope)
    high = min(1.0, (1 - offset) / slope)
    if high <= low:
        return low
    low, high = low + _EDGE, high - _EDGE
    if high <= low:
        return (low + high) / 2

    def slope_of_likelihood(q: float) -> float:
        p = slope * q + offset
        return (
            slope * (canary.errors / p - (canary.total - canary.errors) / (1 - p))
            + baseline.errors / q
            - (baseline.total - baseline.errors) / (1 - q)
        )

    if slope_of_likelihood(low) <= 0:
        return low
    if slope_of_likelihood(high) >= 0:
        return high
    for _ in range(_ITERATIONS):
        middle = (low + high) / 2
        if slope_of_likelihood(middle) > 0:
            low = middle
        else:
            high = middle
    return (low + high) / 2
