"""How much more the counts vary than chance alone, and how the tests widen by it.

Real error and conversion counts of two fleets vary more than binomial from minute to
minute (cache state, hosts, clients, retries). Assuming binomial noise, a healthy canary
at high traffic looks "significantly" different at nearly every rollout. The model here
is the one the data supports: each fleet's rate in each interval is the true rate times
an independent factor of relative variance ``kappa`` (a lognormal factor of log-sd ``s``
has ``kappa`` = s² nearly), on top of the binomial noise of the events themselves.

- In a stage, the canary's share of the rare events (errors, or conversions when those
  are the rarer class) in interval i, given the interval's rare events, has variance
  ``v_i (1 + 2 kappa v_i)`` with ``v_i`` its binomial variance. Pearson's X² of the
  intervals around the pooled ratio, over its k - 1 degrees of freedom, estimates the
  cumulative test's variance factor ``phi`` directly.
- Before the first shift, preflight reads the stable fleet's own recent intervals: their
  Pearson X² gives ``kappa`` (``Noise``), which predicts ``phi`` at any weight and traffic,
  so the first looks of a stage are not judged as if the noise were binomial. A single
  fleet's history also holds the changes both fleets share (time of day), so this prior
  errs on the wide side: slower, never falsely sure.
- Both are pooled by degrees of freedom; ``phi`` is never below 1 (binomial is the floor,
  and an exact test stays exact). A statistic is divided by sqrt(phi) and, because phi is
  estimated, read against Student's t with Satterthwaite's degrees of freedom for the part
  of the variance that was estimated: no penalty when the data look binomial, the full
  one when the estimated excess dominates.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator.models.analysis import Noise

from .counts import Counts
from .sequential import student_upper_tail, z_quantile

MAX_HISTORY_DF = 120  # an older history says less about now; cap its weight
# Fewer degrees of freedom than this (no history, the first intervals of a stage) and the
# noise is not known: nothing is failed or passed on the comparison, only the limit guard
# applies. Judging such looks as binomial rolled back a third of healthy canaries at
# 200,000 requests a minute with s = 0.2.
MIN_DF = 3
_NORMAL_DF = 1e6


@dataclass(frozen=True)
class Dispersion:
    """The variance factor a look's tests use, with its degrees of freedom and origin."""

    phi: float = 1.0
    df: float = math.inf
    source: str = "binomial"
    known: bool = True  # False: too few degrees of freedom to say (see MIN_DF)
    stage_kappa: float | None = None  # the comparison's own kappa, from this stage's intervals
    stage_df: int = 0
    noisier: bool = False  # the stage was far noisier than the prior predicted

    def widen(self, z: float) -> float:
        """``z`` on the binomial scale -> the z it is worth with this dispersion; no
        evidence either way while the dispersion is not known."""
        if not self.known:
            return min(z, 0.0)
        if self.phi <= 1.0:
            return z
        scaled = z / math.sqrt(self.phi)
        if scaled <= 0:
            return scaled
        df = self.effective_df
        if df >= _NORMAL_DF:
            return scaled
        tail = student_upper_tail(scaled, df)
        if tail <= 0:
            return scaled
        return min(scaled, z_quantile(1 - tail) if tail > 1e-15 else scaled)

    @property
    def effective_df(self) -> float:
        """Satterthwaite: only the estimated excess (phi - 1) carries estimation error."""
        if self.phi <= 1.0 or self.df <= 0:
            return math.inf if self.phi <= 1.0 else 1e-9
        return self.df * (self.phi / (self.phi - 1.0)) ** 2


def rare_side(canary: Counts, baseline: Counts) -> tuple[bool, Counts, Counts]:
    """(flipped, canary, baseline) counted in the rarer class: binomial-like noise and the
    lognormal factor act on the rare events (a 5% conversion, a 1% error rate)."""
    events = canary.errors + baseline.errors
    trials = canary.total + baseline.total
    if events * 2 <= trials:
        return False, canary, baseline
    return (
        True,
        Counts(canary.total - canary.errors, canary.total),
        Counts(baseline.total - baseline.errors, baseline.total),
    )


def _flip(counts: Counts) -> Counts:
    return Counts(counts.total - counts.errors, counts.total)


