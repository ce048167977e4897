"""The served-split check: does the edge send the canary the share of requests its weight says?

The counts are the denominators of ``analysis.split.metric`` (default: the first ratio
metric), per variant and per period, as ``evaluate`` already fetched them for the look; or,
for a plan with ``analysis.split.viewers``, each variant's viewers (``unit`` "viewers").
The canary's share of the requests is compared with the stage's weight; a share credibly
outside ``weight * (1 +- tolerance)`` is a mismatch (CloudFront sending everything to the
primary under load, sticky cookies that drift, an edge reading stale weights).

Requests are not independent: one viewer (IP + User-Agent) makes many, and sticky
assignment moves all of them together, so the share varies far more than binomial. As in
``dispersion.py``, Pearson's X² of the periods' shares around the pooled share, over its
k - 1 degrees of freedom, estimates the variance factor ``phi`` (never below 1, binomial),
and the statistic is read against Student's t with Satterthwaite's degrees of freedom for
the estimated excess. The stage's false-alarm budget ``STAGE_ALPHA`` is split over both
sides and spent across the stage's looks by the judge's own group-sequential boundaries
(``sequential.boundaries``): each look's share is cumulative, so the looks' statistics are
correlated as the fail test's are, and a Bonferroni split over every look a stage may take
(seventy for a 10-minute bake with its extension) would ask z 4.34 of every look where the
exact boundaries ask about 3.9 of the bake's. That is what lets a split twice the weight be
flagged within three looks of a 5% stage (`make bench`).

A stage's first looks have too few periods to estimate ``phi`` from. Preflight measured the
stable fleet's requests per period over the last hour (``Noise.requests_dispersion``): with
viewers arriving independently, their count's variance over its mean is the clusters'
E[r²] / E[r], the very factor by which sticky viewers widen the share (and any faster
swing in the traffic only widens it further). That prior is pooled with the stage's own
X² by degrees of freedom, as ``dispersion.py`` pools the error rates' history, so a split
twice the weight can be flagged from the first look; the stage's periods take over when
they are far noisier than the prior says (1% level). Without a prior, nothing is judged
before ``MIN_PERIODS``.

What the periods cannot show: clustering that lasts longer than the window (a few heavy
viewers present in every period, all on one variant) shifts every period alike, so it
looks like a real offset. In requests the tolerance is all that absorbs it. In viewers
it has a bound: a viewer counts at most once a period, so over k periods the share varies
at most k times as much as binomial on the summed counts (``_counted_once``), whether the
same viewers return every period or new ones arrive; the check never assumes less. A
mismatch pauses for a person by default (``policies.on_split_mismatch``), it does not roll
back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from orchestrator.models.analysis import SPLIT_VIEWERS

from .counts import Counts
from .dispersion import MAX_HISTORY_DF, MIN_DF, Dispersion, _chi2_quantile
from .sequential import boundaries

if TYPE_CHECKING:
    from orchestrator.models import Rollout
    from orchestrator.models.analysis import Noise

    from .providers.base import Measurement

SplitOutcome = Literal["ok", "mismatch", "unknown"]
Unit = Literal["requests", "viewers"]
STAGE_ALPHA = 0.001  # chance per stage of flagging a split that is right
MIN_PERIODS = 4  # without a prior: three degrees of freedom for the dispersion (MIN_DF)
MIN_REQUESTS = 200  # in the window, both variants together
MIN_EXPECTED = 20  # canary requests the weight's lower edge expects in the window


@dataclass(frozen=True)
class SplitCheck:
    """The served share against the weight (all shares 0..1), and the evidence."""

    share: float | None
    weight: float
    low: float
    high: float
    outcome: SplitOutcome
    reason: str
    requests: int = 0
    periods: int = 0
    dispersion: float | None = None
    statistic: float | None = None  # z of "outside the band", widened by the dispersion
    threshold: float | None = None  # the z it must cross at this look
    unit: Unit = "requests"  # what was counted: the requests, or the viewers

    def as_dict(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in self.__dataclass_fields__}
        return {name: value for name, value in data.items() if value is not None}


def band(weight: float, tolerance: float) -> tuple[float, float]:
    """The shares a weight (0..1) allows: relative, and never outside 0..1."""
    return max(0.0, weight * (1 - tolerance)), min(1.0, weight * (1 + tolerance))


def look_threshold(look: int, looks: int, extra: int = 0, alpha: float = STAGE_ALPHA) -> float:
    """The z look ``look`` (1-based) of a stage with ``looks`` planned looks and ``extra``
    more an extension may add must cross: half the stage's budget on each side, spent as
    the fail test spends its own."""
    bounds = boundaries(alpha / 2, max(1, looks), max(0, extra))
    return bounds[min(max(look, 1), len(bounds)) - 1]


def check_split(
    periods: Sequence[tuple[float, float]],
    weight: float,
    tolerance: float,
    *,
    look: int,
    looks: int,
    extra: int = 0,
    prior: Noise | None = None,
    unit: Unit = "requests",
) -> SplitCheck:
    """``periods``: (canary, baseline) requests per period, in time order; ``weight``: the
    canary's planned share (0..1); ``look`` (1-based) of the stage's ``looks`` planned ones
    and ``extra`` an extension may add; ``prior``: the stable fleet's noise as preflight
    measured it (its ``requests_dispersion``)."""
    low, high = band(weight, tolerance)
    rows = [(c, b) for c, b in periods if c >= 0 and b >= 0 and c + b > 0]
    canary = sum(c for c, _ in rows)
    total = sum(c + b for c, b in rows)
    share = canary / total if total else None

    def result(outcome: SplitOutcome, reason: str, **evidence: float) -> SplitCheck:
        return SplitCheck(
            share,
            weight,
            low,
            high,
            outcome,
            reason,
            round(total),
            len(rows),
            **evidence,
            unit=unit,
        )

    if not 0 < weight < 1:
        return result("ok", "one variant serves everyone")
    prior_phi, prior_df = _prior(prior)
    if (
        share is None
        or total < MIN_REQUESTS
        or total * low < MIN_EXPECTED
        or (len(rows) < MIN_PERIODS and len(rows) - 1 + prior_df < MIN_DF)
    ):
        return result(
            "unknown",
            f"split not known yet: {round(total)} {unit} in {len(rows)} periods "
            f"(needs {MIN_REQUESTS} {unit}, {MIN_PERIODS} periods or a prior)",
        )
    spread = _dispersion(rows, share, prior_phi, prior_df)
    if unit == "viewers" and len(rows) > spread.phi:
        spread = _counted_once(len(rows))
    threshold = look_threshold(look, looks, extra)
    summary = (
        f"canary served {share:.2%} of {round(total)} {unit}, weight {weight:.2%} "
        f"allows {low:.2%}-{high:.2%}"
        + (f", dispersion {spread.phi:.1f}" if spread.phi > 1 else "")
    )
    if low <= share <= high:
        return result("ok", summary, dispersion=spread.phi, threshold=threshold)
    nearest = high if share > high else low
    # The score test at the band's edge: the variance the share would have there.
    z = abs(share - nearest) / math.sqrt(nearest * (1 - nearest) / total) if nearest < 1 else 0.0
    statistic = spread.widen(z)
    evidence = {"dispersion": spread.phi, "statistic": statistic, "threshold": threshold}
    if statistic > threshold:
        return result(
            "mismatch", f"{summary}: outside, z {statistic:.2f} > {threshold:.2f}", **evidence
        )
    why = f"{summary}: outside as measured, not credibly (z {statistic:.2f} <= {threshold:.2f})"
    return result("ok", why, **evidence)


def _counted_once(periods: int) -> Dispersion:
    """The widest the viewer share can vary over ``periods`` periods at a right edge.

    A viewer counts at most once a period and is assigned once, by its own hash, so with
    ``m_i`` the periods viewer ``i`` was seen in (at most ``periods``), the canary count's
    variance is ``w(1 - w) sum m_i²`` <= ``w(1 - w) periods sum m_i``: at most ``periods``
    times binomial on the counts summed, whether the same viewers come back every period
    (heavy clients, a NAT) or new ones arrive. A bound, not an estimate: no degrees of
    freedom to lose, and the period-to-period spread (which cannot see returning viewers)
    only takes over when it is wider still."""
    return Dispersion(float(periods), math.inf, f"each viewer counted once a period, {periods}")


def _prior(prior: Noise | None) -> tuple[float, float]:
    """(phi, df) the stable fleet's request counts predict for the share; (1, 0): none."""
    if prior is None or prior.requests_dispersion is None or prior.requests_df <= 0:
        return 1.0, 0.0
    return max(1.0, prior.requests_dispersion), min(prior.requests_df, MAX_HISTORY_DF)


