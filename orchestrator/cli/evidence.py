"""The audit trail read back as a timeline: looks with their per-metric evidence, the
canary's weight over time, and the words and symbols both the live view and the report
use for them. Pure, no I/O.

Verdicts are read defensively: older rollouts recorded only the first metric's counts
(``verdict.canary`` / ``verdict.baseline``), newer ones a ``metrics`` list. Anything
missing or of an unexpected type is treated as absent, never as an error.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.models import AuditEvent, Rollout

OVERALL = "(overall)"  # the metric name for verdicts recorded before per-metric evidence
FLOOR_Z = 40.0  # orchestrator.analysis.margin.LIMIT, not imported: the CLI stays light
FINAL_KINDS = frozenset({"promoted", "rolled_back", "failed"})
# One symbol per verdict, none of them a "?" that reads as a character the terminal could
# not draw; anything else (an error, an unknown outcome) is ERROR_SYMBOL.
VERDICT_SYMBOLS = {"pass": "✓", "fail": "✗", "inconclusive": "○"}
ERROR_SYMBOL = "!"
UNKNOWN_STAGE = "stage unknown"
NO_DECISION = "no decision recorded"
# Said once where a boundary is shown: it is not fixed, and a person comparing two looks
# would otherwise take the change for a bug.
SEQUENTIAL_NOTE = "sequential boundary: it moves as the stage's alpha is spent over its looks"


@dataclass(frozen=True)
class MetricEvidence:
    """One metric at one look: what was measured and why it was judged so."""

    metric: str
    outcome: str
    reason: str = ""
    canary: tuple[int, int] | None = None  # (errors, total)
    baseline: tuple[int, int] | None = None
    canary_rate: float | None = None
    baseline_rate: float | None = None
    effect: float | None = None
    interval: tuple[float, float] | None = None
    statistic: float | None = None
    threshold: float | None = None
    margin: float | None = None
    pass_statistic: float | None = None  # within-tolerance z (older verdicts have none)
    pass_threshold: float | None = None
    value: float | None = None
    critical: bool = False
    judged: str | None = None  # the outcome before a limit tolerated it
    fail_statistic: float | None = None  # z of "worse than the fail margin"
    fail_threshold: float | None = None
    fail_margin: float | None = None
    dispersion: float | None = None  # variance factor over binomial the tests used
    dispersion_source: str | None = None
    warm_up: bool = False
    segments: tuple[SegmentEvidence, ...] = ()  # plans with analysis.segments


@dataclass(frozen=True)
class SegmentEvidence:
    """One segment value of a metric at one look (``browser=ie-11``)."""

    name: str
    outcome: str  # pass, fail, inconclusive or not_judged
    reason: str


@dataclass(frozen=True)
class SplitEvidence:
    """The served-split check of one look: the canary's measured share of the requests
    against the band its weight allows (shares in percent)."""

    outcome: str  # ok, mismatch or unknown
    reason: str
    share: float | None = None
    weight: float | None = None
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Look:
    """One analysis event: the verdict, the decision it led to, the evidence."""

    seq: int
    at: datetime
    stage: int | None
    weight: float | None
    outcome: str
    reason: str
    action: str
    decision_reason: str
    metrics: tuple[MetricEvidence, ...]
    number: int | None = None  # the look's number within its stage, as the judge counted
    split: SplitEvidence | None = None  # verdicts recorded before the check have none


def looks(events: Iterable[AuditEvent]) -> list[Look]:
    return [_look(event) for event in events if event.kind == "analysis"]


def _look(event: AuditEvent) -> Look:
    detail = event.detail
    verdict = _mapping(detail.get("verdict"))
    decision = _mapping(detail.get("decision"))
    stage = detail.get("stage")
    return Look(
        seq=event.seq,
        at=event.at,
        stage=stage if isinstance(stage, int) and not isinstance(stage, bool) else None,
        weight=_number(detail.get("weight")),
        outcome=str(verdict.get("outcome") or "unknown"),
        reason=str(verdict.get("reason") or ""),
        action=str(decision.get("action") or ""),
        decision_reason=str(decision.get("reason") or event.reason),
        metrics=metric_evidence(verdict),
        number=_whole(verdict.get("look")),
        split=_split(verdict.get("split")),
    )


def _split(value: object) -> SplitEvidence | None:
    entry = _mapping(value)
    if not entry:
        return None

    def percent(name: str) -> float | None:
        share = _number(entry.get(name))
        return None if share is None else share * 100

    return SplitEvidence(
        outcome=str(entry.get("outcome") or "unknown"),
        reason=str(entry.get("reason") or ""),
        share=percent("share"),
        weight=percent("weight"),
        low=percent("low"),
        high=percent("high"),
    )


def metric_evidence(verdict: Mapping[str, Any]) -> tuple[MetricEvidence, ...]:
    """Per-metric evidence of one verdict, whatever its shape."""
    entries = verdict.get("metrics")
    if isinstance(entries, list) and entries:
        return tuple(_metric(_mapping(entry), i) for i, entry in enumerate(entries))
    canary, baseline = _counts(verdict.get("canary")), _counts(verdict.get("baseline"))
    if canary is None and baseline is None:
        return ()
    return (
        MetricEvidence(
            metric=OVERALL,
            outcome=str(verdict.get("outcome") or "unknown"),
            reason=str(verdict.get("reason") or ""),
            canary=canary,
            baseline=baseline,
            canary_rate=_rate(canary),
            baseline_rate=_rate(baseline),
        ),
    )


def _metric(entry: Mapping[str, Any], index: int) -> MetricEvidence:
    canary, baseline = _counts(entry.get("canary")), _counts(entry.get("baseline"))
    canary_rate = _number(entry.get("canary_rate"))
    baseline_rate = _number(entry.get("baseline_rate"))
    interval = entry.get("interval")
    bounds = (
        (float(interval[0]), float(interval[1]))
        if isinstance(interval, list | tuple)
        and len(interval) == 2
        and all(_number(x) is not None for x in interval)
        else None
    )
    return MetricEvidence(
        metric=str(entry.get("metric") or f"metric-{index + 1}"),
        outcome=str(entry.get("outcome") or "unknown"),
        reason=str(entry.get("reason") or ""),
        canary=canary,
        baseline=baseline,
        canary_rate=canary_rate if canary_rate is not None else _rate(canary),
        baseline_rate=baseline_rate if baseline_rate is not None else _rate(baseline),
        effect=_number(entry.get("effect")),
        interval=bounds,
        statistic=_number(entry.get("statistic")),
        threshold=_number(entry.get("threshold")),
        margin=_number(entry.get("margin")),
        pass_statistic=_number(entry.get("pass_statistic")),
        pass_threshold=_number(entry.get("pass_threshold")),
        value=_number(entry.get("value")),
        critical=entry.get("critical") is True,
        judged=str(entry["judged"]) if entry.get("judged") else None,
        fail_statistic=_number(entry.get("fail_statistic")),
        fail_threshold=_number(entry.get("fail_threshold")),
        fail_margin=_number(entry.get("fail_margin")),
        dispersion=_number(entry.get("dispersion")),
        dispersion_source=str(entry["dispersion_source"])
        if isinstance(entry.get("dispersion_source"), str)
        else None,
        warm_up=entry.get("warm_up") is True,
        segments=_segments(entry.get("segments")),
    )


def _segments(entries: Any) -> tuple[SegmentEvidence, ...]:
    if not isinstance(entries, list):
        return ()
    return tuple(
        SegmentEvidence(
            str(entry.get("name") or "unnamed segment"),
            str(entry.get("outcome") or "unknown"),
            str(entry.get("reason") or ""),
        )
        for entry in (_mapping(e) for e in entries)
    )


def metric_names(all_looks: Sequence[Look]) -> list[str]:
    """Every metric seen, in the order it first appeared; the overall counts of older
    verdicts only when no look has per-metric evidence."""
    names: dict[str, None] = {}
    for look in all_looks:
        for metric in look.metrics:
            names.setdefault(metric.metric)
    if len(names) > 1:
        names.pop(OVERALL, None)
    return list(names)


def canary_weights(rollout: Rollout, events: Iterable[AuditEvent]) -> list[tuple[datetime, float]]:
    """The canary's share of traffic (percent) after each change, starting at 0."""
    canary = rollout.plan.canary.name
    points: list[tuple[datetime, float]] = [(rollout.created_at, 0.0)]
    for event in events:
        weights = _mapping(event.detail.get("weights"))
        share = _number(weights.get(canary))
        if event.kind == "stage_applied":
            stage = event.detail.get("stage")
            if share is None and isinstance(stage, int) and 0 <= stage < len(rollout.plan.stages):
                share = rollout.plan.stages[stage].weight_bp
        elif event.kind == "promoted":
            share = 10_000.0
        elif event.kind not in ("rolled_back", "recovered"):
            continue
        points.append((event.at, (share or 0.0) / 100))
    return points


