"""Group-sequential boundaries: how large a z statistic must be at look k of K.

Each stage is watched at planned looks (bake / interval, plus the looks of a possible
extension), and both of the judge's questions are asked again at every look:

- fail ("is the canary worse?"): checking a fixed-horizon test at every look would spend
  its error rate again and again; instead the stage's false-rollback budget ``alpha`` is
  spent across all looks by a power-family spending function, alpha * (k/K)**rho (Lan and
  DeMets). ``FAIL_SPENDING_RHO`` = 1 spends evenly (Pocock-like): on real, overdispersed
  traffic a 2x regression needs the early looks' boundaries low to be caught in three or
  four looks, and `make bench` shows healthy canaries stay far below the budget.
- pass ("is the canary within tolerance?"): acted on from the bake's last look to the end
  of the extension, with ``pass_alpha`` spent by the same function over those looks. A
  Bonferroni split would need z 3.15 at each of the 61 looks of a 10-look bake and its
  default extension; these boundaries fall from 3.08 at the bake's end to 1.95 at the
  extension's, so a stage that needs its extension, as at low traffic, keeps nearly the
  power of one test at the end.

Each look's boundary is computed exactly for the correlated statistics of a cumulative
window by recursive numerical integration (Armitage, McPherson and Rowe; Jennison and
Turnbull, ch. 19) on an even grid with Gregory's end correction at the boundary, summing
only the increments that can matter: each boundary is within 1e-3 of z of what a grid
five times finer gives, and a 3-hour bake of 1-minute looks with its extension (360
looks, both tests) takes about 3 s of one CPU.
"""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

SPENDING_RHO = 2.0  # pass side
FAIL_SPENDING_RHO = 1.0  # fail side, chosen by `make bench` (see the module docstring)
EXTENSION_SHARE = 0.1  # of a stage's alpha, kept for the looks of an extended bake
_STEP = 0.5  # grid step, in deviations of the next increment: z within 1e-3
_GREGORY = (3 / 8, 7 / 6, 23 / 24)  # end weights at the cut, last point first
_TAIL = 8.0  # sums further than this many deviations of S_k below 0 are ignored (p < 1e-15)
_KERNEL_REACH = 9.0  # an increment beyond this many deviations has p < 1e-19
_BISECTIONS = 48
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
    margin_alpha: float = 0.025  # chance of failing a canary at the fail margin, this stage

    def fail_bound(self) -> float:
        bounds = boundaries(self.alpha, self.planned, self.extra)
        return bounds[min(max(self.number, 1), len(bounds)) - 1]

    def margin_bound(self) -> float:
        """The boundary of "worse than the fail margin": its own, larger budget, as a canary
        at the margin is not a healthy one (see ``AnalysisSpec.margin_alpha``)."""
        bounds = boundaries(self.margin_alpha, self.planned, self.extra)
        return bounds[min(max(self.number, 1), len(bounds)) - 1]

    def pass_bounds(self) -> tuple[float, ...]:
        """The stage's pass boundaries, from the bake's last look to the extension's."""
        return pass_boundaries(self.pass_alpha, self.planned, self.extra)

    def pass_bound(self) -> float:
        """A pass counts from the bake's last look on; earlier looks show that boundary."""
        bounds = self.pass_bounds()
        return bounds[min(max(self.number - self.planned, 0), len(bounds) - 1)]


def spending(alpha: float, planned: int, extra: int) -> list[float]:
    """Alpha spent at each look of the fail test (not cumulative)."""
    bake_alpha = alpha * (1 - EXTENSION_SHARE) if extra else alpha
    cumulative = [bake_alpha * (k / planned) ** FAIL_SPENDING_RHO for k in range(1, planned + 1)]
    spent = [b - a for a, b in zip([0.0, *cumulative], cumulative, strict=False)]
    return spent + [(alpha - bake_alpha) / extra] * extra if extra else spent


@lru_cache(maxsize=256)
def boundaries(alpha: float, planned: int, extra: int = 0) -> tuple[float, ...]:
    """Fail boundaries for looks 1 .. planned + extra, at equal information increments."""
    planned, extra = max(1, planned), max(0, extra)
    looks = tuple(float(k) for k in range(1, planned + extra + 1))
    return crossing_bounds(tuple(spending(alpha, planned, extra)), looks)


