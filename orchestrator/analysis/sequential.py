"""Group-sequential boundaries: how large a z statistic must be at look k of K.

Each stage is watched at planned looks (bake / interval, plus the looks of a possible
extension). Checking a fixed-horizon test at every look would spend its error rate again
and again; instead the stage's false-rollback budget ``alpha`` is spent across the looks
by a power-family spending function, alpha * (k/K)**rho (Lan and DeMets), and each look's
boundary is computed exactly for the correlated statistics of a cumulative window by
recursive numerical integration (Armitage, McPherson and Rowe; Jennison and Turnbull,
ch. 19). ``rho`` = 2 spends little at the first looks (a 2x regression is caught in a
few looks anyway) and keeps the last boundaries close to the fixed-sample one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

SPENDING_RHO = 2.0
EXTENSION_SHARE = 0.1  # of a stage's alpha, kept for the looks of an extended bake
_STEP = 0.1  # grid step of the integration, in standard deviations of one increment
_TAIL = 9.0  # increments further than this from the boundary are ignored (p < 1e-18)
_NORMAL = NormalDist()


def z_quantile(p: float) -> float:
    return _NORMAL.inv_cdf(p)


def upper_tail(z: float) -> float:
    return 0.5 * math.erfc(z / math.sqrt(2))


@dataclass(frozen=True)
class Look:
    """Where a look sits in its stage's schedule, and the error budgets of the stage."""

    number: int  # 1-based, within the stage
    planned: int  # looks within the bake
    extra: int = 0  # looks an extension may add
    alpha: float = 0.005  # false-rollback budget of the stage
    pass_alpha: float = 0.05  # chance of passing a canary worse than the tolerance

    def fail_bound(self) -> float:
        bounds = boundaries(self.alpha, self.planned, self.extra)
        return bounds[min(max(self.number, 1), len(bounds)) - 1]

    def pass_bound(self) -> float:
        """Pass is acted on at the bake's last look and at extension looks: Bonferroni."""
        return z_quantile(1 - self.pass_alpha / (1 + self.extra))


def spending(alpha: float, planned: int, extra: int) -> list[float]:
    """Alpha spent at each look (not cumulative)."""
    bake_alpha = alpha * (1 - EXTENSION_SHARE) if extra else alpha
    cumulative = [bake_alpha * (k / planned) ** SPENDING_RHO for k in range(1, planned + 1)]
    spent = [b - a for a, b in zip([0.0, *cumulative], cumulative, strict=False)]
    return spent + [(alpha - bake_alpha) / extra] * extra if extra else spent


@lru_cache(maxsize=256)
def boundaries(alpha: float, planned: int, extra: int = 0) -> tuple[float, ...]:
    """z boundaries for looks at equal information increments; exact up to grid error."""
    planned, extra = max(1, planned), max(0, extra)
    spent = spending(alpha, planned, extra)
    first = z_quantile(1 - spent[0])
    bounds = [first]
    # Density of S_k (sum of k unit normal increments) below its boundary, on a grid.
    grid = _grid(first - _TAIL, first)
    density = [math.exp(-s * s / 2) / math.sqrt(2 * math.pi) for s in grid]
    for k in range(2, len(spent) + 1):
        target = spent[k - 1]
        cut = _solve(grid, density, target)
        bounds.append(cut / math.sqrt(k))
        next_grid = _grid(cut - _TAIL * math.sqrt(k), cut)
        density = _convolve(grid, density, next_grid)
        grid = next_grid
    return tuple(bounds)


def _grid(low: float, high: float) -> list[float]:
    count = max(2, math.ceil((high - low) / _STEP) + 1)
    step = (high - low) / (count - 1)
    return [low + i * step for i in range(count)]


def _crossing(grid: list[float], density: list[float], cut: float) -> float:
    """P(S_{k-1} stays below, S_k = S_{k-1} + N(0,1) ends above ``cut``)."""
    step = grid[1] - grid[0]
    total = sum(f * upper_tail(cut - s) for s, f in zip(grid, density, strict=True))
    ends = density[0] * upper_tail(cut - grid[0]) + density[-1] * upper_tail(cut - grid[-1])
    return (total - ends / 2) * step


def _solve(grid: list[float], density: list[float], target: float) -> float:
    if target <= 0:
        return math.inf
    low, high = grid[-1] - 3.0, grid[-1] + 12.0
    for _ in range(60):
        middle = (low + high) / 2
        if _crossing(grid, density, middle) > target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _convolve(grid: list[float], density: list[float], points: list[float]) -> list[float]:
    step = grid[1] - grid[0]
    norm = step / math.sqrt(2 * math.pi)
    weights = [f * norm for f in density]
    weights[0] /= 2  # trapezoid rule: the density stops at the boundary
    weights[-1] /= 2
    out = []
    for x in points:
        out.append(
            sum(w * math.exp(-((x - s) ** 2) / 2) for s, w in zip(grid, weights, strict=True))
        )
    return out


def binomial_upper_tail(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p): the regularized incomplete beta I_p(k, n-k+1)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    return _betainc(k, n - k + 1, p)


def _betainc(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta by Lentz's continued fraction (Numerical Recipes 6.4)."""
    if x <= 0 or x >= 1:
        return 0.0 if x <= 0 else 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1) / (a + b + 2):
        return math.exp(log_front) * _continued_fraction(a, b, x) / a
    return 1 - math.exp(log_front) * _continued_fraction(b, a, 1 - x) / b


def _continued_fraction(a: float, b: float, x: float) -> float:
    tiny, qab, qap, qam = 1e-300, a + b, a + 1, a - 1
    c, d = 1.0, 1 - qab * x / qap
    d = 1 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        for numerator in (
            m * (b - m) * x / ((qam + m2) * (a + m2)),
            -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2)),
        ):
            d = 1 + numerator * d
            d = 1 / (d if abs(d) > tiny else tiny)
            c = 1 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1) < 1e-12:
            break
    return h
