"""CloudWatch: GetMetricData with MetricStat per variant (``Sum`` for counts; metric math is
not needed for counts, and moto does not evaluate it), all queries of a look batched in as
few calls as the 500-query and 100,800-datapoint limits allow, pages followed through
``NextToken``.

Nothing short of complete data is judged. A query any page of which reports a status other
than ``Complete`` (``PartialData``), or carries a message (``ArithmeticError``: points were
dropped), is incomplete: the look is inconclusive. A top-level message means CloudWatch
truncated the answer (``MaxMetricsExceeded`` and the like): an error naming the limit.
``Forbidden`` and access errors are permanent; throttling, ``InternalError`` and network
failures are transient. A timestamp repeated across pages is counted once.

Segments (``fetch_segment_series``): the app publishes the same metrics with one more
dimension (``browser``, ...). Its values are discovered with ListMetrics (filtered on the
plan's dimensions and the segment dimension's name, recently active, up to 500 a page),
then counted like any query, one MetricStat per value, batched by 500. ListMetrics may
take up to 15 minutes to list a value that has just appeared: such a value is not seen
(not judged) until then.

Every call has a deadline: it is checked between pages, the client this provider creates
has connect and read timeouts within it and makes no retries of its own (the next look is
the retry), and a spent budget is a transient error.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from .base import (
    LOOK_BUDGET,
    BaseProvider,
    IncompleteData,
    ProviderError,
    Query,
    SegmentSeries,
    Series,
    budget_spent,
    check_period,
    deadline_or_default,
    remaining,
)

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

MAX_QUERIES = 500  # per GetMetricData call
MAX_LISTED_VALUES = 500  # segment values read per query: one ListMetrics page
MAX_DATAPOINTS = 100_800  # per call before CloudWatch paginates
DEFAULT_BUDGET = LOOK_BUDGET  # seconds, when the caller gives no deadline
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 10.0
_PERMANENT = {
    "AccessDenied",
    "AccessDeniedException",
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "MissingParameter",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ValidationError",
}
_TRUNCATED = {
    "MaxQueryResultsExceeded",
    "MaxMetricsExceeded",
    "MaxMatchingResultsExceeded",
    "MaxQueryTimeRangeExceeded",
}

# query id -> (timestamp -> value): one value per timestamp, however many pages repeat it
_Points = dict[str, dict[datetime, float]]


class CloudWatchProvider(BaseProvider):
    def __init__(
        self,
        namespace: str,
        dimensions: dict[str, str] | None = None,
        period: int = 60,
        client: CloudWatchClient | None = None,
    ) -> None:
        self.namespace = namespace
        self.dimensions = dimensions or {}
        self.period = period
        self._client = client
        self._owned: dict[tuple[float, float], CloudWatchClient] = {}

    @property
    def client(self) -> CloudWatchClient:
        return self._client_within(CONNECT_TIMEOUT + READ_TIMEOUT)

    def fetch(
        self,
        queries: Sequence[Query],
        start: datetime,
        end: datetime,
        *,
        deadline: float | None = None,
    ) -> dict[str, float | None]:
        points = self._points(queries, start, end, self.period, None, deadline)
        return {query.id: _aggregate(points.get(query.id, {}), query) for query in queries}

    def fetch_series(
        self,
        queries: Sequence[Query],
        start: datetime,
        end: datetime,
        period: int,
        *,
        deadline: float | None = None,
    ) -> dict[str, Series]:
        check_period(period)
        points = self._points(queries, start, end, period, "Sum", deadline)
        return {
            query.id: _buckets(points.get(query.id, {}), start, end, period) for query in queries
        }

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
        check_period(period)
        deadline = deadline_or_default(deadline, DEFAULT_BUDGET)
        cut: list[tuple[Query, Query, str]] = []  # (per value, the query it cuts, value)
        for query in queries:
            for value in self._segment_values(query, dimension, deadline):
                one = Query(
                    f"{query.id}_{len(cut)}", query.text, query.context, segment=(dimension, value)
                )
                cut.append((one, query, value))
        points = self._points([one for one, _, _ in cut], start, end, period, "Sum", deadline)
        answers: SegmentSeries = {query.id: {} for query in queries}
        for one, query, value in cut:
            answers[query.id][value] = _buckets(points.get(one.id, {}), start, end, period)
        return answers

    def _segment_values(self, query: Query, dimension: str, deadline: float) -> list[str]:
        """The values of ``dimension`` published for this metric with exactly the plan's
        dimensions besides it (ListMetrics also returns metrics with more)."""
        from botocore.exceptions import BotoCoreError, ClientError

        fixed = {name: query.context.fill(value) for name, value in self.dimensions.items()}
        filters = [{"Name": n, "Value": v} for n, v in fixed.items()] + [{"Name": dimension}]
        kwargs: dict[str, Any] = {
            "Namespace": self.namespace,
            "MetricName": query.text,
            "Dimensions": filters,
            "RecentlyActive": "PT3H",
        }
        values: list[str] = []
        try:
            while len(values) < MAX_LISTED_VALUES:
                client = self._client_within(remaining(deadline, "CloudWatch ListMetrics"))
                page = client.list_metrics(**kwargs)
                for metric in page.get("Metrics") or []:
                    found = {d.get("Name"): d.get("Value") for d in metric.get("Dimensions") or []}
                    value = found.pop(dimension, None)
                    if isinstance(value, str) and found == fixed and value not in values:
                        values.append(value)
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise ProviderError(
                f"CloudWatch ListMetrics failed: {exc}", transient=code not in _PERMANENT
            ) from exc
        except BotoCoreError as exc:
            if time.monotonic() >= deadline:
                raise budget_spent(f"CloudWatch unreachable: {exc}") from exc
            raise ProviderError(f"CloudWatch unreachable: {exc}") from exc
        return sorted(values[:MAX_LISTED_VALUES])

    # -- GetMetricData -----------------------------------------------------------------

    def _points(
        self,
        queries: Sequence[Query],
        start: datetime,
        end: datetime,
        period: int,
        stat: str | None,
        deadline: float | None,
    ) -> _Points:
        deadline = deadline_or_default(deadline, DEFAULT_BUDGET)
        points: _Points = {}
        incomplete: dict[str, str] = {}  # query text -> why
        for batch in _batches(queries, start, end, period):
            ids = {f"q{i}": query for i, query in enumerate(batch)}
            request = [self._metric_stat(qid, q, period, stat) for qid, q in ids.items()]
            found, problems = self._pages(request, start, end, deadline)
            for qid, query in ids.items():
                points[query.id] = found.get(qid, {})
                if qid in problems:
                    incomplete[query.text] = problems[qid]
        if incomplete:
            detail = "; ".join(f"{text}: {why}" for text, why in sorted(incomplete.items()))
            raise IncompleteData(f"CloudWatch data not complete ({detail})")
        return points

    def _metric_stat(self, qid: str, query: Query, period: int, stat: str | None) -> dict[str, Any]:
        dimensions = [
            {"Name": name, "Value": query.context.fill(value)}
            for name, value in self.dimensions.items()
        ]
        if query.segment is not None:
            dimensions.append({"Name": query.segment[0], "Value": query.segment[1]})
        metric = {"Namespace": self.namespace, "MetricName": query.text, "Dimensions": dimensions}
        return {
            "Id": qid,
            "MetricStat": {"Metric": metric, "Period": period, "Stat": stat or query.stat},
            "ReturnData": True,
        }

    def _pages(
        self, request: list[dict[str, Any]], start: datetime, end: datetime, deadline: float
    ) -> tuple[_Points, dict[str, str]]:
        """Every page of one call: the points per id, and why an id is not complete."""
        from botocore.exceptions import BotoCoreError, ClientError

        found: _Points = {}
        problems: dict[str, str] = {}
        kwargs: dict[str, Any] = {"MetricDataQueries": request, "StartTime": start, "EndTime": end}
        try:
            while True:
                client = self._client_within(_remaining(deadline))
                page = client.get_metric_data(**kwargs)
                _check_messages(page.get("Messages") or [])
                for result in page.get("MetricDataResults") or []:
                    _read_result(result, found, problems)
                if not page.get("NextToken"):
                    return found, problems
                kwargs["NextToken"] = page["NextToken"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise ProviderError(
                f"CloudWatch GetMetricData failed: {exc}", transient=code not in _PERMANENT
            ) from exc
        except BotoCoreError as exc:
            if time.monotonic() >= deadline:
                raise budget_spent(f"CloudWatch unreachable: {exc}") from exc
            raise ProviderError(f"CloudWatch unreachable: {exc}") from exc

    def _client_within(self, remaining: float) -> CloudWatchClient:
        """The injected client as it is; else one whose timeouts fit in ``remaining``."""
        if self._client is not None:
            return self._client
        timeouts = (min(CONNECT_TIMEOUT, remaining), min(READ_TIMEOUT, remaining))
        if timeouts not in self._owned:
            import boto3
            from botocore.config import Config

            config = Config(
                connect_timeout=timeouts[0],
                read_timeout=timeouts[1],
                retries={"mode": "standard", "total_max_attempts": 1},
            )
            if timeouts != (CONNECT_TIMEOUT, READ_TIMEOUT):
                # A budget nearly spent: a client for this call only, not kept.
                return boto3.client("cloudwatch", config=config)
            self._owned[timeouts] = boto3.client("cloudwatch", config=config)
        return self._owned[timeouts]


def _batches(
    queries: Sequence[Query], start: datetime, end: datetime, period: int
) -> Iterator[Sequence[Query]]:
    """Slices small enough that CloudWatch answers each in one page."""
    per_query = max(1, math.ceil((end - start).total_seconds() / period))
    size = max(1, min(MAX_QUERIES, MAX_DATAPOINTS // per_query))
    for offset in range(0, len(queries), size):
        yield queries[offset : offset + size]


def _check_messages(messages: Sequence[Mapping[str, Any]]) -> None:
    """A top-level message means CloudWatch answered only part of the request."""
    if not messages:
        return
    codes = {str(m.get("Code")) for m in messages}
    text = "; ".join(f"{m.get('Code')}: {m.get('Value')}" for m in messages)
    if codes & _TRUNCATED:
        raise ProviderError(
            f"CloudWatch truncated the answer ({text}); fewer or narrower queries are needed",
            transient=False,
        )
    raise IncompleteData(f"CloudWatch answered with messages ({text})")


def _read_result(result: Mapping[str, Any], found: _Points, problems: dict[str, str]) -> None:
    qid = str(result.get("Id"))
    label = result.get("Label") or qid
    status = result.get("StatusCode", "Complete")
    if status in ("InternalError", "Forbidden"):
        raise ProviderError(f"CloudWatch {status} for {label}", transient=status == "InternalError")
    if status != "Complete":
        problems.setdefault(qid, f"status {status}")
    for message in result.get("Messages") or []:
        problems.setdefault(qid, f"{message.get('Code')}: {message.get('Value')}")
    timestamps, values = result.get("Timestamps") or [], result.get("Values") or []
    if len(timestamps) != len(values):
        raise ProviderError(
            f"CloudWatch returned {len(timestamps)} timestamps and {len(values)} values for {label}"
        )
    points = found.setdefault(qid, {})
    for moment, value in zip(timestamps, values, strict=True):
        if not isinstance(moment, datetime):
            raise ProviderError(f"CloudWatch returned a malformed timestamp {moment!r} for {label}")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProviderError(f"CloudWatch returned a non-numeric value {value!r} for {label}")
        points.setdefault(moment.astimezone(UTC), float(value))


def _buckets(
    points: Mapping[datetime, float], start: datetime, end: datetime, period: int
) -> Series:
    """Each point added to its period, aligned to the epoch; periods outside [start, end)
    left out."""
    first, last = start.timestamp(), end.timestamp()
    series: Series = {}
    for moment, value in points.items():
        second = int(moment.timestamp()) // period * period
        if second + period > first and second < last:
            bucket = datetime.fromtimestamp(second, UTC)
            series[bucket] = series.get(bucket, 0.0) + value
    return dict(sorted(series.items()))


def _aggregate(points: Mapping[datetime, float], query: Query) -> float | None:
    if not points:
        return None
    values = list(points.values())
    if query.aggregator == "sum":
        return float(sum(values))
    if query.aggregator == "max":
        return max(values)
    if query.aggregator == "min":
        return min(values)
    if query.aggregator == "last":
        return points[max(points)]
    return sum(values) / len(values)


def _remaining(deadline: float) -> float:
    return remaining(deadline, "CloudWatch GetMetricData")