def verdict_symbol(outcome: str | None) -> str:
    return VERDICT_SYMBOLS.get(outcome or "", ERROR_SYMBOL)


def stage_label(stage: int | None) -> str:
    """``stage 2`` (1-based, as people count), or a word when the trail does not say."""
    return f"stage {stage + 1}" if stage is not None else UNKNOWN_STAGE


def at_floor(z: float | None, metric: MetricEvidence) -> bool:
    """Whether ``z``, the exact test's statistic, is the judge's floor rather than a
    measurement (the score tests' z are real however far below 0 they are).

    When the canary shows no bad event against many of the baseline's, the exact test's
    tail is 1 to double precision and the judge records ``-FLOOR_Z`` (then divided by the
    dispersion's square root, as every statistic is); a measured z of that test never goes
    below about -8.3.
    """
    if z is None:
        return False
    return z * math.sqrt(max(1.0, metric.dispersion or 1.0)) <= -FLOOR_Z + 0.05


def z_text(z: float, metric: MetricEvidence) -> str:
    """The exact test's ``z 0.71``, or words where the judge recorded its floor."""
    if not at_floor(z, metric):
        return f"z {z:.2f}"
    counts = ""
    if metric.canary is not None and metric.baseline is not None:
        (c_bad, c_total), (b_bad, b_total) = metric.canary, metric.baseline
        counts = f": {c_bad}/{c_total} against {b_bad}/{b_total}"
    return f"z far below 0 (no sign the canary is worse{counts})"


