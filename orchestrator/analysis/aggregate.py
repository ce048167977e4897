"""From metric verdicts to the look's verdict: the stage's limits, then the worst phase.

The one place the limits are read (``analysis.limits``), against the one record that
counts them (the rollout's ``StageTally``, reset when a stage is applied):

- a critical metric that fails, fails the look at once;
- a non-critical metric's failing looks are tolerated up to ``tolerated_failures`` in the
  stage; the next one fails the look;
- a transient provider error is inconclusive until a metric has gone unmeasured
  ``max_error_streak`` looks in a row; then, or at once for a permanent error (bad key,
  bad query), it is an error;
- past ``max_inconclusive_looks`` inconclusive judged looks in the stage, the next one
  counts as a failure (warm-up looks are not counted);
- the worst phase wins (fail > error > inconclusive > pass); no metric means no evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from orchestrator.analysis.counts import Counts
from orchestrator.models.analysis import Limits, Noise
from orchestrator.models.rollout import StageTally

from .dispersion import NOISIER
from .judge import MetricVerdict, Outcome, Verdict

_EMPTY = Counts(0, 0)


def combine(
    verdicts: Sequence[MetricVerdict],
    limits: Limits,
    tally: StageTally,
    look: int = 0,
    *,
    warm_up: bool = False,
) -> tuple[Verdict, StageTally]:
    """The look's verdict and the stage's tally after it."""
    failures, streaks = dict(tally.failures), dict(tally.error_streak)
    applied = tuple(_apply_limits(v, limits, failures, streaks) for v in verdicts)
    first_ratio = next((v for v in applied if v.canary is not None), None)
    canary = first_ratio.canary if first_ratio and first_ratio.canary else _EMPTY
    baseline = first_ratio.baseline if first_ratio and first_ratio.baseline else _EMPTY
    inconclusive = tally.inconclusive
    if not applied:
        outcome, reasons = Outcome.INCONCLUSIVE, ["no metrics to judge"]
    else:
        outcome = max(applied, key=lambda v: v.outcome.severity).outcome
        reasons = [v.reason for v in applied if v.outcome is outcome]
    if outcome is Outcome.INCONCLUSIVE and not warm_up:
        inconclusive += 1
        ceiling = limits.max_inconclusive_looks
        if ceiling is not None and inconclusive > ceiling:
            outcome = Outcome.FAIL
            reasons.insert(0, f"inconclusive {inconclusive} times, {ceiling} allowed")
    if outcome is Outcome.PASS:
        reasons = ["every metric passed: " + "; ".join(v.reason for v in applied)]
    noise = dict(tally.noise)
    for v in applied:
        if v.noise_df and v.noise_kappa is not None:
            source = NOISIER if v.noisier else "stage comparison"
            noise[v.metric] = Noise(kappa=v.noise_kappa, df=v.noise_df, source=source)
    after = StageTally(
        looks=tally.looks + 1,
        noise=noise,
        judged=tally.judged + (0 if warm_up else 1),
        inconclusive=inconclusive,
        failures=failures,
        error_streak=streaks,
    )
    return Verdict(outcome, " | ".join(reasons), canary, baseline, applied, look), after


def _apply_limits(
    verdict: MetricVerdict, limits: Limits, failures: dict[str, int], streaks: dict[str, int]
) -> MetricVerdict:
    """Counts this metric's look into ``failures`` and ``streaks`` (updated in place)."""
    name = verdict.metric
    if verdict.outcome is Outcome.ERROR:
        streaks[name] = streaks.get(name, 0) + 1
    else:
        streaks.pop(name, None)
    if verdict.outcome is Outcome.FAIL and not verdict.critical:
        failures[name] = failures.get(name, 0) + 1
        if failures[name] <= limits.tolerated_failures:
            return replace(
                verdict,
                outcome=Outcome.INCONCLUSIVE,
                judged=Outcome.FAIL,
                reason=f"{verdict.reason} (failure {failures[name]}, "
                f"{limits.tolerated_failures} tolerated)",
            )
    if verdict.outcome is Outcome.ERROR and verdict.transient:
        streak = streaks[name]
        if streak < limits.max_error_streak:
            return replace(
                verdict,
                outcome=Outcome.INCONCLUSIVE,
                judged=Outcome.ERROR,
                reason=f"{verdict.reason} (unmeasured {streak} in a row, "
                f"{limits.max_error_streak} make an error)",
            )
    return verdict
