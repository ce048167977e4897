"""Canary against baseline, one metric at a time: pure functions, no I/O.

A ratio metric is turned into "bad events over events, lower is better" (for a
higher-is-better metric the bad events are the misses), then two one-sided questions:

- fail: is the canary worse than the baseline by more than the fail margin (a share,
  ``fail_margin``, of the metric's tolerance)? Two tests must both cross the
  group-sequential boundary of this look (``sequential.Look``), which keeps the stage's
  false-rollback rate at its budget although the question is asked every interval: the
  exact conditional binomial test of the canary's share of bad events against no
  difference (``_excess_z``: exact at a handful of errors), and the score test against the
  fail line (``margin.py``: a canary whose true effect is inside the margin is not rolled
  back because traffic is high, as Kayenta's effect-size thresholds intend).
- pass: is the canary at most ``tolerance`` worse? The score test of ``margin.py`` must
  cross this look's pass boundary, which keeps the chance of passing a canary at the
  margin at ``pass_alpha`` over the looks a pass is acted on. The Agresti-Caffo interval
  of the difference is shown as evidence.

Every statistic is widened by the look's dispersion (``dispersion.py``): counts of real
fleets vary more than binomial, and judging them as binomial rolls back healthy canaries.

Fail wins over pass; too few events, or neither answer, is inconclusive. An optional
absolute guard fails the canary when its own rate is beyond the limit with the same
confidence, whatever the baseline does; ``judge_guard`` applies it alone (the warm-up).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from orchestrator.models.analysis import Direction, Noise, RatioMetric, ThresholdMetric

from .counts import Counts
from .dispersion import Dispersion, estimate, rare_side
from .margin import LIMIT, Margin, margin_for, within_z
from .sequential import Look, binomial_upper_tail, z_quantile
from .split import SplitCheck


class Outcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"  # the analysis could not measure: see evaluate.py

    @property
    def severity(self) -> int:
        return _SEVERITY[self]


_SEVERITY = {Outcome.PASS: 0, Outcome.INCONCLUSIVE: 1, Outcome.ERROR: 2, Outcome.FAIL: 3}


class SegmentOutcome(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    NOT_JUDGED = "not_judged"  # too few events, beyond max_values, or not measured


@dataclass(frozen=True)
class SegmentVerdict:
    """One segment value of a ratio metric (``browser=ie-11``), canary against baseline
    within it; see ``segments.py``."""

    name: str
    outcome: SegmentOutcome
    reason: str
    canary: Counts | None = None
    baseline: Counts | None = None
    statistic: float | None = None  # exact test's z, widened
    threshold: float | None = None  # its boundary after the multiplicity correction
    fail_statistic: float | None = None  # z of "worse than the fail margin", widened
    fail_threshold: float | None = None
    dispersion: float | None = None

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "outcome": self.outcome.value}
        data["reason"] = self.reason
        for name in ("canary", "baseline"):
            counts = getattr(self, name)
            if counts is not None:
                data[name] = {"errors": counts.errors, "total": counts.total}
        for name in ("statistic", "threshold", "fail_statistic", "fail_threshold", "dispersion"):
            value = getattr(self, name)
            if value is not None:
                data[name] = round(value, 4)
        return data


@dataclass(frozen=True)
class MetricVerdict:
    """One metric's verdict and the evidence a person needs to check it."""

    metric: str
    outcome: Outcome
    reason: str
    canary: Counts | None = None
    baseline: Counts | None = None
    canary_rate: float | None = None
    baseline_rate: float | None = None
    effect: float | None = None  # canary - baseline, in the bad direction
    interval: tuple[float, float] | None = None  # of the effect, at the pass confidence
    statistic: float | None = None  # z of "canary worse than baseline"
    threshold: float | None = None  # the boundary the statistic must cross to fail
    fail_statistic: float | None = None  # z of "worse than the fail margin" (score test)
    fail_threshold: float | None = None  # the boundary fail_statistic must cross
    fail_margin: float | None = None  # the effect beyond which a canary may fail
    margin: float | None = None  # the worst effect that may still pass
    pass_statistic: float | None = None  # z of "within the tolerance" (score test)
    pass_threshold: float | None = None  # the boundary it must cross to pass
    looks_to_pass: int | None = None  # inconclusive: looks a pass needs at this traffic
    dispersion: float | None = None  # variance factor over binomial the tests used
    dispersion_df: float | None = None  # its degrees of freedom (inf: binomial)
    dispersion_source: str | None = None  # where it came from
    intervals: int | None = None  # intervals the counts came in
    warm_up: bool = False  # within initial_delay: only the absolute limit is judged
    noise_kappa: float | None = None  # the comparison's own kappa, from this stage's intervals
    noise_df: int | None = None
    noisier: bool = False  # the stage was far noisier than the prior predicted
    value: float | None = None  # threshold metrics
    critical: bool = False
    transient: bool = False  # an error that may go away at the next look
    measured: bool = True  # False when the provider could not answer
    judged: Outcome | None = None  # the outcome before a limit tolerated it
    segments: tuple[SegmentVerdict, ...] = ()  # plans with analysis.segments only

    def as_dict(self) -> dict[str, Any]:
        # By hand, not dataclasses.asdict: this runs at every look of every replayed
        # rollout, and asdict's deep copies were a fifth of a replay's time.
        data: dict[str, Any] = {}
        for name in _VERDICT_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, Counts):
                value = {"errors": value.errors, "total": value.total}
            elif isinstance(value, Outcome):
                value = value.value
            elif name == "segments":
                if not value:
                    continue
                value = [segment.as_dict() for segment in value]
            elif isinstance(value, tuple):
                value = list(value)
            data[name] = value
        if data.get("dispersion_df") == math.inf:
            del data["dispersion_df"]  # JSON has no infinity: absent means binomial
        for flag in ("warm_up", "noisier"):
            if not data.get(flag):
                data.pop(flag, None)
        return data


