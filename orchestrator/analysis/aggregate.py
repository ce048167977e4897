"""From metric verdicts to the look's verdict: limits over time, then the worst phase.

- a critical metric that fails, fails the look at once;
- a non-critical metric fails the look once it has failed more than ``failure_limit``
  times in the stage (this look included); until then it is inconclusive;
- a transient provider error is inconclusive until ``consecutive_error_limit`` looks in a
  row have failed to measure that metric; then, or at once for a permanent error
  (bad key, bad query), it is an error;
- more than ``inconclusive_limit`` inconclusive looks in the stage count as a failure;
- the worst phase wins (fail > error > inconclusive > pass); no metric means no evidence.

``history`` is the earlier verdicts of the stage (``Verdict.as_dict()``), oldest first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from orchestrator.analysis.counts import Counts
from orchestrator.models.analysis import Limits

from .judge import MetricVerdict, Outcome, Verdict

_EMPTY = Counts(0, 0)


def combine(
    verdicts: Sequence[MetricVerdict],
    limits: Limits,
    history: Sequence[Mapping[str, Any]] = (),
    look: int = 0,
) -> Verdict:
    applied = tuple(_apply_limits(v, limits, history) for v in verdicts)
    first_ratio = next((v for v in applied if v.canary is not None), None)
    canary = first_ratio.canary if first_ratio and first_ratio.canary else _EMPTY
    baseline = first_ratio.baseline if first_ratio and first_ratio.baseline else _EMPTY
    if not applied:
        return Verdict(Outcome.INCONCLUSIVE, "no metrics to judge", canary, baseline, (), look)
    worst = max(applied, key=lambda v: v.outcome.severity).outcome
    reasons = [v.reason for v in applied if v.outcome is worst]
    outcome = worst
    if outcome is Outcome.INCONCLUSIVE and limits.inconclusive_limit is not None:
        earlier = sum(1 for h in history if h.get("outcome") == Outcome.INCONCLUSIVE.value)
        if earlier + 1 > limits.inconclusive_limit:
            outcome = Outcome.FAIL
            reasons.insert(
                0, f"inconclusive {earlier + 1} times, limit {limits.inconclusive_limit}"
            )
    if outcome is Outcome.PASS:
        reasons = ["every metric passed: " + "; ".join(v.reason for v in applied)]
    return Verdict(outcome, " | ".join(reasons), canary, baseline, applied, look)


def _apply_limits(
    verdict: MetricVerdict, limits: Limits, history: Sequence[Mapping[str, Any]]
) -> MetricVerdict:
    earlier = [_outcome_of(h, verdict.metric) for h in history]
    if verdict.outcome is Outcome.FAIL and not verdict.critical:
        failures = sum(1 for o in earlier if o == Outcome.FAIL.value) + 1
        if failures <= limits.failure_limit:
            return replace(
                verdict,
                outcome=Outcome.INCONCLUSIVE,
                judged=Outcome.FAIL,
                reason=f"{verdict.reason} (failure {failures}, {limits.failure_limit} allowed)",
            )
    if verdict.outcome is Outcome.ERROR and verdict.transient:
        streak = 1
        for o in reversed(earlier):
            if o != Outcome.ERROR.value:
                break
            streak += 1
        if streak < limits.consecutive_error_limit:
            return replace(
                verdict,
                outcome=Outcome.INCONCLUSIVE,
                judged=Outcome.ERROR,
                reason=f"{verdict.reason} (error {streak} in a row, "
                f"{limits.consecutive_error_limit} make an error)",
            )
    return verdict


def _outcome_of(verdict: Mapping[str, Any], metric: str) -> str | None:
    for entry in verdict.get("metrics") or []:
        if isinstance(entry, Mapping) and entry.get("metric") == metric:
            if entry.get("measured") is False:
                return Outcome.ERROR.value
            return str(entry.get("judged") or entry.get("outcome"))
    return None
