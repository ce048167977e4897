"""Datadog through ``datadog-api-client``: v2 scalar queries (``/api/v2/query/scalar``,
one value per query over the window) with v1 ``query_metrics`` (``/api/v1/query``, the
window's points summed, null points treated as missing) as a fallback or on request.

Keys come from Secrets Manager through powertools' parameters utility (cached), never from
the plan. A 429 waits for ``X-RateLimit-Reset`` (bounded) and retries at most
``max_retries`` times; timeouts and 5xx are transient errors; 400 (bad query) and
401/403 (bad key) are permanent ones. Sparse counters report no series when nothing
happened: wrap such numerators in ``default_zero()`` or the look stays inconclusive.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import Any

from orchestrator.models.analysis import DatadogSource

from .base import BaseProvider, ProviderError, Query

HOST_OVERRIDE = "EDGESHIFT_DATADOG_HOST"  # deployment setting (local stack, proxies)
MAX_RATE_LIMIT_WAIT = 10.0  # seconds; longer waits are reported instead of slept
BATCH = 16  # queries per v2 request
_FALLBACK_STATUSES = {404, 405, 408, 500, 501, 502, 503, 504}


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
        self, queries: Sequence[Query], start: datetime, end: datetime
    ) -> dict[str, float | None]:
        if self.source.api == "v1":
            return self._v1(queries, start, end)
        try:
            return self._v2(queries, start, end)
        except _Fallback as exc:
            if not self.source.fallback_to_v1:
                raise ProviderError(str(exc), transient=exc.transient) from None
            return self._v1(queries, start, end)

    def check(self, queries: Sequence[Query], now: datetime) -> list[str]:
        from datadog_api_client.v1.api.authentication_api import AuthenticationApi

        try:
            api = AuthenticationApi(self._api_client())  # type: ignore[no-untyped-call]
            self._call(api.validate, "key validation")
        except ProviderError as exc:
            return [str(exc)]
        return super().check(queries, now)

    # -- v2 ----------------------------------------------------------------------------

    def _v2(
        self, queries: Sequence[Query], start: datetime, end: datetime
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
            ScalarFormulaRequestAttributes,
        )
        from datadog_api_client.v2.model.scalar_formula_request_queries import (
            ScalarFormulaRequestQueries,
        )
        from datadog_api_client.v2.model.scalar_formula_request_type import (
            ScalarFormulaRequestType,
        )

        api = MetricsApi(self._api_client())  # type: ignore[no-untyped-call]
        answers: dict[str, float | None] = {}
        for offset in range(0, len(queries), BATCH):
            batch = queries[offset : offset + BATCH]
            names = {f"q{i}": query for i, query in enumerate(batch)}
            body = ScalarFormulaQueryRequest(
                data=ScalarFormulaRequest(
                    attributes=ScalarFormulaRequestAttributes(
                        _from=_ms(start),
                        to=_ms(end),
                        queries=ScalarFormulaRequestQueries(  # type: ignore[no-untyped-call]
                            [
                                MetricsScalarQuery(
                                    aggregator=MetricsAggregator(  # type: ignore[no-untyped-call]
                                        _v2_aggregator(q.aggregator)
                                    ),
                                    data_source=MetricsDataSource.METRICS,
                                    query=q.text,
                                    name=name,
                                )
                                for name, q in names.items()
                            ]
                        ),
                        formulas=[QueryFormula(formula=name) for name in names],
                    ),
                    type=ScalarFormulaRequestType.SCALAR_REQUEST,
                )
            )
            response = self._call(partial(api.query_scalar_data, body=body), "v2 scalar", v2=True)
            answers |= _scalar_values(response, names)
        return answers

    # -- v1 ----------------------------------------------------------------------------

    def _v1(
        self, queries: Sequence[Query], start: datetime, end: datetime
    ) -> dict[str, float | None]:
        from datadog_api_client.v1.api.metrics_api import MetricsApi

        api = MetricsApi(self._api_client())  # type: ignore[no-untyped-call]
        answers: dict[str, float | None] = {}
        for query in queries:
            request = partial(
                api.query_metrics,
                _from=int(start.timestamp()),
                to=int(end.timestamp()),
                query=query.text,
            )
            response = self._call(request, "v1 query")
            answers[query.id] = _v1_value(response, query)
        return answers

    # -- HTTP --------------------------------------------------------------------------

    def _api_client(self) -> Any:
        # The keys are read on every call (the parameters utility caches them for max_age),
        # so a warm container picks up rotated keys instead of holding the first ones forever.
        keys = (self._secret(self.source.api_key_secret), self._secret(self.source.app_key_secret))
        if self._client is None or keys != self._keys:
            from datadog_api_client import ApiClient, Configuration

            configuration = Configuration(  # type: ignore[no-untyped-call]
                host=self.host,
                api_key={"apiKeyAuth": keys[0], "appKeyAuth": keys[1]},
                request_timeout=self.source.timeout,
            )
            configuration.enable_retry = False  # retries are bounded here, see _call
            self._client, self._keys = ApiClient(configuration), keys
        return self._client

    def _call(self, request: Callable[[], Any], what: str, *, v2: bool = False) -> Any:
        from datadog_api_client.exceptions import ApiException, OpenApiException
        from urllib3.exceptions import HTTPError

        attempt = 0
        while True:
            try:
                return request()
            except ApiException as exc:
                status = int(exc.status or 0)
                if status == 429 and attempt < self.source.max_retries:
                    wait = _reset_seconds(exc.headers or {})
                    if wait <= MAX_RATE_LIMIT_WAIT:
                        attempt += 1
                        self._sleep(wait)
                        continue
                raise _error(status, exc.body, what, v2) from None
            except (HTTPError, OSError) as exc:
                if v2:
                    raise _Fallback(f"Datadog {what} failed: {exc}", transient=True) from None
                raise ProviderError(f"Datadog {what} failed: {exc}") from None
            except OpenApiException as exc:  # the body did not have the documented shape
                message = f"Datadog {what}: malformed response: {exc}"
                if v2:
                    raise _Fallback(message, transient=True) from None
                raise ProviderError(message) from None


class _Fallback(ProviderError):
    """A v2 failure the v1 endpoint may not share."""


def _error(status: int, body: Any, what: str, v2: bool) -> ProviderError:
    detail = _errors_text(body)
    if status == 429:
        return ProviderError(f"Datadog {what}: rate limited (429) after retries{detail}")
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


def _reset_seconds(headers: dict[str, str]) -> float:
    lowered = {k.lower(): v for k, v in headers.items()}
    try:
        return max(0.0, float(lowered.get("x-ratelimit-reset", "1")))
    except ValueError:
        return 1.0


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _v2_aggregator(aggregator: str) -> str:
    return {"last": "last", "max": "max", "min": "min", "sum": "sum"}.get(aggregator, "avg")


def _scalar_values(response: Any, names: dict[str, Query]) -> dict[str, float | None]:
    """Number columns in formula order; a column's values hold one entry per group."""
    data = response.get("data") if hasattr(response, "get") else None
    attributes = getattr(data, "attributes", None) if data is not None else None
    columns = [
        c for c in (getattr(attributes, "columns", None) or []) if str(c.get("type")) == "number"
    ]
    errors = response.get("errors") if hasattr(response, "get") else None
    if not columns:
        if errors:
            raise ProviderError(f"Datadog v2 scalar query: {errors}", transient=False)
        return dict.fromkeys((q.id for q in names.values()), None)
    by_name = {str(c.get("name")): c for c in columns}
    answers: dict[str, float | None] = {}
    for position, (name, query) in enumerate(names.items()):
        column = by_name.get(name) or (columns[position] if position < len(columns) else None)
        values = (
            [] if column is None else [v for v in (column.get("values") or []) if v is not None]
        )
        if not values:
            answers[query.id] = None
        elif len(values) > 1 and query.aggregator != "sum":
            raise ProviderError(
                f"{query.text!r} returned {len(values)} groups; expected one", transient=False
            )
        else:
            answers[query.id] = float(sum(values))
    return answers


def _v1_value(response: Any, query: Query) -> float | None:
    if str(response.get("status", "ok")) == "error":
        raise ProviderError(
            f"Datadog v1 query {query.text!r}: {response.get('error')}", transient=False
        )
    points = [
        pair[1]
        for series in (response.get("series") or [])
        for point in (series.get("pointlist") or [])
        for pair in [list(getattr(point, "value", point))]
        if len(pair) > 1 and pair[1] is not None
    ]
    if not points:
        return None
    if query.aggregator == "sum":
        return float(sum(points))
    if query.aggregator == "max":
        return float(max(points))
    if query.aggregator == "min":
        return float(min(points))
    if query.aggregator == "last":
        return float(points[-1])
    return float(sum(points) / len(points))