@dataclass(frozen=True)
class Verdict:
    """The overall verdict; ``canary``/``baseline`` are the first ratio metric's counts."""

    outcome: Outcome
    reason: str
    canary: Counts
    baseline: Counts
    metrics: tuple[MetricVerdict, ...] = field(default_factory=tuple)
    look: int = 0
    split: SplitCheck | None = None  # the served share against the weight (split.py)

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome.value,
            "reason": self.reason,
            "canary": asdict(self.canary),
            "baseline": asdict(self.baseline),
            "look": self.look,
            "metrics": [metric.as_dict() for metric in self.metrics],
            "split": self.split.as_dict() if self.split is not None else None,
        }


_VERDICT_FIELDS = tuple(f.name for f in fields(MetricVerdict))


def judge_ratio(
    metric: RatioMetric,
    canary: Counts,
    baseline: Counts,
    look: Look,
    *,
    intervals: tuple[tuple[Counts, Counts], ...] = (),
    noise: Noise | None = None,
    fail_margin: float = 0.0,
    widen: bool = True,
) -> MetricVerdict:
    """``intervals``: the (canary, baseline) counts of each interval the totals came from;
    ``noise``: the stable fleet's, from preflight; ``fail_margin``: the share of the
    tolerance the canary must be worse by to fail; ``widen=False`` assumes binomial noise."""
    bad_canary, bad_baseline = _bad_events(metric.direction, canary, baseline)
    evidence: dict[str, Any] = {
        "canary": canary,
        "baseline": baseline,
        "canary_rate": canary.rate,
        "baseline_rate": baseline.rate,
        "critical": metric.critical,
        "intervals": len(intervals) or None,
    }
    fail_at = look.fail_bound()
    guard = _guard(metric, bad_canary, fail_at)
    if canary.total < metric.min_samples or baseline.total < metric.min_samples:
        if guard:
            return MetricVerdict(metric.name, Outcome.FAIL, guard, **evidence)
        return MetricVerdict(
            metric.name,
            Outcome.INCONCLUSIVE,
            f"too few events: canary {canary.total}, baseline {baseline.total}, "
            f"need {metric.min_samples} each",
            **evidence,
        )
    spread_of = _dispersion(metric.direction, canary, baseline, intervals, noise, widen)
    tolerance_line = margin_for(metric.tolerance, metric.direction, baseline.rate)
    fail_line = _scaled(tolerance_line, fail_margin)
    margin = metric.tolerance.margin(baseline.rate)  # relative to the rate as written
    effect = bad_canary.rate - bad_baseline.rate
    statistic = spread_of.widen(_excess_z(bad_canary, bad_baseline))
    fail_statistic = (
        spread_of.widen(-within_z(bad_canary, bad_baseline, fail_line)) if fail_margin else None
    )
    within = spread_of.widen(within_z(bad_canary, bad_baseline, tolerance_line))
    spread = _spread(bad_canary, bad_baseline) * math.sqrt(spread_of.phi)
    pass_at = look.pass_bound()
    lower, upper = effect - pass_at * spread, effect + pass_at * spread
    evidence |= {
        "effect": effect,
        "interval": (lower, upper),
        "statistic": _stored(statistic),
        "threshold": fail_at,
        "fail_statistic": None if fail_statistic is None else _stored(fail_statistic),
        "fail_threshold": look.margin_bound() if fail_margin else None,
        "fail_margin": margin * fail_margin if fail_margin else None,
        "margin": margin,
        "pass_statistic": _stored(within),
        "pass_threshold": pass_at,
        "dispersion": spread_of.phi if spread_of.known else None,
        "dispersion_df": spread_of.df if spread_of.known else None,
        "dispersion_source": spread_of.source,
        "noise_kappa": spread_of.stage_kappa,
        "noise_df": spread_of.stage_df or None,
        "noisier": spread_of.noisier,
    }
    worse = "higher" if metric.direction is Direction.LOWER else "lower"
    summary = (
        f"canary {canary.rate:.4%} vs baseline {baseline.rate:.4%} "
        f"({canary.errors}/{canary.total} vs {baseline.errors}/{baseline.total})"
        + (f", dispersion {spread_of.phi:.2f}" if spread_of.phi > 1 else "")
    )
    margin_at = look.margin_bound()
    beyond = fail_statistic is None or fail_statistic > margin_at
    if statistic > fail_at and beyond:
        reason = f"{metric.name} {worse} than baseline: z {statistic:.2f} > {fail_at:.2f}"
        if fail_statistic is not None:
            reason += (
                f", and by more than {margin * fail_margin:.4%}: "
                f"z {fail_statistic:.2f} > {margin_at:.2f}"
            )
        return MetricVerdict(metric.name, Outcome.FAIL, f"{reason}; {summary}", **evidence)
    if guard:
        return MetricVerdict(metric.name, Outcome.FAIL, guard, **evidence)
    if within > pass_at:
        reason = (
            f"{metric.name} within {margin:.4%} of baseline: "
            f"z {within:.2f} > {pass_at:.2f} (bound {upper:+.4%}); "
        )
        return MetricVerdict(metric.name, Outcome.PASS, reason + summary, **evidence)
    # The exact test's floor is no measurement: say what it means rather than print it.
    floor = statistic <= spread_of.widen(-LIMIT)
    shown = "far below 0, no sign of worse" if floor else f"{statistic:.2f}"
    reason = (
        f"{metric.name} not yet certain: z {shown} (fails above {fail_at:.2f}), "
        f"within-tolerance z {within:.2f} (passes above {pass_at:.2f}); "
    )
    looks = _looks_to_pass(within, look)
    if looks is None:
        reason += "as measured it is outside the tolerance; "
    else:
        reason += (
            f"at this traffic a pass needs about {looks} looks, "
            f"the stage has {look.planned + look.extra}; "
        )
    evidence["looks_to_pass"] = looks
    return MetricVerdict(metric.name, Outcome.INCONCLUSIVE, reason + summary, **evidence)


