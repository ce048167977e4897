"""The one call the Analyze task makes: fetch counts for canary and baseline over the
window and judge them. Everything about metrics and statistics stays behind it."""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache

from orchestrator.models import Rollout

from .counts import Counts
from .judge import Outcome, Verdict, judge
from .providers import CloudWatchProvider, MetricProvider, ProviderError, QueryContext


@cache
def default_provider() -> MetricProvider:
    return CloudWatchProvider()


def evaluate(
    rollout: Rollout, start: datetime, end: datetime, provider: MetricProvider | None = None
) -> Verdict:
    """Judge the canary against the baseline over ``[start, end]``; never raises for data."""
    provider = provider or default_provider()
    spec = rollout.plan.analysis
    try:
        canary = _counts(provider, rollout, rollout.plan.canary.name, start, end)
        baseline = _counts(provider, rollout, rollout.plan.stable.name, start, end)
    except ProviderError as exc:
        empty = Counts(0, 0)
        return Verdict(Outcome.INCONCLUSIVE, f"no data: {exc}", empty, empty)
    return judge(canary, baseline, min_samples=spec.min_samples, tolerance=spec.tolerance)


def _counts(
    provider: MetricProvider, rollout: Rollout, variant: str, start: datetime, end: datetime
) -> Counts:
    plan = rollout.plan
    release = plan.canary if variant == plan.canary.name else plan.stable
    context = QueryContext(
        variant=variant,
        version=release.version,
        host=plan.target.host,
        rollout_id=rollout.rollout_id,
    )
    # Metrics land with a delay; one extra second keeps the window's end inclusive.
    return provider.counts(plan.analysis, context, start, end + timedelta(seconds=1))
