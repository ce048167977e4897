"""Canary against baseline within each segment (``browser=ie-11``): a release that breaks
one small browser fails although the totals look fine.

Each value of a declared segment with at least ``min_samples`` requests in both arms is
tested as the whole metric is (``judge.py``): it fails only when the exact conditional
test of the canary's share of bad events *and* the score test against the fail line (a
share ``fail_margin`` of the tolerance, at the segment's own baseline rate) both cross
their boundary, so a segment must be credibly worse than its tolerance allows, not merely
different.

The false-rollback budget is shared. When a plan declares segments, each segmented
metric's own test keeps ``1 - SEGMENT_SHARE`` of the stage's ``alpha`` and every segment
of every metric shares the rest by Holm's step-down: the most extreme segment is held to
``alpha_s / m`` for ``m`` judged segments, the next to ``alpha_s / (m - 1)``, and so on,
the same for ``margin_alpha``. So twenty segments do not make twenty chances of a false
rollback. Divisors are rounded up to a power of two: the boundaries are computed for few
budgets and cached, at the price of at most half of a segment's share.

Overdispersion: a segment's statistics are widened by the metric's dispersion of the
look, or by the segment's own (Pearson's X² of its intervals) when that is known and
larger; never below binomial.

A value too small to judge, beyond ``max_values``, or not measured is listed as not
judged, never as passed. Only a failing segment changes the metric's verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from orchestrator.models.analysis import AnalysisSpec, Direction, Noise, RatioMetric

from .counts import Counts
from .dispersion import Dispersion, estimate, rare_side
from .judge import (
    MetricVerdict,
    Outcome,
    SegmentOutcome,
    SegmentVerdict,
    _bad_events,
    _dispersion,
    _excess_z,
    _scaled,
    _stored,
)
from .margin import margin_for, within_z
from .providers.base import Measurement
from .sequential import Look, boundaries

SEGMENT_SHARE = 0.5  # of the stage's alpha, for all segments of all metrics together


@dataclass
class _Candidate:
    metric: int  # index into the verdicts
    name: str
    canary: Counts
    baseline: Counts
    statistic: float
    fail_statistic: float | None  # computed only where the exact test could fail
    dispersion: float
    spread: Dispersion
    line: Any  # the fail line (margin.Margin) at the segment's baseline rate
    bad: tuple[Counts, Counts]  # bad events of each arm (misses of a conversion)


def metric_look(spec: AnalysisSpec, metric: Any, look: Look) -> Look:
    """The look a metric's own test uses: its alpha shrinks by the segments' share when
    the metric is cut by segments."""
    if isinstance(metric, RatioMetric) and spec.segmented(metric.name):
        return replace(look, alpha=look.alpha * (1 - SEGMENT_SHARE))
    return look


def judge_segments(
    spec: AnalysisSpec,
    verdicts: Sequence[MetricVerdict],
    measured: Mapping[tuple[str, str], Measurement],
    arms: tuple[str, str],
    look: Look,
    noise: Mapping[str, Noise],
    warm_up: bool,
) -> list[MetricVerdict]:
    """The metric verdicts with their segments judged (one Holm family for all); counts
    the judge cannot handle leave the segments not judged, never an exception."""
    if not spec.segments or warm_up:
        return list(verdicts)
    try:
        return _judge_all(spec, verdicts, measured, arms, look, noise)
    except (ArithmeticError, ValueError) as exc:
        why = f"segments could not be judged: {exc!r}"
        out = []
        for verdict in verdicts:
            cut = spec.segmented(verdict.metric)
            if cut and verdict.canary is not None:
                unknown = tuple(_not_judged(f"{s.by}=*", why) for s in cut)
                verdict = _unmeasured(replace(verdict, segments=unknown), why)
            out.append(verdict)
        return out


def _unmeasured(verdict: MetricVerdict, why: str) -> MetricVerdict:
    """A declared cut that could not be measured is missing evidence: the totals may still
    fail the metric, but they alone never pass it (a broken small browser would promote)."""
    if verdict.outcome is not Outcome.PASS:
        return verdict
    reason = f"{verdict.metric}: passes in total, but {why}: not passed without them"
    return replace(verdict, outcome=Outcome.INCONCLUSIVE, reason=reason)


def _judge_all(
    spec: AnalysisSpec,
    verdicts: Sequence[MetricVerdict],
    measured: Mapping[tuple[str, str], Measurement],
    arms: tuple[str, str],
    look: Look,
    noise: Mapping[str, Noise],
) -> list[MetricVerdict]:
    metrics = spec.judged_metrics()
    listed: dict[int, list[SegmentVerdict]] = {}
    candidates: list[_Candidate] = []
    for index, (metric, verdict) in enumerate(zip(metrics, verdicts, strict=True)):
        if not isinstance(metric, RatioMetric) or not spec.segmented(metric.name):
            continue
        if verdict.outcome is Outcome.ERROR or verdict.canary is None:
            continue
        canary, baseline = measured[metric.name, arms[0]], measured[metric.name, arms[1]]
        listed[index] = []
        found = _candidates(metric, index, canary, baseline, look, noise, spec, listed[index])
        candidates.extend(found)
    failed = _holm(candidates, look)
    out = list(verdicts)
    for index, segments in listed.items():
        metric = metrics[index]
        assert isinstance(metric, RatioMetric)  # only ratio metrics are listed
        mine = [c for c in candidates if c.metric == index]
        judged = [_judged(metric, c, failed.get(id(c)), look) for c in mine]
        ordered = tuple(sorted(judged, key=_order) + segments)
        out[index] = _with_segments(out[index], metric, ordered)
        missing = [s for s in segments if s.name.endswith("=*")]
        if missing:
            out[index] = _unmeasured(out[index], missing[0].reason.partition(": ")[2])
    return out


def _candidates(
    metric: RatioMetric,
    index: int,
    canary: Measurement,
    baseline: Measurement,
    look: Look,
    noise: Mapping[str, Noise],
    spec: AnalysisSpec,
    not_judged: list[SegmentVerdict],
) -> list[_Candidate]:
    from .evaluate import paired

    if canary.segments is None or baseline.segments is None:
        why = canary.segments_missing or baseline.segments_missing or "no segment counts"
        for segment in spec.segmented(metric.name):
            not_judged.append(_not_judged(f"{segment.by}=*", f"segments not measured: {why}"))
        return []
    whole = paired(canary, baseline)
    assert canary.counts is not None and baseline.counts is not None
    shared = _dispersion(
        metric.direction,
        canary.counts,
        baseline.counts,
        whole,
        noise.get(metric.name),
        spec.dispersion == "estimate",
    )
    minimum: dict[str, int] = {s.by: s.min_samples for s in spec.segmented(metric.name)}
    found: list[_Candidate] = []
    for name in sorted(set(canary.segments) | set(baseline.segments)):
        ours = canary.segments.get(name, Measurement(counts=Counts(0, 0)))
        theirs = baseline.segments.get(name, Measurement(counts=Counts(0, 0)))
        c, b = ours.counts or Counts(0, 0), theirs.counts or Counts(0, 0)
        need = minimum.get(name.partition("=")[0], 1)
        if c.total < need or b.total < need:
            reason = f"too few requests: canary {c.total}, baseline {b.total}, need {need} each"
            not_judged.append(_not_judged(name, reason, c, b))
            continue
        spread = _widest(shared, paired(ours, theirs), c, b, spec.dispersion == "estimate")
        bad_c, bad_b = _bad_events(metric.direction, c, b)
        line = _scaled(margin_for(metric.tolerance, metric.direction, b.rate), spec.fail_margin)
        found.append(
            _Candidate(
                index,
                name,
                c,
                b,
                spread.widen(_excess_z(bad_c, bad_b)),
                None if spec.fail_margin else math.inf,
                spread.phi if spread.known else math.nan,
                spread,
                line,
                (bad_c, bad_b),
            )
        )
    for name in sorted(set(canary.unjudged_segments) | set(baseline.unjudged_segments)):
        not_judged.append(_not_judged(name, "beyond max_values: not judged"))
    return found


def _widest(
    shared: Dispersion,
    intervals: tuple[tuple[Counts, Counts], ...],
    canary: Counts,
    baseline: Counts,
    widen: bool,
) -> Dispersion:
    """The metric's dispersion, or the segment's own when known and larger."""
    if not widen:
        return shared
    flipped, _, _ = rare_side(canary, baseline)
    own = estimate(intervals, None, flipped=flipped)
    return own if own.known and own.phi > shared.phi else shared


def _holm(candidates: list[_Candidate], look: Look) -> dict[int, tuple[float, float]]:
    """Holm's step-down over every judged segment: id(candidate) -> the two boundaries it
    crossed, for those that fail."""
    alpha = look.alpha * SEGMENT_SHARE
    margin_alpha = look.margin_alpha * SEGMENT_SHARE
    remaining = sorted(candidates, key=lambda c: -c.statistic)
    failed: dict[int, tuple[float, float]] = {}
    while remaining:
        divisor = _bucket(len(remaining))
        bound = _bound(alpha / divisor, look)
        margin_bound = _bound(margin_alpha / divisor, look)
        crossing = [
            c for c in remaining if c.statistic > bound and _beyond_margin(c) > margin_bound
        ]
        if not crossing:
            break
        first = crossing[0]
        failed[id(first)] = (bound, margin_bound)
        remaining.remove(first)
    return failed


def _beyond_margin(c: _Candidate) -> float:
    """The score test against the fail line, computed only for a segment whose exact
    test crossed (the bisection it needs is most of a segment's cost)."""
    if c.fail_statistic is None:
        c.fail_statistic = c.spread.widen(-within_z(*c.bad, c.line))
    return c.fail_statistic


def _bucket(count: int) -> int:
    return 1 << max(0, count - 1).bit_length()


def _bound(alpha: float, look: Look) -> float:
    bounds = boundaries(alpha, look.planned, look.extra)
    return bounds[min(max(look.number, 1), len(bounds)) - 1]


def _judged(
    metric: RatioMetric, c: _Candidate, crossed: tuple[float, float] | None, look: Look
) -> SegmentVerdict:
    evidence: dict[str, Any] = {
        "canary": c.canary,
        "baseline": c.baseline,
        "statistic": _stored(c.statistic),
        "fail_statistic": None
        if c.fail_statistic is None or math.isinf(c.fail_statistic)
        else _stored(c.fail_statistic),
        "dispersion": None if math.isnan(c.dispersion) else c.dispersion,
    }
    rates = (
        f"canary {_percent(c.canary.rate)} vs baseline {_percent(c.baseline.rate)} "
        f"{_noun(metric)} ({c.canary.total} requests)"
    )
    if crossed is not None:
        bound, margin_bound = crossed
        reason = f"fails for {c.name}: {rates}; z {c.statistic:.2f} > {bound:.2f}" + (
            f", beyond the fail margin z {c.fail_statistic:.2f} > {margin_bound:.2f}"
            if c.fail_statistic is not None and not math.isinf(c.fail_statistic)
            else ""
        )
        return SegmentVerdict(
            c.name,
            SegmentOutcome.FAIL,
            reason,
            threshold=bound,
            fail_threshold=margin_bound,
            **evidence,
        )
    if look.number >= look.planned and _within(metric, c) > look.pass_bound():
        return SegmentVerdict(
            c.name, SegmentOutcome.PASS, f"{c.name} within tolerance: {rates}", **evidence
        )
    return SegmentVerdict(
        c.name, SegmentOutcome.INCONCLUSIVE, f"{c.name} not yet certain: {rates}", **evidence
    )


def _within(metric: RatioMetric, c: _Candidate) -> float:
    """Within-tolerance z, only where a pass would count (the bake's end on): a segment's
    pass is evidence shown, never a decision."""
    tolerance = margin_for(metric.tolerance, metric.direction, c.baseline.rate)
    return c.spread.widen(within_z(*c.bad, tolerance))


def _not_judged(
    name: str, reason: str, canary: Counts | None = None, baseline: Counts | None = None
) -> SegmentVerdict:
    return SegmentVerdict(name, SegmentOutcome.NOT_JUDGED, f"{name}: {reason}", canary, baseline)


def _order(segment: SegmentVerdict) -> tuple[int, str]:
    rank = {SegmentOutcome.FAIL: 0, SegmentOutcome.INCONCLUSIVE: 1, SegmentOutcome.PASS: 2}
    return rank.get(segment.outcome, 3), segment.name


def _with_segments(
    verdict: MetricVerdict, metric: RatioMetric, segments: tuple[SegmentVerdict, ...]
) -> MetricVerdict:
    failing = [s for s in segments if s.outcome is SegmentOutcome.FAIL]
    if not failing:
        return replace(verdict, segments=segments)
    reason = f"{metric.name} " + "; ".join(s.reason for s in failing)
    if verdict.outcome is Outcome.FAIL:
        reason = f"{verdict.reason} | {reason}"
    return replace(verdict, outcome=Outcome.FAIL, reason=reason, segments=segments)


def _percent(rate: float) -> str:
    """Two significant digits: 31%, 1.2%, 0.046%."""
    if rate <= 0:
        return "0%"
    percent = rate * 100
    decimals = max(0, 1 - math.floor(math.log10(percent)))
    return f"{percent:.{decimals}f}%"


def _noun(metric: RatioMetric) -> str:
    return "errors" if metric.direction is Direction.LOWER else "conversions"
