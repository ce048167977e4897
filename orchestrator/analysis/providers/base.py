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
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from orchestrator.analysis.counts import Counts
from orchestrator.models.analysis import (
    SPLIT_VIEWERS,
    AnalysisSpec,
    RatioMetric,
    ThresholdMetric,
    fill_template,
)

CHECK_WINDOW = timedelta(minutes=10)
MAX_COUNT = 1e15  # events in one period beyond any real fleet: a unit or query mistake
LOOK_BUDGET = 20.0  # seconds a look may spend fetching: well under Analyze's 60 s timeout
VIEWERS_PREFIX = "sv"  # query ids of the split's viewer counts: sv<variant>_den


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
    segment: tuple[str, str] | None = None  # (dimension, value): one segment's counts only


@dataclass(frozen=True)
class Measurement:
    """A provider's answer for one metric and one variant: counts, a value, or why not."""

    counts: Counts | None = None
    value: float | None = None
    error: str | None = None  # could not measure
    transient: bool = True
    missing: str | None = None  # measured, but no (or incomplete) data: inconclusive
    series: dict[datetime, Counts] | None = None  # ratio metrics: the counts of each period
    # Ratio metrics cut by the plan's segments: "browser=ie-11" -> its counts and series;
    # None when not asked for or not measured (``segments_missing`` says why).
    segments: dict[str, Measurement] | None = None
    unjudged_segments: tuple[str, ...] = ()  # values beyond max_values, fewest requests
    segments_missing: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.missing is None


# Period start (aware UTC, a multiple of the period since the epoch) -> that period's sum.
Series = dict[datetime, float]
# Query id -> segment value (``ie-11``) -> that value's series.
SegmentSeries = dict[str, dict[str, Series]]


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

    def fetch_segment_series(
        self,
        queries: Sequence[Query],
        dimension: str,
        start: datetime,
        end: datetime,
        period: int,
        *,
        deadline: float | None = None,
        max_values: int = 50,
    ) -> SegmentSeries:
        """``fetch_series`` per value of a segment ``dimension`` (a CloudWatch dimension, a
        Datadog tag). ``max_values`` may bound the work; ``measure`` keeps the largest."""
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

    def fetch_segment_series(
        self,
        queries: Sequence[Query],
        dimension: str,
        start: datetime,
        end: datetime,
        period: int,
        *,
        deadline: float | None = None,
        max_values: int = 50,
    ) -> SegmentSeries:
        raise ProviderError("this provider cannot count by segment", transient=False)

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


def viewer_queries(viewers: str, context: QueryContext, variant: int) -> list[Query]:
    """The one query counting a variant's viewers (``analysis.split.viewers``): a
    denominator with no numerator."""
    return [Query(f"{VIEWERS_PREFIX}{variant}_den", context.fill(viewers), context)]


def measure(
    provider: MetricProvider,
    spec: AnalysisSpec,
    contexts: Mapping[str, QueryContext],
    start: datetime,
    end: datetime,
    *,
    deadline: float | None = None,
    segments: bool = False,
) -> dict[tuple[str, str], Measurement]:
    """Every metric for every variant, keyed by (metric, variant): ratio metrics from one
    ``fetch_series`` batch (their counts per period and in all), threshold metrics from
    one ``fetch``; with ``segments``, each ratio metric's counts per declared segment value
    too, from one ``fetch_segment_series`` batch per segment; the split's viewer counts
    (``analysis.split.viewers``) from a ``fetch_series`` batch of their own."""
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
        found |= _counted_batch(provider, spec, counted, start, end, deadline)
        if segments and spec.segments:
            found |= _segmented(provider, spec, counted, found, start, end, deadline)
    if valued:
        answers = _guarded(
            lambda queries: provider.fetch(queries, start, end, deadline=deadline), valued
        )
        if isinstance(answers, dict):
            found |= {key: _measurement(batch, answers) for key, batch in valued.items()}
        else:
            found |= dict.fromkeys(valued, answers)
    viewers = spec.split_viewers()
    if viewers is not None:
        # Last, in a batch of their own: the metrics' counts come first in the look's
        # budget, and as a batch fails as a whole, a count only the split check reads must
        # never make the metrics inconclusive or an error (which ends in a rollback).
        seen = {
            (SPLIT_VIEWERS, variant): viewer_queries(viewers, context, v)
            for v, (variant, context) in enumerate(contexts.items())
        }
        found |= _counted_batch(provider, spec, seen, start, end, deadline)
    return found