@lru_cache(maxsize=256)
def pass_boundaries(pass_alpha: float, planned: int, extra: int = 0) -> tuple[float, ...]:
    """Pass boundaries for looks planned .. planned + extra (the looks a pass is acted on)."""
    planned, extra = max(1, planned), max(0, extra)
    last = planned + extra
    cumulative = [pass_alpha * (k / last) ** SPENDING_RHO for k in range(planned, last + 1)]
    spent = [b - a for a, b in zip([0.0, *cumulative], cumulative, strict=False)]
    return crossing_bounds(tuple(spent), tuple(float(k) for k in range(planned, last + 1)))


def crossing_bounds(spent: tuple[float, ...], information: tuple[float, ...]) -> tuple[float, ...]:
    """z boundaries b_k such that, for a null sum S of independent normal increments with
    Var S_k = information[k], the first crossing of S_k / sqrt(I_k) > b_k happens at look k
    with probability spent[k]."""
    if any(target <= 0 for target in spent):
        raise ValueError("every look must spend some of the error budget")
    bounds: list[float] = []
    grid: list[float] = []
    weights: list[float] = []  # density x quadrature weight at each grid point
    previous = 0.0
    for k, (target, info) in enumerate(zip(spent, information, strict=True)):
        spread = math.sqrt(info - previous)  # of this look's increment
        if not grid:
            cut = math.sqrt(info) * z_quantile(1 - target)
        else:
            cut = _solve(grid, weights, target, spread)
        bounds.append(cut / math.sqrt(info))
        if k + 1 == len(spent):
            break
        following = math.sqrt(information[k + 1] - info)
        points = _grid(cut, math.sqrt(info), following)
        if not grid:
            density = [
                math.exp(-s * s / (2 * info)) / math.sqrt(2 * math.pi * info) for s in points
            ]
        else:
            density = _convolve(grid, weights, points, spread)
        grid, weights, previous = points, _trapezoid(points, density), info
    return tuple(bounds)


def _grid(cut: float, deviation: float, kernel: float) -> list[float]:
    """Evenly spaced points for the density of S_k, from far below its mean up to ``cut``,
    ``_STEP`` deviations of the next increment (``kernel``) apart."""
    low = min(-_TAIL * deviation, cut - 1.0)
    count = max(4, math.ceil((cut - low) / (_STEP * kernel)) + 1)
    step = (cut - low) / (count - 1)
    return [cut - (count - 1 - i) * step for i in range(count)]


def _trapezoid(points: list[float], density: list[float]) -> list[float]:
    """Quadrature weights x density: the trapezoid rule with Gregory's end corrections at
    the cut (3/8, 7/6, 23/24), where the density stops; error O(step^4), not O(step^2).
    The far end lies in a negligible tail and needs none."""
    step = points[1] - points[0]
    weights = [f * step for f in density]
    weights[0] /= 2
    for back, factor in enumerate(_GREGORY, start=1):
        weights[-back] *= factor
    return weights


def _crossing(grid: list[float], weights: list[float], cut: float, spread: float) -> float:
    """P(S_{k-1} stays below, S_k = S_{k-1} + N(0, spread²) ends above ``cut``)."""
    first = bisect_left(grid, cut - _KERNEL_REACH * spread)  # below: no chance to cross
    return sum(weights[i] * upper_tail((cut - grid[i]) / spread) for i in range(first, len(grid)))


def _solve(grid: list[float], weights: list[float], target: float, spread: float) -> float:
    low, high = grid[0], grid[-1] + 12.0 * spread
    for _ in range(_BISECTIONS):
        middle = (low + high) / 2
        if _crossing(grid, weights, middle, spread) > target:
            low = middle
        else:
            high = middle
    return (low + high) / 2


def _convolve(
    grid: list[float], weights: list[float], points: list[float], spread: float
) -> list[float]:
    """The density of S_{k-1} + N(0, spread²) at ``points``, S_{k-1} kept below its cut."""
    scale, norm = 1 / (2 * spread * spread), 1 / (spread * math.sqrt(2 * math.pi))
    reach = _KERNEL_REACH * spread
    out = []
    for x in points:
        first, last = bisect_left(grid, x - reach), bisect_right(grid, x + reach)
        out.append(
            norm
            * sum(weights[i] * math.exp(-((x - grid[i]) ** 2) * scale) for i in range(first, last))
        )
    return out


def student_upper_tail(t: float, df: float) -> float:
    """P(T > t) for Student's t with ``df`` (any positive real) degrees of freedom."""
    if t <= 0:
        return 1 - student_upper_tail(-t, df)
    return 0.5 * _betainc(df / 2, 0.5, df / (df + t * t))


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
