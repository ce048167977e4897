"""Seeded counts for the analysis tests (a helper module, not a conftest): binomial draws,
and fleets whose rate per interval varies by a lognormal factor as real fleets do."""

from __future__ import annotations

import math
import random

from orchestrator.analysis import Counts


def binomial(rng: random.Random, n: int, p: float) -> int:
    """Exact inversion for small means, the normal approximation for large ones."""
    if n <= 0 or p <= 0:
        return 0
    if p >= 1:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1 - p)
    mean = n * p
    if mean > 100:
        return min(n, max(0, round(rng.gauss(mean, math.sqrt(mean * (1 - p))))))
    u, k = rng.random(), 0
    probability = (1 - p) ** n
    cumulative = probability
    while u > cumulative and k < n:
        probability *= (n - k) / (k + 1) * p / (1 - p)
        k += 1
        cumulative += probability
    return k


def noisy_rate(rng: random.Random, rate: float, s: float) -> float:
    """``rate`` times a lognormal factor of log-sd ``s`` and mean 1 (``s`` 0: ``rate``)."""
    return min(1.0, rate * math.exp(rng.gauss(0, s) - s * s / 2)) if s else rate


def interval(rng: random.Random, total: int, rate: float, s: float = 0.0) -> Counts:
    """One fleet's counts in one interval."""
    return Counts(binomial(rng, total, noisy_rate(rng, rate, s)), total)
