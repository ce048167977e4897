"""The audit trail read back as a timeline: looks with their per-metric evidence, and the
canary's weight over time. Shared by the live view and the report; pure, no I/O.

Verdicts are read defensively: older rollouts recorded only the first metric's counts
(``verdict.canary`` / ``verdict.baseline``), newer ones a ``metrics`` list. Anything
missing or of an unexpected type is treated as absent, never as an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.models import AuditEvent, Rollout

OVERALL = "(overall)"  # the metric name for verdicts recorded before per-metric evidence
FINAL_KINDS = frozenset({"promoted", "rolled_back", "failed"})


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
            str(entry.get("name") or "?"),
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


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


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