def _counted_batch(
    provider: MetricProvider,
    spec: AnalysisSpec,
    plan: Mapping[tuple[str, str], list[Query]],
    start: datetime,
    end: datetime,
    deadline: float | None,
) -> dict[tuple[str, str], Measurement]:
    """Counts per period and in all of every key of ``plan``, from one ``fetch_series``."""
    series = _guarded(
        lambda queries: provider.fetch_series(queries, start, end, spec.period, deadline=deadline),
        plan,
    )
    if isinstance(series, dict):
        return {key: _counted(batch, series) for key, batch in plan.items()}
    return dict.fromkeys(plan, series)


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
    if len(batch) == 1:  # a count with no numerator (the split's viewers): none are bad
        (only,) = batch
        found = answers.get(only.id)
        zeros = dict.fromkeys(found, 0.0) if isinstance(found, Mapping) else found
        return _counted(
            [Query(f"{only.id}_zero", only.text, only.context), only],
            {f"{only.id}_zero": zeros, only.id: found},
        )
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


def _segmented(
    provider: MetricProvider,
    spec: AnalysisSpec,
    counted: Mapping[tuple[str, str], list[Query]],
    found: Mapping[tuple[str, str], Measurement],
    start: datetime,
    end: datetime,
    deadline: float | None,
) -> dict[tuple[str, str], Measurement]:
    """Each ratio metric's measurements with their segments. Only metrics whose totals were
    measured are cut; a failure here leaves the totals as they are and says why the
    segments are unknown (they are then listed as not judged)."""
    out: dict[tuple[str, str], Measurement] = {}
    for segment in spec.segments:
        keys = [k for k in counted if found[k].ok and k[0] in _names(spec, segment)]
        if not keys:
            continue
        dimension = (
            segment.datadog_tag if spec.provider == "datadog" else segment.cloudwatch_dimension
        )
        answer = _guarded(
            lambda queries, d=dimension, n=segment.max_values: provider.fetch_segment_series(
                queries, d, start, end, spec.period, deadline=deadline, max_values=n
            ),
            {k: counted[k] for k in keys},
        )
        for metric in {k[0] for k in keys}:
            arms = [k for k in keys if k[0] == metric]
            for key, cut in _cut(segment.by, segment.max_values, arms, counted, answer).items():
                before = out.get(key, found[key])
                merged = dict(before.segments or {}) | cut.get("segments", {})
                out[key] = replace(
                    before,
                    segments=None if "missing" in cut else merged,
                    unjudged_segments=before.unjudged_segments + cut.get("unjudged", ()),
                    segments_missing=cut.get("missing", before.segments_missing),
                )
    return out


def _names(spec: AnalysisSpec, segment: Any) -> set[str]:
    return {
        m.name
        for m in spec.judged_metrics()
        if isinstance(m, RatioMetric) and segment in spec.segmented(m.name)
    }


def _cut(
    by: str,
    max_values: int,
    arms: list[tuple[str, str]],
    counted: Mapping[tuple[str, str], list[Query]],
    answer: Any,
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per arm of one metric: its segments' measurements, the values beyond ``max_values``
    (the same values for every arm: the largest by requests of all arms), or why none."""
    if isinstance(answer, Measurement):
        why = answer.error or answer.missing or "no answer"
        return {key: {"missing": why} for key in arms}
    if not isinstance(answer, Mapping):
        return {key: {"missing": f"malformed segment answer {answer!r}"} for key in arms}
    requests: dict[str, float] = {}
    for key in arms:
        by_value = answer.get(counted[key][1].id) or {}
        for value, series in by_value.items():
            if isinstance(series, Mapping):
                total = sum(v for v in series.values() if isinstance(v, int | float))
                requests[value] = requests.get(value, 0.0) + total
    kept = sorted(requests, key=lambda v: (-requests[v], v))
    kept, dropped = kept[:max_values], kept[max_values:]
    dropped.sort(key=lambda v: (requests[v], v))
    cut: dict[tuple[str, str], dict[str, Any]] = {}
    for key in arms:
        numerator, denominator = counted[key]
        by_num = answer.get(numerator.id) or {}
        by_den = answer.get(denominator.id) or {}
        segments = {}
        for value in kept:
            if value not in by_den:
                continue
            pair = {numerator.id: by_num.get(value) or {}, denominator.id: by_den[value]}
            if not pair[numerator.id]:  # no bad events reported: none happened
                pair[numerator.id] = dict.fromkeys(by_den[value], 0.0)
            segments[f"{by}={value}"] = _counted([numerator, denominator], pair)
        cut[key] = {"segments": segments, "unjudged": tuple(f"{by}={v}" for v in dropped)}
    return cut
