"""Seeded counts for the analysis tests (a helper module, not a conftest): binomial draws,
and fleets whose rate per interval varies by a lognormal factor as real fleets do."""

from __future__ import annotations

import math
import random

from benchmarks.judge import binomial  # the benchmark's sampler: one copy of it
from orchestrator.analysis import Counts

__all__ = ["binomial", "interval", "noisy_rate"]


def noisy_rate(rng: random.Random, rate: float, s: float) -> float:
    """``rate`` times a lognormal factor of log-sd ``s`` and mean 1 (``s`` 0: ``rate``)."""
    return min(1.0, rate * math.exp(rng.gauss(0, s) - s * s / 2)) if s else rate


def interval(rng: random.Random, total: int, rate: float, s: float = 0.0) -> Counts:
    """One fleet's counts in one interval."""
    return Counts(binomial(rng, total, noisy_rate(rng, rate, s)), total)