def judge_guard(metric: RatioMetric, canary: Counts, baseline: Counts, look: Look) -> MetricVerdict:
    """The warm-up's verdict: only the absolute limit, at the first look's confidence."""
    bad_canary, _ = _bad_events(metric.direction, canary, baseline)
    evidence: dict[str, Any] = {
        "canary": canary,
        "baseline": baseline,
        "canary_rate": canary.rate,
        "baseline_rate": baseline.rate,
        "critical": metric.critical,
        "warm_up": True,
    }
    guard = _guard(metric, bad_canary, look.fail_bound())
    if guard:
        return MetricVerdict(metric.name, Outcome.FAIL, guard, **evidence)
    reason = f"{metric.name}: warming up, only its limit is judged"
    return MetricVerdict(metric.name, Outcome.INCONCLUSIVE, reason, **evidence)


def _dispersion(
    direction: Direction,
    canary: Counts,
    baseline: Counts,
    intervals: tuple[tuple[Counts, Counts], ...],
    noise: Noise | None,
    widen: bool,
) -> Dispersion:
    if not widen:
        return Dispersion(1.0, math.inf, "binomial (analysis.dispersion)")
    # The rarer class is the same whichever way the metric is written: count on it.
    flipped, _, _ = rare_side(canary, baseline)
    return estimate(intervals, noise, flipped=flipped)


def _scaled(line: Margin, share: float) -> Margin:
    """``share`` of the way from "no difference" to the tolerance line."""
    return Margin(1 + share * (line.slope - 1), share * line.offset)


def _looks_to_pass(within: float, look: Look) -> int | None:
    """How many looks of this stage a pass needs if the canary stays as measured: the
    within-tolerance z grows as the square root of the events, so of the looks; each
    look's own pass boundary applies (the last one beyond the schedule). ``None`` when the
    canary leans outside the tolerance (more events alone will not pass it)."""
    if within <= 0:
        return None
    number = max(look.number, 1)
    bounds = look.pass_bounds()
    for offset, bound in enumerate(bounds):
        at = look.planned + offset
        if at > number and within * math.sqrt(at / number) > bound:
            return at
    needed = number * (bounds[-1] / within) ** 2 if within > 1e-3 else _MANY_LOOKS
    return max(look.planned + len(bounds), math.ceil(min(needed, _MANY_LOOKS)))