def estimate(
    intervals: Sequence[tuple[Counts, Counts]], prior: Noise | None = None, *, flipped: bool
) -> Dispersion:
    """The variance factor of the cumulative comparison of these (canary, baseline)
    intervals, counted as ``flipped`` says (see ``rare_side``), pooled with ``prior``."""
    rows = [(_flip(c), _flip(b)) if flipped else (c, b) for c, b in intervals]
    rows = [(c, b) for c, b in rows if c.total > 0 and b.total > 0]
    canary_events = sum(c.errors for c, _ in rows)
    baseline_events = sum(b.errors for _, b in rows)
    canary_total = sum(c.total for c, _ in rows)
    baseline_total = sum(b.total for _, b in rows)
    prior = prior or Noise()
    if not rows or canary_total == 0 or baseline_total == 0:
        return Dispersion()
    # The pooled ratio of rates, kept off zero so an arm without events still has a share.
    ratio = ((canary_events + 0.5) / canary_total) / ((baseline_events + 0.5) / baseline_total)
    chi2, variances = 0.0, []
    for c, b in rows:
        events = c.errors + b.errors
        if events == 0:
            continue
        share = ratio * c.total / (ratio * c.total + b.total)
        variance = events * share * (1 - share)
        if variance <= 0:
            continue
        chi2 += (c.errors - events * share) ** 2 / variance
        variances.append(variance)
    stage_df = max(0, len(variances) - 1)
    total = sum(variances)
    prior_df = min(prior.df, MAX_HISTORY_DF)
    # Var(c_i) = v_i (1 + 2 kappa v_i): X² / df - 1 = 2 kappa mean(v), the comparison's kappa.
    stage_kappa = (
        max(0.0, (chi2 / stage_df - 1.0) / (2.0 * total / len(variances))) if stage_df else None
    )
    learned = {"stage_kappa": stage_kappa, "stage_df": stage_df}
    if total <= 0 or stage_df + prior_df < MIN_DF:
        history = "" if prior_df else " and no history of the stable fleet"
        return Dispersion(
            1.0,
            float(stage_df + prior_df),
            f"not known yet: {len(variances)} intervals{history}, "
            f"{MIN_DF} degrees of freedom needed",
            known=False,
            **learned,  # type: ignore[arg-type]
        )
    predicted = 1.0 + 2.0 * prior.kappa * sum(v * v for v in variances) / total
    phi = (prior_df * predicted + (chi2 if stage_df else 0.0)) / (prior_df + stage_df)
    df = float(prior_df + stage_df)
    parts = []
    if prior_df:
        parts.append(f"{prior.source} ({prior_df} df)")
    if stage_df:
        parts.append(f"this stage's {len(variances)} intervals")
    source = " + ".join(parts)
    if prior_df and stage_df >= MIN_DF and chi2 > predicted * _chi2_quantile(0.99, stage_df):
        # A calm history must not hide a noisy stage: when the stage's own intervals are
        # far noisier than the history predicts (1% level), they are used alone, with their
        # own (fewer) degrees of freedom.
        phi, df = chi2 / stage_df, float(stage_df)
        source = f"this stage's {len(variances)} intervals (noisier than {prior.source})"
        return Dispersion(max(1.0, phi), df, source, noisier=True, **learned)  # type: ignore[arg-type]
    return Dispersion(max(1.0, phi), df, source, **learned)  # type: ignore[arg-type]


def learn(prior: Mapping[str, Noise], stage: Mapping[str, Noise], number: int) -> dict[str, Noise]:
    """The noise the next stage starts from: what stage ``number`` (1-based) measured on the
    comparison itself, pooled with the prior by degrees of freedom, or alone when the stage
    was far noisier than the prior said (a calm history must not reach the next stage's
    first looks)."""
    merged = dict(prior)
    for name, measured in stage.items():
        if measured.df <= 0:
            continue
        before = prior.get(name, Noise())
        if measured.source == NOISIER or before.df <= 0:
            kappa, df = measured.kappa, measured.df
        else:
            df = min(before.df, MAX_HISTORY_DF) + measured.df
            kappa = (
                min(before.df, MAX_HISTORY_DF) * before.kappa + measured.df * measured.kappa
            ) / df
        source = f"stage {number} comparison" + (
            f" + {before.source}" if before.df and measured.source != NOISIER else ""
        )
        merged[name] = before.model_copy(update={"kappa": kappa, "df": df, "source": source})
    return merged


NOISIER = "noisier than the prior"


def _chi2_quantile(q: float, df: int) -> float:
    """Wilson-Hilferty: within a few percent for df >= 3."""
    k = 2.0 / (9.0 * df)
    return df * (1 - k + z_quantile(q) * math.sqrt(k)) ** 3


def history_noise(intervals: Sequence[Counts], source: str = "stable fleet history") -> Noise:
    """``kappa`` of one fleet from its own intervals (Pearson X² around its pooled rate)."""
    rows = [c for c in intervals if c.total > 0]
    events = sum(c.errors for c in rows)
    trials = sum(c.total for c in rows)
    if len(rows) < 3 or trials == 0:
        return Noise(kappa=0.0, df=0, source=source)
    if events * 2 > trials:
        rows, events = [_flip(c) for c in rows], trials - events
    rate = events / trials
    if rate <= 0 or rate >= 1:
        return Noise(kappa=0.0, df=len(rows) - 1, source=source)
    chi2 = sum((c.errors - c.total * rate) ** 2 / (c.total * rate * (1 - rate)) for c in rows)
    # Var(x_i) = mu_i (1 - rate) + kappa mu_i²: X² / df - 1 = kappa mean(mu) / (1 - rate).
    mean_events = events / len(rows)
    kappa = max(0.0, (chi2 / (len(rows) - 1) - 1.0) * (1 - rate) / mean_events)
    return Noise(kappa=kappa, df=len(rows) - 1, source=source)


def request_dispersion(totals: Sequence[float]) -> tuple[float, float]:
    """(variance over mean, degrees of freedom) of one fleet's requests per interval.

    Viewers arrive independently, each making a cluster of requests, so the count's
    variance over its mean is the clusters' E[r²] / E[r]: the same factor by which sticky
    viewers widen the canary's share beyond binomial. The variance is taken from successive
    differences (half the mean squared difference), so a slow trend in traffic (time of day)
    does not count as burstiness; faster swings in the rate still do, which only makes the
    prior wider. Its degrees of freedom are those of that estimator, about 2/3 of k - 1."""
    rows = [float(t) for t in totals if t > 0]
    k = len(rows)
    if k < 3:
        return 1.0, 0.0
    mean = sum(rows) / k
    squares = sum((b - a) ** 2 for a, b in itertools.pairwise(rows))
    variance = squares / (2 * (k - 1))
    return variance / mean, 2 * (k - 1) ** 2 / (3 * k - 4)
