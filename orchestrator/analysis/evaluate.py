"""The calls the workflow makes: ``preflight`` before the first traffic shift, and
``evaluate`` at every look. Neither raises for anything a provider or its data does."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from orchestrator.models import Rollout
from orchestrator.models.analysis import AnalysisSpec, DatadogSource, RatioMetric

from .aggregate import combine
from .judge import MetricVerdict, Outcome, Verdict, judge_ratio, judge_threshold
from .providers import MetricProvider, QueryContext, measure, metric_queries
from .providers.base import Measurement
from .providers.datadog import HOST_OVERRIDE as DATADOG_HOST_OVERRIDE
from .schedule import look_at

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
    start: datetime,
    end: datetime,
    provider: MetricProvider | None = None,
    *,
    history: Sequence[Mapping[str, Any]] = (),
) -> Verdict:
    """Judge the canary against the baseline over ``[start, end]``.

    ``history``: the earlier verdicts of this stage (``Verdict.as_dict()``), for the
    failure and error limits.
    """
    plan = rollout.plan
    spec = plan.analysis
    try:
        provider = provider or provider_for(spec)
    except Exception as exc:  # e.g. a secret that cannot be read
        return _unmeasured(spec, f"no provider: {exc}", transient=True, history=history)
    look = look_at(plan, rollout.stage_index, (end - start).total_seconds())
    named = contexts(rollout)
    measured = measure(provider, spec, named, start, end + _END_SLACK)
    canary_name, baseline_name = plan.canary.name, plan.stable.name
    verdicts = [
        _judge(
            metric, measured[metric.name, canary_name], measured[metric.name, baseline_name], look
        )
        for metric in spec.judged_metrics()
    ]
    return combine(verdicts, spec.limits, history, look.number)


def _judge(metric: Any, canary: Measurement, baseline: Measurement, look: Any) -> MetricVerdict:
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
        return judge_ratio(metric, canary.counts, baseline.counts, look)
    return judge_threshold(metric, canary.value)


def _unmeasured(
    spec: AnalysisSpec, why: str, *, transient: bool, history: Sequence[Mapping[str, Any]]
) -> Verdict:
    verdicts = [
        MetricVerdict(
            m.name, Outcome.ERROR, why, critical=m.critical, transient=transient, measured=False
        )
        for m in spec.judged_metrics()
    ]
    return combine(verdicts, spec.limits, history)


def preflight(rollout: Rollout, provider: MetricProvider | None = None) -> list[str]:
    """Problems that make analysis impossible, found before any user sees the canary:
    unreadable keys, rejected keys, queries the provider refuses. [] when all is well.

    Only the baseline's queries run (the canary has no traffic yet), over recent minutes;
    no data is not a problem (a metric may be new), an error is."""
    plan = rollout.plan
    try:
        provider = provider or provider_for(plan.analysis)
    except Exception as exc:
        return [f"analysis provider {plan.analysis.provider}: {exc}"]
    baseline = contexts(rollout)[plan.stable.name]
    queries = [
        query
        for m, metric in enumerate(plan.analysis.judged_metrics())
        for query in metric_queries(metric, baseline, f"m{m}")
    ]
    try:
        return list(provider.check(queries, datetime.now(tz=UTC)))
    except Exception as exc:  # check must not raise either
        return [f"analysis provider {plan.analysis.provider} check failed: {exc!r}"]
