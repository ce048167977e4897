"""The seam between fetching and judging.

A provider answers two questions: the count of a query in each period between two
instants (``fetch_series``, for ratio metrics: the judge needs each interval, not only the
window's sum, to see how much the counts vary beyond chance), and one aggregate of a
query over the window (``fetch``, for threshold metrics). Everything else is shared here:
building the queries of each metric and variant, batching them, and turning answers into
``Measurement``s. Providers raise ``ProviderError``; ``measure`` turns it into an error
measurement, so nothing raises into the workflow.

Every call takes a ``deadline`` (a ``time.monotonic()`` instant): a provider never works
past it, and reports a spent budget as a transient ``ProviderError``, so a slow or
rate-limited source makes one inconclusive look, not a Lambda timeout.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from orchestrator.analysis.counts import Counts
from orchestrator.models.analysis import (
    AnalysisSpec,
    RatioMetric,
    ThresholdMetric,
    fill_template,
)

CHECK_WINDOW = timedelta(minutes=10)
MAX_COUNT = 1e15  # events in one period beyond any real fleet: a unit or query mistake
LOOK_BUDGET = 20.0  # seconds a look may spend fetching: well under Analyze's 60 s timeout


class ProviderError(Exception):
    """The provider could not answer. ``transient`` errors may pass at the next look
    (timeouts, 5xx, rate limits); the others (bad key, bad query) will not."""

    def __init__(self, message: str, *, transient: bool = True) -> None:
        super().__init__(message)
        self.transient = transient


def deadline_or_default(deadline: float | None, budget: float = LOOK_BUDGET) -> float:
    """The caller's deadline, or one ``budget`` seconds from now."""
    return time.monotonic() + budget if deadline is None else deadline


def time_left(deadline: float) -> float:
    return deadline - time.monotonic()


def remaining(deadline: float, what: str) -> float:
    """Seconds left before ``deadline``; past it, the transient error a look reports."""
    left = time_left(deadline)
    if left <= 0:
        raise budget_spent(f"{what} not finished")
    return left


def check_period(period: int) -> None:
    if period <= 0:
        raise ProviderError(f"period must be positive, not {period}", transient=False)


def budget_spent(what: str) -> ProviderError:
    return ProviderError(f"{what}: the look's time budget spent", transient=True)


class IncompleteData(ProviderError):
    """The answer is not final yet (e.g. CloudWatch PartialData): judge nothing from it."""


@dataclass(frozen=True)
class QueryContext:
    """Values a query template may use."""

    variant: str
    version: str
    host: str
    rollout_id: str

    def fill(self, template: str) -> str:
        return fill_template(
            template,
            {
                "variant": self.variant,
                "version": self.version,
                "host": self.host,
                "rollout_id": self.rollout_id,
            },
        )


@dataclass(frozen=True)
class Query:
    id: str  # unique in a batch: letters, digits and underscores, starting with a letter
    text: str  # a CloudWatch metric name or a Datadog query, placeholders filled
    context: QueryContext
    stat: str = "Sum"  # CloudWatch statistic; counts always use Sum
    aggregator: str = "sum"  # how the window's points become one value


@dataclass(frozen=True)
class Measurement:
    """A provider's answer for one metric and one variant: counts, a value, or why not."""

    counts: Counts | None = None
    value: float | None = None
    error: str | None = None  # could not measure
    transient: bool = True
    missing: str | None = None  # measured, but no (or incomplete) data: inconclusive
    series: dict[datetime, Counts] | None = None  # ratio metrics: the counts of each period

    @property
    def ok(self) -> bool:
        return self.error is None and self.missing is None


# Period start (aware UTC, a multiple of the period since the epoch) -> that period's sum.
Series = dict[datetime, float]


class MetricProvider(Protocol):
    def fetch(
        self,
        queries: Sequence[Query],
        start: datetime,
        end: datetime,
        *,
        deadline: float | None = None,
    ) -> dict[str, float | None]:
        """One aggregate per query id; ``None`` when the query matched no data."""
        ...

    def fetch_series(
        self,
        queries: Sequence[Query],
        start: datetime,
        end: datetime,
        period: int,
        *,
        deadline: float | None = None,
    ) -> dict[str, Series]:
        """The sum of each count query in every ``period`` seconds of [start, end); a query
        without data maps to ``{}``. A period is counted once, however many pages or
        series it came in."""
        ...

    def check(self, queries: Sequence[Query], now: datetime) -> list[str]:
        """Problems that would make analysis impossible (bad key, bad query); [] if none."""
        ...


class BaseProvider:
    """Shared ``check``: run the queries over the last minutes; an error is a problem."""

    def fetch(
        self,
        queries: Sequence[Query],
        start: datetime,
        end: datetime,
        *,
        deadline: float | None = None,
    ) -> dict[str, float | None]:
        raise NotImplementedError

    def fetch_series(
        self,
        queries: Sequence[Query],
        start: datetime,
        end: datetime,
        period: int,
        *,
        deadline: float | None = None,
    ) -> dict[str, Series]:
        raise NotImplementedError

    def check(self, queries: Sequence[Query], now: datetime) -> list[str]:
        try:
            self.fetch(queries, now - CHECK_WINDOW, now)
        except IncompleteData:
            return []
        except ProviderError as exc:
            return [str(exc)]
        return []