def _dispersion(
    rows: Sequence[tuple[float, float]],
    share: float,
    prior_phi: float = 1.0,
    prior_df: float = 0.0,
) -> Dispersion:
    """Pearson X² of the periods' canary requests around the pooled share, pooled with the
    prior by degrees of freedom."""
    if not 0 < share < 1:
        # Every request on one side: no spread to measure, and any band is far away.
        return Dispersion()
    chi2 = sum((c - (c + b) * share) ** 2 / ((c + b) * share * (1 - share)) for c, b in rows)
    df = len(rows) - 1
    here = f"{len(rows)} periods of this stage"
    if not prior_df:
        return Dispersion(max(1.0, chi2 / df), float(df), here)
    if df >= MIN_DF and chi2 > prior_phi * _chi2_quantile(0.99, df):
        # Far burstier than the stable fleet's hour said: this stage's periods alone.
        return Dispersion(max(1.0, chi2 / df), float(df), f"{here} (noisier than the prior)")
    phi = (prior_df * prior_phi + chi2) / (prior_df + df)
    return Dispersion(max(1.0, phi), prior_df + df, f"stable fleet's requests + {here}")


def served_split(
    rollout: Rollout, measured: Mapping[tuple[str, str], Measurement]
) -> SplitCheck | None:
    """The look's split check from the counts ``evaluate`` measured (no query of its own);
    None when the plan turns it off, or counts no viewers and has no ratio metric to count
    requests with."""
    plan = rollout.plan
    spec, metric = plan.analysis.split, plan.analysis.split_metric()
    viewers = plan.analysis.split_viewers()
    if not spec.enabled or (metric is None and viewers is None):
        return None
    name = SPLIT_VIEWERS if viewers is not None else metric.name  # type: ignore[union-attr]
    unit: Unit = "viewers" if viewers is not None else "requests"
    weight = rollout.canary_weight_bp / 10_000
    low, high = band(weight, spec.tolerance)
    canary = measured.get((name, plan.canary.name))
    baseline = measured.get((name, plan.stable.name))
    for found in (canary, baseline):
        if found is None or found.error is not None:
            why = found.error if found is not None else "not measured"
            reason = f"split not known: {viewers or name}: {why}"
            return SplitCheck(None, weight, low, high, "unknown", reason, unit=unit)
        if viewers is not None and found.missing is not None:
            # A viewer count is a metric of its own, which one variant's build may not
            # publish (yet): no data is not zero viewers. (A variant served no requests at
            # all still reads as 0% when the split counts requests.)
            reason = f"split not known: {viewers}: {found.missing}"
            return SplitCheck(None, weight, low, high, "unknown", reason, unit=unit)
    assert canary is not None and baseline is not None
    ours, theirs = canary.series or {}, baseline.series or {}
    since = rollout.split_from
    periods = [
        (ours.get(moment, Counts(0, 0)).total, theirs.get(moment, Counts(0, 0)).total)
        for moment in sorted(set(ours) | set(theirs))
        if since is None or moment >= since
    ]
    stage = plan.stages[min(rollout.stage_index, len(plan.stages) - 1)]
    looks = stage.looks()
    return check_split(
        periods,
        weight,
        spec.tolerance,
        look=rollout.tally.looks + 1,
        looks=looks,
        extra=stage.looks(plan.extension(stage)) - looks,
        prior=rollout.noise.get(name),
        unit=unit,
    )
