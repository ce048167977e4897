"""Datadog through ``datadog-api-client``: v2 formula queries (``/api/v2/query/scalar``, one
value per query over the window; ``/api/v2/query/timeseries`` with ``interval``, the sum of
each period) with v1 ``query_metrics`` (``/api/v1/query``; per period through
``.rollup(sum, <period>)``) as a fallback or on request. Each value is read by its formula's
name (a scalar column's ``name``, a series' ``query_index``), never by position when names
are given; the groups of one query are summed; a value that is not a number is an error,
never a crash. Bodies are read as the JSON Datadog documents, checked here.

Keys come from Secrets Manager through powertools' parameters utility (cached), never from
the plan. Nothing retries behind this module's back: the client's connection pool makes one
request per attempt. A 429 waits for ``Retry-After`` or ``X-RateLimit-Reset`` (the longer)
and retries at most ``max_retries`` times, and only while the wait fits the deadline; each
request's timeout is the configured one or the time left, whichever is shorter; a spent
budget is a transient error. Timeouts and 5xx are transient; 400 (bad query) and 401/403
(bad key) are permanent. Sparse counters report no series when nothing happened: wrap such
numerators in ``default_zero()`` or the look stays inconclusive.

Segments (``fetch_segment_series``): each query is sent grouped by the segment's tag
(``sum:app.errors{...} by {browser}.as_count()``, inside any wrapper) and each series is
read under the value of that tag in its ``group_tags`` (v2) or ``tag_set`` (v1); series
without the tag (points not tagged) are left out.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import partial
from typing import Any, TypeVar

from orchestrator.models.analysis import DatadogSource

from .base import (
    CHECK_WINDOW,
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
    time_left,
)

HOST_OVERRIDE = "EDGESHIFT_DATADOG_HOST"  # deployment setting (local stack, proxies)
MAX_RATE_LIMIT_WAIT = 10.0  # seconds; longer waits are reported instead of slept
DEFAULT_BUDGET = LOOK_BUDGET  # seconds per call when the caller gives no deadline
BATCH = 16  # queries per v2 request
_MIN_REQUEST = 0.25  # seconds a request needs at least: a wait leaving less is not slept
_Answer = TypeVar("_Answer")
_FALLBACK_STATUSES = {404, 405, 408, 500, 501, 502, 503, 504}
_WRAPPER = re.compile(r"^\s*([a-z_]+)\((.*)\)\s*$", re.DOTALL)
_METRIC_QUERY = re.compile(r"^\s*\w+:[\w.]+\s*\{[^{}]*\}(\s*by\s*\{[^{}]*\})?(\.as_\w+\(\))?\s*$")


def secret_from_secrets_manager(name: str) -> str:
    from aws_lambda_powertools.utilities import parameters

    value = parameters.get_secret(name, max_age=300)
    if not isinstance(value, str):
        raise ProviderError(f"secret {name!r} is not a string", transient=False)
    return value.strip()


class DatadogProvider(BaseProvider):
    def __init__(
        self,
        source: DatadogSource,
        *,
        host: str | None = None,
        secret: Callable[[str], str] = secret_from_secrets_manager,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.source = source
        self.host = host or os.environ.get(HOST_OVERRIDE) or f"https://api.{source.site}"
        self._secret = secret
        self._keys: tuple[str, str] | None = None
        self._sleep = sleep
        self._client: Any = None

    def fetch(
        self,
        queries: Sequence[Query],
        start: datetime,
        end: datetime,
        *,
        deadline: float | None = None,
    ) -> dict[str, float | None]:
        due = _deadline(deadline)
        return self._v2_or_v1(
            partial(self._v2_scalar, queries, start, end, due),
            partial(self._v1, queries, start, end, due),
            due,
        )

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
        due = _deadline(deadline)
        return self._v2_or_v1(
            partial(self._v2_series, queries, start, end, period, due),
            partial(self._v1_series, queries, start, end, period, due),
            due,
        )

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
        due = _deadline(deadline)
        grouped = [replace(q, text=_grouped_by(q.text, dimension)) for q in queries]
        return self._v2_or_v1(
            partial(self._v2_series, grouped, start, end, period, due, dimension),
            partial(self._v1_series, grouped, start, end, period, due, dimension),
            due,
        )

    def check(self, queries: Sequence[Query], now: datetime) -> list[str]:
        """The keys, then the queries over the last minutes, within one time budget."""
        from datadog_api_client.v1.api.authentication_api import AuthenticationApi

        deadline = _deadline(None)
        try:
            api = AuthenticationApi(self._api_client())  # type: ignore[no-untyped-call]
            self._call(api.validate, "key validation", deadline)
            self.fetch(queries, now - CHECK_WINDOW, now, deadline=deadline)
        except IncompleteData:
            return []
        except ProviderError as exc:
            return [str(exc)]
        return []

    def _v2_or_v1(
        self, v2: Callable[[], _Answer], v1: Callable[[], _Answer], deadline: float
    ) -> _Answer:
        if self.source.api == "v1":
            return v1()
        try:
            return v2()
        except _Fallback as exc:
            if not self.source.fallback_to_v1:
                raise ProviderError(str(exc), transient=exc.transient) from None
            if time.monotonic() >= deadline:
                raise budget_spent(str(exc)) from None
            return v1()

    # -- v2 ----------------------------------------------------------------------------

    def _v2_scalar(
        self, queries: Sequence[Query], start: datetime, end: datetime, deadline: float
    ) -> dict[str, float | None]:
        from datadog_api_client.v2.api.metrics_api import MetricsApi
        from datadog_api_client.v2.model.metrics_aggregator import MetricsAggregator
        from datadog_api_client.v2.model.metrics_data_source import MetricsDataSource
        from datadog_api_client.v2.model.metrics_scalar_query import MetricsScalarQuery
        from datadog_api_client.v2.model.query_formula import QueryFormula
        from datadog_api_client.v2.model.scalar_formula_query_request import (
            ScalarFormulaQueryRequest,
        )
        from datadog_api_client.v2.model.scalar_formula_request import ScalarFormulaRequest
        from datadog_api_client.v2.model.scalar_formula_request_attributes import (
            ScalarFormulaRequestAttributes as Attributes,
        )
        from datadog_api_client.v2.model.scalar_formula_request_queries import (
            ScalarFormulaRequestQueries as Queries,
        )
        from datadog_api_client.v2.model.scalar_formula_request_type import (
            ScalarFormulaRequestType,
        )

        api = MetricsApi(self._api_client())  # type: ignore[no-untyped-call]
        answers: dict[str, float | None] = {}
        for names in _batches(queries):
            metrics = [
                MetricsScalarQuery(
                    aggregator=MetricsAggregator(_v2_aggregator(q.aggregator)),  # type: ignore[no-untyped-call]
                    data_source=MetricsDataSource.METRICS,
                    query=q.text,
                    name=name,
                )
                for name, q in names.items()
            ]
            attributes = Attributes(
                _from=_ms(start),
                to=_ms(end),
                queries=Queries(metrics),  # type: ignore[no-untyped-call]
                formulas=[QueryFormula(formula=name) for name in names],
            )
            body = ScalarFormulaQueryRequest(
                data=ScalarFormulaRequest(
                    attributes=attributes, type=ScalarFormulaRequestType.SCALAR_REQUEST
                )
            )
            request = partial(api.query_scalar_data, body=body)
            answers |= _scalar_values(self._call(request, "v2 scalar", deadline, v2=True), names)
        return answers

    def _v2_series(
        self,
        queries: Sequence[Query],
        start: datetime,
        end: datetime,
        period: int,
        deadline: float,
        tag: str | None = None,
    ) -> Any:
        from datadog_api_client.v2.api.metrics_api import MetricsApi
        from datadog_api_client.v2.model.metrics_data_source import MetricsDataSource
        from datadog_api_client.v2.model.metrics_timeseries_query import MetricsTimeseriesQuery
        from datadog_api_client.v2.model.query_formula import QueryFormula
        from datadog_api_client.v2.model.timeseries_formula_query_request import (
            TimeseriesFormulaQueryRequest,
        )
        from datadog_api_client.v2.model.timeseries_formula_request import (
            TimeseriesFormulaRequest,
        )
        from datadog_api_client.v2.model.timeseries_formula_request_attributes import (
            TimeseriesFormulaRequestAttributes as Attributes,
        )
        from datadog_api_client.v2.model.timeseries_formula_request_queries import (
            TimeseriesFormulaRequestQueries as Queries,
        )
        from datadog_api_client.v2.model.timeseries_formula_request_type import (
            TimeseriesFormulaRequestType,
        )

        api = MetricsApi(self._api_client())  # type: ignore[no-untyped-call]
        answers: dict[str, Any] = {}
        for names in _batches(queries):
            metrics = [
                MetricsTimeseriesQuery(
                    data_source=MetricsDataSource.METRICS, query=q.text, name=name
                )
                for name, q in names.items()
            ]
            attributes = Attributes(
                _from=_ms(start),
                to=_ms(end),
                interval=period * 1000,
                queries=Queries(metrics),  # type: ignore[no-untyped-call]
                formulas=[QueryFormula(formula=name) for name in names],
            )
            body = TimeseriesFormulaQueryRequest(
                data=TimeseriesFormulaRequest(
                    attributes=attributes, type=TimeseriesFormulaRequestType.TIMESERIES_REQUEST
                )
            )
            request = partial(api.query_timeseries_data, body=body)
            response = self._call(request, "v2 timeseries", deadline, v2=True)
            if tag is None:
                answers |= _timeseries_values(response, names, start, end, period)
            else:
                answers |= _timeseries_groups(response, names, tag, start, end, period)
        return answers

    # -- v1 ----------------------------------------------------------------------------

    def _v1(
        self, queries: Sequence[Query], start: datetime, end: datetime, deadline: float
    ) -> dict[str, float | None]:
        answers: dict[str, float | None] = {}
        for query in queries:
            response = self._v1_query(query.text, start, end, deadline)
            answers[query.id] = _aggregate(_v1_points(response, query), query)
        return answers

    def _v1_series(
        self,
        queries: Sequence[Query],
        start: datetime,
        end: datetime,
        period: int,
        deadline: float,
        tag: str | None = None,
    ) -> Any:
        answers: dict[str, Any] = {}
        for query in queries:
            response = self._v1_query(_with_rollup(query.text, period), start, end, deadline)
            if tag is None:
                answers[query.id] = _buckets(_v1_points(response, query), start, end, period)
            else:
                answers[query.id] = {
                    value: _buckets(points, start, end, period)
                    for value, points in _v1_groups(response, query, tag).items()
                }
        return answers

    def _v1_query(self, text: str, start: datetime, end: datetime, deadline: float) -> Any:
        from datadog_api_client.v1.api.metrics_api import MetricsApi

        api = MetricsApi(self._api_client())  # type: ignore[no-untyped-call]
        request = partial(
            api.query_metrics, _from=int(start.timestamp()), to=int(end.timestamp()), query=text
        )
        return self._call(request, "v1 query", deadline)

    # -- HTTP --------------------------------------------------------------------------

    def _api_client(self) -> Any:
        # The keys are read on every call (the parameters utility caches them for max_age),
        # so a warm container picks up rotated keys instead of holding the first ones forever.
        keys = (self._secret(self.source.api_key_secret), self._secret(self.source.app_key_secret))
        if self._client is None or keys != self._keys:
            from datadog_api_client import ApiClient, Configuration
            from urllib3.util import Retry

            configuration = Configuration(  # type: ignore[no-untyped-call]
                host=self.host,
                api_key={"apiKeyAuth": keys[0], "appKeyAuth": keys[1]},
                request_timeout=self.source.timeout,
            )
            configuration.enable_retry = False
            # The body is read here (_json), so every value is checked before it is used.
            configuration.preload_content = False
            client = ApiClient(configuration)
            # With enable_retry off the client passes no policy, and urllib3's default
            # Retry(3) sleeps on Retry-After inside each request. Configuration's
            # retry_policy exists only in recent releases; the pool's own setting works in
            # every one. Every retry is made (and bounded) in _call instead.
            client.rest_client.pool_manager.connection_pool_kw["retries"] = Retry(
                total=0, redirect=False, respect_retry_after_header=False
            )
            self._client, self._keys = client, keys
        return self._client

    def _call(
        self, request: Callable[[], Any], what: str, deadline: float, *, v2: bool = False
    ) -> Any:
        """One request, retried after a 429 while the wait fits; the JSON body it returned."""
        from datadog_api_client.exceptions import ApiException, OpenApiException
        from urllib3.exceptions import HTTPError

        attempt = 0
        while True:
            left = remaining(deadline, f"Datadog {what}")
            self._api_client().configuration.request_timeout = min(self.source.timeout, left)
            try:
                return _json(request(), what, v2)
            except ApiException as exc:
                status = int(exc.status or 0)
                if status != 429:
                    raise _error(status, exc.body, what, v2) from None
                wait = _retry_after(exc.headers or {})
                if attempt >= self.source.max_retries:
                    raise ProviderError(
                        f"Datadog {what}: rate limited (429) after {attempt} retries"
                        f"{_errors_text(exc.body)}"
                    ) from None
                if wait > MAX_RATE_LIMIT_WAIT or wait + _MIN_REQUEST > time_left(deadline):
                    raise ProviderError(
                        f"Datadog {what}: rate limited (429) for {wait:g} s more, longer than "
                        "this look's time budget allows"
                    ) from None
                attempt += 1
                self._sleep(wait)
            except (HTTPError, OSError) as exc:
                failure = budget_spent if time_left(deadline) <= 0 else ProviderError
                message = f"Datadog {what} failed: {exc}"
                raise (_Fallback(message) if v2 else failure(message)) from None
            except OpenApiException as exc:
                message = f"Datadog {what}: malformed request or response: {exc}"
                raise (_Fallback(message) if v2 else ProviderError(message)) from None


class _Fallback(ProviderError):
    """A v2 failure the v1 endpoint may not share."""


def _deadline(deadline: float | None) -> float:
    return deadline_or_default(deadline, DEFAULT_BUDGET)


def _json(response: Any, what: str, v2: bool) -> Any:
    try:
        data = response.data
    finally:
        response.release_conn()
    try:
        return json.loads(data)
    except (ValueError, TypeError) as exc:
        message = f"Datadog {what}: the body is not JSON ({exc})"
        raise (_Fallback(message) if v2 else ProviderError(message)) from None


def _error(status: int, body: Any, what: str, v2: bool) -> ProviderError:
    detail = _errors_text(body)
    if status in (401, 403):
        return ProviderError(
            f"Datadog {what}: API or application key rejected ({status}){detail}", transient=False
        )
    if status == 400:
        return ProviderError(f"Datadog {what}: query rejected (400){detail}", transient=False)
    message = f"Datadog {what}: HTTP {status}{detail}"
    if v2 and status in _FALLBACK_STATUSES:
        return _Fallback(message, transient=True)
    return ProviderError(message, transient=status >= 500 or status == 408)


def _errors_text(body: Any) -> str:
    if isinstance(body, dict) and body.get("errors"):
        return ": " + "; ".join(str(e) for e in body["errors"])[:300]
    return ""


def _retry_after(headers: Mapping[str, str]) -> float:
    """Seconds to wait: the longer of ``Retry-After`` (seconds or an HTTP date) and
    Datadog's ``X-RateLimit-Reset``; 1 when neither says."""
    lowered = {k.lower(): v for k, v in headers.items()}
    waits = []
    for name in ("retry-after", "x-ratelimit-reset"):
        value = lowered.get(name)
        if value is None:
            continue
        try:
            waits.append(float(value))
        except ValueError:
            try:
                waits.append((parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
            except (TypeError, ValueError):
                continue
    return max(0.0, max(waits)) if waits else 1.0


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _batches(queries: Sequence[Query]) -> list[dict[str, Query]]:
    """Formula names (``q0``...) per v2 request, in request order."""
    return [
        {f"q{i}": query for i, query in enumerate(queries[offset : offset + BATCH])}
        for offset in range(0, len(queries), BATCH)
    ]


def _v2_aggregator(aggregator: str) -> str:
    return {"last": "last", "max": "max", "min": "min", "sum": "sum"}.get(aggregator, "avg")


def _with_rollup(text: str, period: int) -> str:
    """``text`` summed per ``period`` seconds: ``.rollup(sum, period)`` on its metric
    query, inside wrappers such as ``default_zero(...)``; a query that already rolls up,
    or is not a plain metric query, is sent as written."""
    wrappers: list[str] = []
    core = text
    while (match := _WRAPPER.match(core)) and not _METRIC_QUERY.match(core):
        wrappers.append(match[1])
        core = match[2]
    if ".rollup(" in core or not _METRIC_QUERY.match(core):
        return text
    rolled = f"{core.strip()}.rollup(sum, {period})"
    for name in reversed(wrappers):
        rolled = f"{name}({rolled})"
    return rolled


# -- bodies ----------------------------------------------------------------------------


def _number(value: Any, where: str) -> float | None:
    """A JSON number, or None for null; anything else is a malformed body."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProviderError(f"Datadog {where}: malformed value {value!r}, not a number")
    return float(value)


def _field(body: Any, path: str, kind: type, where: str) -> Any:
    """``body[a][b]...`` for ``path`` "a.b...", of type ``kind``; absent is None."""
    value = body
    for key in path.split("."):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise ProviderError(f"Datadog {where}: malformed body, {key!r} is not in an object")
        value = value.get(key)
    if value is not None and not isinstance(value, kind):
        raise ProviderError(f"Datadog {where}: malformed body, {path} is not a {kind.__name__}")
    return value


def _body_errors(body: Any, found_any: bool, where: str) -> None:
    """Datadog's ``errors`` beside (or instead of) data: never judged as complete."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        return
    if not found_any:
        raise ProviderError(f"Datadog {where}: {errors}", transient=False)
    raise IncompleteData(f"Datadog {where} answered with errors: {errors}")


def _scalar_values(body: Any, names: dict[str, Query]) -> dict[str, float | None]:
    """Each formula's number column, found by its name; a column's values hold one
    entry per group, summed."""
    where = "v2 scalar"
    columns = _field(body, "data.attributes.columns", list, where) or []
    if not all(isinstance(c, dict) for c in columns):
        raise ProviderError(f"Datadog {where}: malformed body, a column is not an object")
    numbers = [c for c in columns if c.get("type") == "number"]
    named = {str(c["name"]): c for c in numbers if c.get("name")}
    answers: dict[str, float | None] = {}
    for position, (name, query) in enumerate(names.items()):
        if named:
            column = named.get(name)
        else:  # unnamed columns come in formula order
            column = numbers[position] if position < len(numbers) else None
        answers[query.id] = _scalar_value(column, query, where)
    _body_errors(body, any(v is not None for v in answers.values()), where)
    return answers


def _scalar_value(column: dict[str, Any] | None, query: Query, where: str) -> float | None:
    if column is None:
        return None
    raw = column.get("values")
    if raw is None:
        return None
    if not isinstance(raw, list):
        raise ProviderError(f"Datadog {where}: malformed values {raw!r} for {query.text!r}")
    values = [v for v in (_number(v, f"{where} {query.text!r}") for v in raw) if v is not None]
    if not values:
        return None
    if len(values) > 1 and query.aggregator != "sum":
        raise ProviderError(
            f"{query.text!r} returned {len(values)} groups; expected one", transient=False
        )
    return float(sum(values))


def _timeseries_values(
    body: Any, names: dict[str, Query], start: datetime, end: datetime, period: int
) -> dict[str, Series]:
    """Each series' values under the formula its ``query_index`` names; several series of
    one formula (groups) summed per period."""
    points = _timeseries_points(body, names, lambda described: "")
    flat = {qid: groups.get("", {}) for qid, groups in points.items()}
    _body_errors(body, any(flat.values()), "v2 timeseries")
    return {qid: _buckets(found, start, end, period) for qid, found in flat.items()}


def _timeseries_groups(
    body: Any, names: dict[str, Query], tag: str, start: datetime, end: datetime, period: int
) -> dict[str, dict[str, Series]]:
    """Like ``_timeseries_values``, one series per value of ``tag`` in ``group_tags``."""
    where = "v2 timeseries"
    points = _timeseries_points(
        body, names, lambda described: _group_value(described.get("group_tags") or [], tag, where)
    )
    _body_errors(body, any(points.values()), where)
    return {
        qid: {group: _buckets(found, start, end, period) for group, found in by_group.items()}
        for qid, by_group in points.items()
    }


def _timeseries_points(
    body: Any, names: dict[str, Query], group_of: Callable[[dict[str, Any]], str | None]
) -> dict[str, dict[str, dict[float, float]]]:
    """Query id -> group (``group_of`` a series; None leaves it out) -> seconds -> value,
    summed where series of one formula and group share a timestamp."""
    where = "v2 timeseries"
    times = _field(body, "data.attributes.times", list, where) or []
    series = _field(body, "data.attributes.series", list, where) or []
    values = _field(body, "data.attributes.values", list, where) or []
    if len(values) != len(series):
        raise ProviderError(
            f"Datadog {where}: malformed body, {len(series)} series and {len(values)} value lists"
        )
    formulas = list(names.values())
    points: dict[str, dict[str, dict[float, float]]] = {query.id: {} for query in formulas}
    for described, row in zip(series, values, strict=True):
        index = described.get("query_index") if isinstance(described, dict) else None
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(formulas):
            raise ProviderError(f"Datadog {where}: malformed body, query_index {index!r}")
        if not isinstance(row, list) or len(row) != len(times):
            raise ProviderError(f"Datadog {where}: malformed body, values do not match times")
        query = formulas[index]
        group = group_of(described)
        if group is None:
            continue
        merged = points[query.id].setdefault(group, {})
        for moment, raw in zip(times, row, strict=True):
            value = _number(raw, f"{where} {query.text!r}")
            stamp = _number(moment, f"{where} times")
            if value is not None and stamp is not None:
                merged[stamp / 1000] = merged.get(stamp / 1000, 0.0) + value
    return points


def _grouped_by(text: str, tag: str) -> str:
    """``text`` grouped by ``tag`` as well: ``by {tag}`` after its scope (or added to its
    group-by), inside wrappers such as ``default_zero(...)``; a query that is not a plain
    metric query cannot be grouped and is refused (the plan's query needs rewriting)."""
    wrappers: list[str] = []
    core = text
    while (match := _WRAPPER.match(core)) and not _METRIC_QUERY.match(core):
        wrappers.append(match[1])
        core = match[2]
    if not _METRIC_QUERY.match(core):
        raise ProviderError(f"cannot group {text!r} by {{{tag}}}", transient=False)
    by = re.search(r"\s*by\s*\{([^{}]*)\}", core)
    if by:
        keys = [k.strip() for k in by[1].split(",") if k.strip()]
        keys += [] if tag in keys else [tag]
        core = core[: by.start()] + f" by {{{','.join(keys)}}}" + core[by.end() :]
    else:
        scope_end = core.index("}") + 1
        core = core[:scope_end] + f" by {{{tag}}}" + core[scope_end:]
    for name in reversed(wrappers):
        core = f"{name}({core.strip()})"
    return core.strip()


def _group_value(tags: Any, tag: str, where: str) -> str | None:
    if not isinstance(tags, list):
        raise ProviderError(f"Datadog {where}: malformed body, group tags {tags!r}")
    for item in tags:
        key, _, value = str(item).partition(":")
        if key == tag and value:
            return value
    return None


def _v1_groups(body: Any, query: Query, tag: str) -> dict[str, dict[float, float]]:
    """``_v1_points`` per value of ``tag`` in each series' ``tag_set``."""
    where = f"v1 query {query.text!r}"
    return _v1_series_points(
        body,
        where,
        lambda series: _group_value(_field(series, "tag_set", list, where) or [], tag, where),
    )


def _v1_points(body: Any, query: Query) -> dict[float, float]:
    """Every series' points (seconds -> value), summed where series share a timestamp;
    null points are missing."""
    where = f"v1 query {query.text!r}"
    one = query.text if query.aggregator != "sum" else None
    return _v1_series_points(body, where, lambda series: "", only_one=one).get("", {})


def _v1_series_points(
    body: Any,
    where: str,
    group_of: Callable[[Any], str | None],
    *,
    only_one: str | None = None,
) -> dict[str, dict[float, float]]:
    """Group (``group_of`` a series; None leaves it out) -> seconds -> value, summed where
    series of one group share a timestamp; null points are missing. ``only_one``: the
    query whose answer must be a single series (its points are not summable)."""
    if not isinstance(body, dict):
        raise ProviderError(f"Datadog {where}: malformed body, not an object")
    if str(body.get("status", "ok")) == "error":
        raise ProviderError(f"Datadog {where}: {body.get('error')}", transient=False)
    found = _field(body, "series", list, where) or []
    if only_one is not None and len(found) > 1:
        raise ProviderError(
            f"{only_one!r} returned {len(found)} series; expected one", transient=False
        )
    groups: dict[str, dict[float, float]] = {}
    for series in found:
        group = group_of(series)
        if group is None:
            continue
        points = groups.setdefault(group, {})
        for point in _field(series, "pointlist", list, where) or []:
            if not isinstance(point, list) or len(point) < 2:
                raise ProviderError(f"Datadog {where}: malformed point {point!r}")
            stamp, value = _number(point[0], where), _number(point[1], where)
            if stamp is not None and value is not None:
                points[stamp / 1000] = points.get(stamp / 1000, 0.0) + value
    return groups


def _buckets(points: Mapping[float, float], start: datetime, end: datetime, period: int) -> Series:
    """Each point added to its period, aligned to the epoch; periods outside [start, end)
    left out."""
    first, last = start.timestamp(), end.timestamp()
    found: dict[int, float] = {}
    for second, value in points.items():
        bucket = int(second) // period * period
        if bucket + period > first and bucket < last:
            found[bucket] = found.get(bucket, 0.0) + value
    return {datetime.fromtimestamp(b, UTC): found[b] for b in sorted(found)}


def _aggregate(points: Mapping[float, float], query: Query) -> float | None:
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