def metric_queries(
    metric: RatioMetric | ThresholdMetric, context: QueryContext, prefix: str
) -> list[Query]:
    if isinstance(metric, RatioMetric):
        return [
            Query(f"{prefix}_num", context.fill(metric.numerator), context),
            Query(f"{prefix}_den", context.fill(metric.denominator), context),
        ]
    return [
        Query(f"{prefix}_val", context.fill(metric.query), context, metric.stat, metric.aggregator)
    ]


def measure(
    provider: MetricProvider,
    spec: AnalysisSpec,
    contexts: Mapping[str, QueryContext],
    start: datetime,
    end: datetime,
    *,
    deadline: float | None = None,
) -> dict[tuple[str, str], Measurement]:
    """Every metric for every variant, keyed by (metric, variant): ratio metrics from one
    ``fetch_series`` batch (their counts per period and in all), threshold metrics from
    one ``fetch``."""
    plan: dict[tuple[str, str], list[Query]] = {}
    ratios: set[tuple[str, str]] = set()
    for m, metric in enumerate(spec.judged_metrics()):
        for v, (variant, context) in enumerate(contexts.items()):
            plan[metric.name, variant] = metric_queries(metric, context, f"m{m}v{v}")
            if isinstance(metric, RatioMetric):
                ratios.add((metric.name, variant))
    found: dict[tuple[str, str], Measurement] = {}
    counted = {key: batch for key, batch in plan.items() if key in ratios}
    valued = {key: batch for key, batch in plan.items() if key not in ratios}
    if counted:
        series = _guarded(
            lambda queries: provider.fetch_series(
                queries, start, end, spec.period, deadline=deadline
            ),
            counted,
        )
        if isinstance(series, dict):
            found |= {key: _counted(batch, series) for key, batch in counted.items()}
        else:
            found |= dict.fromkeys(counted, series)
    if valued:
        answers = _guarded(
            lambda queries: provider.fetch(queries, start, end, deadline=deadline), valued
        )
        if isinstance(answers, dict):
            found |= {key: _measurement(batch, answers) for key, batch in valued.items()}
        else:
            found |= dict.fromkeys(valued, answers)
    return found


def _guarded(call: Any, plan: Mapping[tuple[str, str], list[Query]]) -> Any:
    """The provider's answer, or the one Measurement every metric of the batch gets."""
    queries = [query for batch in plan.values() for query in batch]
    try:
        return call(queries)
    except IncompleteData as exc:
        return Measurement(missing=str(exc))
    except ProviderError as exc:
        return Measurement(error=str(exc), transient=exc.transient)
    except Exception as exc:  # a provider bug must not reach the workflow either
        return Measurement(error=f"provider failed: {exc!r}", transient=True)


def _counted(batch: list[Query], answers: Mapping[str, object]) -> Measurement:
    """A ratio's counts per period and in all, from its numerator's and denominator's
    series. Totals are checked as a whole (numerator at most denominator); a period whose
    numerator landed before its denominator is kept out of the per-period counts only."""
    numerator_query, denominator_query = batch
    numerators = answers.get(numerator_query.id)
    denominators = answers.get(denominator_query.id)
    for query, values in ((numerator_query, numerators), (denominator_query, denominators)):
        if values is None or not isinstance(values, Mapping) or not values:
            return Measurement(missing=f"no data for {query.text!r}")
        for value in values.values():
            if isinstance(value, bool) or not isinstance(value, int | float):
                return Measurement(error=f"non-numeric answer {value!r} for {query.text!r}")
            if not math.isfinite(value) or value < 0 or value > MAX_COUNT:
                return Measurement(error=f"impossible value {value!r} for {query.text!r}")
    assert isinstance(numerators, Mapping) and isinstance(denominators, Mapping)
    numerator = round(sum(numerators.values()))
    denominator = round(sum(denominators.values()))
    if numerator > denominator:
        return Measurement(
            error=f"numerator {numerator} above denominator {denominator} "
            f"({numerator_query.text!r} / {denominator_query.text!r})"
        )
    series: dict[datetime, Counts] = {}
    for moment in sorted(denominators):
        bad, total = round(numerators.get(moment, 0.0)), round(denominators[moment])
        if bad <= total:
            series[moment] = Counts(bad, total)
    return Measurement(counts=Counts(numerator, denominator), series=series)


def _measurement(batch: list[Query], answers: Mapping[str, object]) -> Measurement:
    values = []
    for query in batch:
        value = answers.get(query.id)
        if value is None:
            return Measurement(missing=f"no data for {query.text!r}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            return Measurement(error=f"non-numeric answer {value!r} for {query.text!r}")
        if not math.isfinite(value) or value < 0:
            return Measurement(error=f"impossible value {value!r} for {query.text!r}")
        values.append(float(value))
    if len(values) == 1:
        return Measurement(value=values[0])
    numerator, denominator = (round(v) for v in values)
    if numerator > denominator:
        return Measurement(
            error=f"numerator {numerator} above denominator {denominator} "
            f"({batch[0].text!r} / {batch[1].text!r})"
        )
    return Measurement(counts=Counts(numerator, denominator))