def evidence_text(metric: MetricEvidence) -> str:
    """The numbers behind one metric's verdict, in one line: its tests' z against their
    boundaries, the effect's interval, the tolerance, the dispersion used."""
    parts = []
    if metric.statistic is not None:
        fails = (
            f" (fails above {metric.threshold:.2f}, a {SEQUENTIAL_NOTE})"
            if metric.threshold is not None
            else ""
        )
        parts.append(f"{z_text(metric.statistic, metric)}{fails}")
    if metric.fail_statistic is not None and metric.fail_margin is not None:
        above = f" above {metric.fail_threshold:.2f}" if metric.fail_threshold is not None else ""
        parts.append(
            f"beyond {metric.fail_margin:.3%} z {metric.fail_statistic:.2f} (fails{above})"
        )
    if metric.interval is not None:
        low, high = metric.interval
        parts.append(f"interval [{low:+.3%}, {high:+.3%}]")
    if metric.margin is not None:
        parts.append(f"passes within {metric.margin:.3%}")
    if metric.pass_statistic is not None:
        passes = (
            f" (passes above {metric.pass_threshold:.2f}, also sequential)"
            if metric.pass_threshold
            else ""
        )
        parts.append(f"within z {metric.pass_statistic:.2f}{passes}")
    if metric.dispersion is not None:
        source = f" from {metric.dispersion_source}" if metric.dispersion_source else ""
        parts.append(f"dispersion {metric.dispersion:.2f}{source}")
    if metric.warm_up:
        parts.append("warm-up: only the limit is judged")
    return ", ".join(parts)


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _whole(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _counts(value: object) -> tuple[int, int] | None:
    counts = _mapping(value)
    errors, total = _number(counts.get("errors")), _number(counts.get("total"))
    if errors is None or total is None:
        return None
    return int(errors), int(total)


def _rate(counts: tuple[int, int] | None) -> float | None:
    if counts is None or counts[1] == 0:
        return None
    return counts[0] / counts[1]
