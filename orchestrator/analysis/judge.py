"""Canary against baseline over the same window.

Pass needs confidence that the canary's error rate is at most ``tolerance`` above the
baseline's; fail needs confidence that it is more than ``tolerance`` above. Anything in
between, or too few requests, is inconclusive: the workflow then keeps stable traffic safe.
The interval is Agresti-Caffo (one pseudo-success and one pseudo-failure per arm), which
behaves at error rates near zero where the plain Wald interval collapses.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from .counts import Counts

# One-sided 99% quantile of the normal distribution. A strict level per look keeps repeated
# looks during a bake from inflating false rollbacks much (a sequential test is stricter still).
Z_ONE_SIDED_99 = 2.3263


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    reason: str
    canary: Counts
    baseline: Counts
    difference: float = 0.0
    lower: float = 0.0
    upper: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["outcome"] = self.outcome.value
        return data


def judge(canary: Counts, baseline: Counts, *, min_samples: int, tolerance: float) -> Verdict:
    if canary.total < min_samples or baseline.total < min_samples:
        return Verdict(
            Outcome.INCONCLUSIVE,
            f"too few requests: canary {canary.total}, baseline {baseline.total}, "
            f"need {min_samples} each",
            canary,
            baseline,
        )
    lower, difference, upper = _difference_interval(canary, baseline)
    bounds = f"canary - baseline = {difference:+.4f} (99% bounds {lower:+.4f} .. {upper:+.4f})"
    if lower > tolerance:
        outcome, reason = Outcome.FAIL, f"error rate worse than baseline beyond {tolerance}: "
    elif upper <= tolerance:
        outcome, reason = Outcome.PASS, f"error rate within {tolerance} of baseline: "
    else:
        outcome, reason = Outcome.INCONCLUSIVE, "not yet certain either way: "
    return Verdict(outcome, reason + bounds, canary, baseline, difference, lower, upper)


def _difference_interval(canary: Counts, baseline: Counts) -> tuple[float, float, float]:
    pc = (canary.errors + 1) / (canary.total + 2)
    pb = (baseline.errors + 1) / (baseline.total + 2)
    spread = math.sqrt(pc * (1 - pc) / (canary.total + 2) + pb * (1 - pb) / (baseline.total + 2))
    difference = pc - pb
    return difference - Z_ONE_SIDED_99 * spread, difference, difference + Z_ONE_SIDED_99 * spread
