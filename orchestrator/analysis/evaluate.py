"""The calls the workflow makes: ``preflight`` before the first traffic shift, and
``evaluate`` at every look. Neither raises for anything a provider or its data does."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from orchestrator.models import Rollout, StageTally, utcnow
from orchestrator.models.analysis import (
    SPLIT_VIEWERS,
    AnalysisSpec,
    DatadogSource,
    Noise,
    RatioMetric,
)

from .aggregate import combine
from .counts import Counts
from .dispersion import history_noise, request_dispersion
from .judge import MetricVerdict, Outcome, Verdict, judge_guard, judge_ratio, judge_threshold
from .providers import MetricProvider, QueryContext, measure, metric_queries
from .providers.base import Measurement, deadline_or_default, viewer_queries
from .providers.datadog import HOST_OVERRIDE as DATADOG_HOST_OVERRIDE
from .schedule import in_warm_up, judged_from, look_at
from .segments import judge_segments, metric_look
from .split import served_split

# Metrics land with a delay; one extra second keeps the window's end inclusive.
_END_SLACK = timedelta(seconds=1)


def provider_for(spec: AnalysisSpec) -> MetricProvider:
    """Providers are cached per container (clients, keys); the endpoint is part of the key
    so that a process that points at another endpoint (the local stack) gets a new one."""
    if spec.provider == "datadog" and spec.datadog is not None:
        return _datadog(spec.datadog, os.environ.get(DATADOG_HOST_OVERRIDE))
    dimensions = tuple(spec.dimensions.items())
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    return _cloudwatch(spec.namespace or "", dimensions, spec.period, endpoint)


@lru_cache(maxsize=16)
def _datadog(source: DatadogSource, host: str | None) -> MetricProvider:
    from .providers.datadog import DatadogProvider

    return DatadogProvider(source, host=host)


@lru_cache(maxsize=16)
def _cloudwatch(
    namespace: str, dimensions: tuple[tuple[str, str], ...], period: int, endpoint: str | None
) -> MetricProvider:
    from .providers.cloudwatch import CloudWatchProvider

    return CloudWatchProvider(namespace, dict(dimensions), period)


def contexts(rollout: Rollout) -> dict[str, QueryContext]:
    """Canary first, then baseline (stable), as the judge wants them."""
    plan = rollout.plan
    return {
        release.name: QueryContext(
            variant=release.name,
            version=release.version,
            host=plan.target.host,
            rollout_id=rollout.rollout_id,
        )
        for release in (plan.canary, plan.stable)
    }


def evaluate(
    rollout: Rollout,
    now: datetime,
    provider: MetricProvider | None = None,
    *,
    deadline: float | None = None,
) -> tuple[Verdict, StageTally]:
    """Judge the canary against the baseline over the stage so far, and count the look
    into the stage's tally (``rollout.tally``).

    Within ``analysis.initial_delay`` of the stage's start only each metric's absolute
    limit is judged, on the counts since the start; after it, the judged window starts
    where the warm-up ends, so a cold canary's first minutes weigh on nothing. Either way
    the window opens once the edge serves the stage's weight (``schedule.judged_from``).
    The verdict carries the served-split check of the same counts (``split.py``)."""
    plan = rollout.plan
    spec = plan.analysis
    deadline = deadline_or_default(deadline)
    stage_start = rollout.stage_started_at or now
    elapsed = (now - stage_start).total_seconds()
    warm_up = in_warm_up(plan, rollout.stage_index, elapsed)
    start = judged_from(plan, rollout.stage_index, stage_start, now)
    look = look_at(plan, rollout.stage_index, elapsed)
    try:
        provider = provider or provider_for(spec)
    except Exception as exc:  # e.g. a secret that cannot be read
        return _unmeasured(spec, f"no provider: {exc}", rollout.tally, warm_up, look.number)
    named = contexts(rollout)
    measured = measure(
        provider, spec, named, start, now + _END_SLACK, deadline=deadline, segments=True
    )
    canary_name, baseline_name = plan.canary.name, plan.stable.name
    verdicts = [
        _judged(
            metric,
            measured[metric.name, canary_name],
            measured[metric.name, baseline_name],
            metric_look(spec, metric, look),
            spec,
            rollout.noise.get(metric.name),
            warm_up,
        )
        for metric in spec.judged_metrics()
    ]
    arms = (canary_name, baseline_name)
    verdicts = judge_segments(spec, verdicts, measured, arms, look, rollout.noise, warm_up)
    verdict, tally = combine(verdicts, spec.limits, rollout.tally, look.number, warm_up=warm_up)
    return replace(verdict, split=served_split(rollout, measured)), tally


def _judged(metric: Any, *args: Any) -> MetricVerdict:
    """A metric's verdict; a judge that fails on absurd counts is an error of that metric,
    never an exception into the workflow."""
    try:
        return _judge(metric, *args)
    except (ArithmeticError, ValueError) as exc:
        reason = f"{metric.name}: could not be judged: {exc!r}"
        return MetricVerdict(
            metric.name, Outcome.ERROR, reason, critical=metric.critical, measured=False
        )


def _judge(
    metric: Any,
    canary: Measurement,
    baseline: Measurement,
    look: Any,
    spec: AnalysisSpec,
    noise: Noise | None,
    warm_up: bool,
) -> MetricVerdict:
    for measurement in (canary, baseline):
        if measurement.error is not None:
            return MetricVerdict(
                metric.name,
                Outcome.ERROR,
                f"{metric.name}: {measurement.error}",
                critical=metric.critical,
                transient=measurement.transient,
                measured=False,
            )
    if isinstance(metric, RatioMetric):
        missing = canary.missing or baseline.missing
        if missing or canary.counts is None or baseline.counts is None:
            return MetricVerdict(
                metric.name,
                Outcome.INCONCLUSIVE,
                f"{metric.name}: {missing or 'no counts'}",
                critical=metric.critical,
            )
        if warm_up:
            return judge_guard(metric, canary.counts, baseline.counts, look)
        return judge_ratio(
            metric,
            canary.counts,
            baseline.counts,
            look,
            intervals=paired(canary, baseline),
            noise=noise,
            fail_margin=spec.fail_margin,
            widen=spec.dispersion == "estimate",
        )
    if warm_up:
        reason = f"{metric.name}: warming up, not judged"
        return MetricVerdict(metric.name, Outcome.INCONCLUSIVE, reason, critical=metric.critical)
    return judge_threshold(metric, canary.value)


def paired(canary: Measurement, baseline: Measurement) -> tuple[tuple[Counts, Counts], ...]:
    """The periods both arms have counts for, in time order."""
    ours, theirs = canary.series or {}, baseline.series or {}
    return tuple((ours[moment], theirs[moment]) for moment in sorted(ours) if moment in theirs)


def _unmeasured(
    spec: AnalysisSpec, why: str, tally: StageTally, warm_up: bool, look: int
) -> tuple[Verdict, StageTally]:
    verdicts = [
        MetricVerdict(
            m.name, Outcome.ERROR, why, critical=m.critical, transient=True, measured=False
        )
        for m in spec.judged_metrics()
    ]
    return combine(verdicts, spec.limits, tally, look, warm_up=warm_up)


PREFLIGHT_ATTEMPTS = 3
PREFLIGHT_BACKOFF = 2.0  # seconds before the second attempt, doubled after


def preflight(
    rollout: Rollout,
    provider: MetricProvider | None = None,
    *,
    now: datetime | None = None,
    sleep: Any = time.sleep,
) -> tuple[list[str], dict[str, Noise]]:
    """Problems that make analysis impossible, found before any user sees the canary
    (unreadable keys, rejected keys, queries the provider refuses; [] when all is well),
    and each ratio metric's noise and traffic on the stable fleet over
    ``analysis.noise_history`` (for the dispersion and the feasibility forecast).

    Only the baseline's queries run (the canary has no traffic yet); no data is not a
    problem (a metric may be new), an error is. A problem is asked again a few times
    (a transient rate limit is no reason to roll back before the first shift)."""
    plan = rollout.plan
    now = now or utcnow()  # the task's one clock
    try:
        provider = provider or provider_for(plan.analysis)
    except Exception as exc:
        return [f"analysis provider {plan.analysis.provider}: {exc}"], {}
    baseline = contexts(rollout)[plan.stable.name]
    queries = [
        query
        for m, metric in enumerate(plan.analysis.judged_metrics())
        for query in metric_queries(metric, baseline, f"m{m}")
    ]
    viewers = plan.analysis.split_viewers()
    if viewers is not None:  # a viewer count the provider refuses is found here too
        queries += viewer_queries(viewers, baseline, 0)
    problems: list[str] = []
    for attempt in range(PREFLIGHT_ATTEMPTS):
        try:
            problems = list(provider.check(queries, now))
        except Exception as exc:  # check must not raise either
            problems = [f"analysis provider {plan.analysis.provider} check failed: {exc!r}"]
        if not problems:
            break
        if attempt + 1 < PREFLIGHT_ATTEMPTS:
            sleep(PREFLIGHT_BACKOFF * 2**attempt)
    if problems:
        return problems, {}
    return [], stable_noise(rollout, provider, now)


def stable_noise(rollout: Rollout, provider: MetricProvider, now: datetime) -> dict[str, Noise]:
    """Each ratio metric's noise on the stable fleet over the last ``noise_history``: no
    answer is no prior (the stage's own intervals are then all the judge has)."""
    spec = rollout.plan.analysis
    if spec.noise_history <= 0 or spec.dispersion != "estimate":
        return {}
    stable = {rollout.plan.stable.name: contexts(rollout)[rollout.plan.stable.name]}
    start = now - timedelta(seconds=spec.noise_history)
    measured = measure(provider, spec, stable, start, now, deadline=deadline_or_default(None))
    noise: dict[str, Noise] = {}
    for metric in spec.judged_metrics():
        found = measured.get((metric.name, rollout.plan.stable.name))
        if not isinstance(metric, RatioMetric) or found is None or not found.series:
            continue
        periods = list(found.series.values())
        estimated = history_noise(periods, f"stable fleet, last {spec.noise_history // 60} min")
        minutes = len(periods) * spec.period / 60
        requests = sum(c.total for c in periods)
        bursty, bursty_df = request_dispersion([c.total for c in periods])
        noise[metric.name] = estimated.model_copy(
            update={
                "requests_per_minute": requests / minutes if minutes else None,
                "rate": (sum(c.errors for c in periods) / requests) if requests else None,
                "requests_dispersion": bursty if bursty_df else None,
                "requests_df": bursty_df,
            }
        )
    found = measured.get((SPLIT_VIEWERS, rollout.plan.stable.name))
    if found is not None and found.series:
        # The split check's prior when it counts viewers: how bursty their count is.
        totals = [c.total for c in found.series.values()]
        bursty, bursty_df = request_dispersion(totals)
        minutes = len(totals) * spec.period / 60
        noise[SPLIT_VIEWERS] = Noise(
            source=f"stable fleet's viewers, last {spec.noise_history // 60} min",
            requests_per_minute=sum(totals) / minutes if minutes else None,
            requests_dispersion=bursty if bursty_df else None,
            requests_df=bursty_df,
        )
    return noise