_MANY_LOOKS = 1e6  # a canary a hair inside the margin: say "very many", not infinity


def judge_threshold(metric: ThresholdMetric, value: float | None) -> MetricVerdict:
    base: dict[str, Any] = {"critical": metric.critical, "value": value}
    if value is None or not math.isfinite(value):
        return MetricVerdict(metric.name, Outcome.INCONCLUSIVE, f"{metric.name}: no data", **base)
    if metric.max is not None and value > metric.max:
        reason = f"{metric.name} {value:g} above max {metric.max:g}"
        return MetricVerdict(metric.name, Outcome.FAIL, reason, threshold=metric.max, **base)
    if metric.min is not None and value < metric.min:
        reason = f"{metric.name} {value:g} below min {metric.min:g}"
        return MetricVerdict(metric.name, Outcome.FAIL, reason, threshold=metric.min, **base)
    return MetricVerdict(
        metric.name, Outcome.PASS, f"{metric.name} {value:g} within bounds", **base
    )


def _bad_events(direction: Direction, canary: Counts, baseline: Counts) -> tuple[Counts, Counts]:
    if direction is Direction.LOWER:
        return canary, baseline
    return (
        Counts(canary.total - canary.errors, canary.total),
        Counts(baseline.total - baseline.errors, baseline.total),
    )


def _guard(metric: RatioMetric, bad_canary: Counts, z: float) -> str | None:
    """The canary's own rate beyond ``limit`` with confidence (Wilson score lower bound)."""
    if metric.limit is None or bad_canary.total == 0:
        return None
    bad_limit = metric.limit if metric.direction is Direction.LOWER else 1 - metric.limit
    n, p = bad_canary.total, bad_canary.rate
    centre = p + z * z / (2 * n)
    spread = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    lower = (centre - spread) / (1 + z * z / n)
    if lower <= bad_limit:
        return None
    side = "above" if metric.direction is Direction.LOWER else "below"
    rate = bad_canary.rate if metric.direction is Direction.LOWER else 1 - bad_canary.rate
    return f"{metric.name} of the canary {rate:.4%} is {side} its limit {metric.limit:.4%}"


def _excess_z(canary: Counts, baseline: Counts) -> float:
    """How surprising the canary's share of all bad events is if both arms are alike.

    Conditional on the bad events of both arms, the canary's are (nearly) binomial with the
    canary's share of the traffic: the exact tail of that binomial (Fisher's test with a
    binomial tail, slightly conservative) stays valid for a handful of errors and a baseline
    without any, where a normal approximation would roll back on a single error. When bad
    events are the majority (misses of a conversion), the rarer good events are counted.
    Returned on the z scale, so it can meet the sequential boundaries.
    """
    share = canary.total / (canary.total + baseline.total)
    bad = canary.errors + baseline.errors
    good = canary.total + baseline.total - bad
    if bad <= good:
        k, n, p = canary.errors, bad, share
    else:  # too few good events in the canary: the lower tail of its good events,
        # computed as the upper tail of the others' (no 1 - tail that cancels to 0)
        k, n, p = good - (canary.total - canary.errors), good, 1 - share
    tail = _mid_p(k, n, p)
    if tail >= 1:
        return -LIMIT
    if tail > 1e-12:
        return z_quantile(1 - tail)
    if tail > 0:  # beyond double precision of 1 - tail: the normal tail's asymptotic inverse
        log_inverse = -math.log(tail)
        return math.sqrt(2 * log_inverse - math.log(4 * math.pi * log_inverse))
    # The tail underflowed: far beyond any boundary; the normal score keeps its size, so
    # that a large dispersion divides a large number, not a ceiling.
    return max(37.0, (k - 0.5 - n * p) / math.sqrt(n * p * (1 - p)))


def _stored(z: float) -> float:
    """Statistics are decided on as computed and stored within +-1,000 (finite JSON)."""
    return max(-1000.0, min(1000.0, z))


def _mid_p(k: int, n: int, p: float) -> float:
    """P(X > k) + P(X = k) / 2: the exact tail without its conservative half-step (at 20
    errors the full step costs a z of about 0.4; mid-p keeps the level close to nominal)."""
    return 0.5 * (binomial_upper_tail(k, n, p) + binomial_upper_tail(k + 1, n, p))


def _spread(canary: Counts, baseline: Counts) -> float:
    """Agresti-Caffo standard error: one pseudo-success and one pseudo-failure per arm."""
    pc = (canary.errors + 1) / (canary.total + 2)
    pb = (baseline.errors + 1) / (baseline.total + 2)
    return math.sqrt(pc * (1 - pc) / (canary.total + 2) + pb * (1 - pb) / (baseline.total + 2))
