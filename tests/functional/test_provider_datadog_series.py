"""Per-period counts from Datadog (``fetch_series``): v2 ``/api/v2/query/timeseries``
bodies as Datadog documents them (one ``times`` array, ``series`` naming their formula by
``query_index``, ``values`` parallel to ``series``), the v1 ``.rollup(sum, period)``
fallback, and the local Datadog endpoint end to end."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from test_provider_datadog import (  # the same local Datadog-shaped server
    V1,
    V1_SERIES,
    FakeDatadog,
    _provider,
    _queries,
    datadog,
)

from orchestrator.analysis.providers import DatadogProvider, IncompleteData, ProviderError
from orchestrator.analysis.providers.datadog import _with_rollup
from orchestrator.local.datadog import API_KEY, APP_KEY, DatadogEndpoint
from orchestrator.models.analysis import DatadogSource

__all__ = ["datadog"]  # the fixture, imported for this module's tests

TIMESERIES = "/api/v2/query/timeseries"
# The window and body of datadog-api-client's recorded "timeseries cross product query"
# (tests/v2/cassettes/.../test_timeseries_cross_product_query_returns_ok_response.yaml).
CASSETTE_FROM = datetime.fromtimestamp(1711977601, UTC)
CASSETTE_TO = datetime.fromtimestamp(1711981201, UTC)
CASSETTE = {
    "data": {
        "id": "0",
        "type": "timeseries_response",
        "attributes": {
            "series": [{"group_tags": [], "query_index": 0, "unit": None}],
            "times": [1711977645000, 1711977705000, 1711980225000],
            "values": [[1, 1, 87]],
        },
    }
}
T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
END = T0 + timedelta(minutes=3)
MINUTE = timedelta(minutes=1)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _timeseries(times: list[datetime], *rows: tuple[int, list[str], list[Any]]) -> dict[str, Any]:
    """A timeseries body: rows of (query_index, group_tags, values)."""
    series = [{"group_tags": tags, "query_index": index, "unit": None} for index, tags, _ in rows]
    return {
        "data": {
            "id": "0",
            "type": "timeseries_response",
            "attributes": {
                "series": series,
                "times": [_ms(t) for t in times],
                "values": [values for _, _, values in rows],
            },
        }
    }


def test_the_recorded_body_becomes_one_sum_per_minute(datadog: FakeDatadog) -> None:
    """GIVEN Datadog's recorded timeseries body (points off the minute) WHEN fetched per
    60 s THEN each point counts in the minute it falls in, keyed by the minute's start."""
    datadog.reply(TIMESERIES, (200, CASSETTE, {}))
    provider, _ = _provider(datadog)

    series = provider.fetch_series(_queries("sum:web.requests{*}"), CASSETTE_FROM, CASSETTE_TO, 60)

    assert series == {
        "m0": {
            datetime(2024, 4, 1, 13, 20, tzinfo=UTC): 1.0,
            datetime(2024, 4, 1, 13, 21, tzinfo=UTC): 1.0,
            datetime(2024, 4, 1, 14, 3, tzinfo=UTC): 87.0,
        }
    }


def test_the_request_asks_for_the_period_as_interval(datadog: FakeDatadog) -> None:
    """GIVEN a 60 s period WHEN fetched THEN interval is 60000 ms, the window in ms, and
    one named query and formula per query."""
    datadog.reply(TIMESERIES, (200, _timeseries([]), {}))
    provider, _ = _provider(datadog)

    provider.fetch_series(_queries("sum:a{*}", "sum:b{*}"), T0, END, 60)

    attributes = datadog.seen[-1][2]["data"]["attributes"]
    assert datadog.seen[-1][2]["data"]["type"] == "timeseries_request"
    assert (attributes["from"], attributes["to"], attributes["interval"]) == (
        _ms(T0),
        _ms(END),
        60_000,
    )
    assert [q["name"] for q in attributes["queries"]] == ["q0", "q1"]
    assert [f["formula"] for f in attributes["formulas"]] == ["q0", "q1"]


def test_each_series_goes_to_its_formula_and_groups_are_summed(datadog: FakeDatadog) -> None:
    """GIVEN three series out of formula order, two of them groups of one formula, with a
    null WHEN fetched THEN each formula's sum per minute, the null left out."""
    body = _timeseries(
        [T0, T0 + MINUTE, T0 + 2 * MINUTE],
        (1, ["host:web-1"], [10.0, 20.0, None]),
        (0, [], [1.0, 0.0, 2.0]),
        (1, ["host:web-2"], [5.0, None, 7.0]),
    )
    datadog.reply(TIMESERIES, (200, body, {}))
    provider, _ = _provider(datadog)

    series = provider.fetch_series(_queries("errors", "requests", "none"), T0, END, 60)

    assert series == {
        "m0": {T0: 1.0, T0 + MINUTE: 0.0, T0 + 2 * MINUTE: 2.0},
        "m1": {T0: 15.0, T0 + MINUTE: 20.0, T0 + 2 * MINUTE: 7.0},
        "m2": {},
    }


def test_points_outside_the_window_are_left_out(datadog: FakeDatadog) -> None:
    """GIVEN points before the start and at the end WHEN fetched THEN only [start, end)."""
    body = _timeseries([T0 - MINUTE, T0, END], (0, [], [4.0, 5.0, 6.0]))
    datadog.reply(TIMESERIES, (200, body, {}))
    provider, _ = _provider(datadog)

    assert provider.fetch_series(_queries("q"), T0, END, 60) == {"m0": {T0: 5.0}}


@pytest.mark.parametrize(
    "attributes",
    [
        {"series": [{"query_index": 3}], "times": [0], "values": [[1.0]]},
        {"series": [{"query_index": "0"}], "times": [0], "values": [[1.0]]},
        {"series": [{"query_index": 0}], "times": [0, 60_000], "values": [[1.0]]},
        {"series": [{"query_index": 0}], "times": [0], "values": []},
        {"series": [{"query_index": 0}], "times": [0], "values": [["1"]]},
        {"series": [{"query_index": 0}], "times": ["0"], "values": [[1.0]]},
        {"series": {"query_index": 0}, "times": [0], "values": [[1.0]]},
    ],
    ids=[
        "index-out-of-range",
        "index-string",
        "values-shorter-than-times",
        "no-values-for-a-series",
        "value-string",
        "time-string",
        "series-object",
    ],
)
def test_malformed_timeseries_is_a_provider_error(
    datadog: FakeDatadog, attributes: dict[str, Any]
) -> None:
    """GIVEN a timeseries body of the wrong shape WHEN fetched THEN a ProviderError (not
    IncompleteData, not a TypeError)."""
    body = {"data": {"type": "timeseries_response", "attributes": attributes}}
    datadog.reply(TIMESERIES, (200, body, {}))
    provider, _ = _provider(datadog, fallback_to_v1=False)

    with pytest.raises(ProviderError, match="malformed") as caught:
        provider.fetch_series(_queries("q"), T0, END, 60)
    assert not isinstance(caught.value, IncompleteData)


def test_errors_beside_series_are_incomplete(datadog: FakeDatadog) -> None:
    """GIVEN one formula's series and Datadog's ``errors`` WHEN fetched THEN IncompleteData."""
    body = _timeseries([T0], (0, [], [1.0])) | {"errors": "Query q1 timed out"}
    datadog.reply(TIMESERIES, (200, body, {}))
    provider, _ = _provider(datadog)

    with pytest.raises(IncompleteData, match="timed out"):
        provider.fetch_series(_queries("a", "b"), T0, END, 60)


def test_v2_failure_falls_back_to_v1_with_a_rollup(datadog: FakeDatadog) -> None:
    """GIVEN v2 answering 503 WHEN fetched per 60 s THEN v1 is asked for the query rolled
    up per 60 s, and its series (two groups) are summed per minute."""
    datadog.reply(TIMESERIES, (503, {"errors": ["Service unavailable"]}, {}))
    first = dict(V1_SERIES["series"][0])  # type: ignore[index]
    groups = [
        first | {"pointlist": [[_ms(T0), 4.0], [_ms(T0 + MINUTE), None]], "tag_set": ["host:a"]},
        first | {"pointlist": [[_ms(T0), 1.0], [_ms(T0 + MINUTE), 2.0]], "tag_set": ["host:b"]},
    ]
    datadog.reply(V1, (200, V1_SERIES | {"series": groups}, {}))
    provider, _ = _provider(datadog)

    series = provider.fetch_series(
        _queries("default_zero(sum:web.errors{variant:canary} by {host}.as_count())"), T0, END, 60
    )

    assert series == {"m0": {T0: 5.0, T0 + MINUTE: 2.0}}
    asked = parse_qs(urlparse(datadog.seen[-1][0]).query)
    assert asked["query"] == [
        "default_zero(sum:web.errors{variant:canary} by {host}.as_count().rollup(sum, 60))"
    ]
    assert asked["from"] == [str(int(T0.timestamp()))]


def test_without_fallback_a_v2_failure_is_a_transient_error(datadog: FakeDatadog) -> None:
    """GIVEN v2 answering 503 and fallback off WHEN fetched THEN a transient error, no v1."""
    datadog.reply(TIMESERIES, (503, {"errors": ["Service unavailable"]}, {}))
    provider, _ = _provider(datadog, fallback_to_v1=False)

    with pytest.raises(ProviderError) as caught:
        provider.fetch_series(_queries("q"), T0, END, 60)
    assert caught.value.transient
    assert not [s for s in datadog.seen if s[0].startswith(V1)]


def test_a_period_that_is_not_positive_is_refused(datadog: FakeDatadog) -> None:
    """GIVEN period 0 WHEN fetched THEN a permanent error and no request."""
    provider, _ = _provider(datadog)

    with pytest.raises(ProviderError, match="period") as caught:
        provider.fetch_series(_queries("q"), T0, END, 0)
    assert caught.value.transient is False and datadog.seen == []


@pytest.mark.parametrize(
    ("query", "sent"),
    [
        ("sum:web.errors{a:b}.as_count()", "sum:web.errors{a:b}.as_count().rollup(sum, 60)"),
        ("sum:web.errors{*}", "sum:web.errors{*}.rollup(sum, 60)"),
        (
            "default_zero(sum:web.errors{a:b}.as_count())",
            "default_zero(sum:web.errors{a:b}.as_count().rollup(sum, 60))",
        ),
        ("sum:web.errors{*}.rollup(sum, 30)", "sum:web.errors{*}.rollup(sum, 30)"),
        ("sum:a{*} + sum:b{*}", "sum:a{*} + sum:b{*}"),
    ],
    ids=["as-count", "plain", "default-zero", "own-rollup", "arithmetic"],
)
def test_v1_queries_are_rolled_up_per_period(query: str, sent: str) -> None:
    """GIVEN a query WHEN asked per 60 s on v1 THEN the rollup sits on the metric query,
    inside wrappers; a query with its own rollup, or an expression, is sent as written."""
    assert _with_rollup(query, 60) == sent


@pytest.fixture
def local_datadog() -> Iterator[DatadogEndpoint]:
    endpoint = DatadogEndpoint().start()
    yield endpoint
    endpoint.stop()


@pytest.mark.parametrize("api", ["v2", "v1"])
def test_the_local_endpoint_serves_per_period_counts(
    local_datadog: DatadogEndpoint, api: str
) -> None:
    """GIVEN per-second points on two hosts in the local endpoint WHEN fetched per 60 s on
    v2 and on v1 THEN the same per-minute sums, groups summed, default_zero filling the
    minutes without errors with 0, and a metric without points {}."""
    second = int(T0.timestamp())
    for offset in range(0, 180, 10):
        for host in ("web-1", "web-2"):
            tags = {"variant": "canary", "host": host}
            local_datadog.store.add("web.requests", tags, second + offset, 1.0)
    local_datadog.store.add("web.errors", {"variant": "canary", "host": "web-1"}, second + 70, 2.0)
    provider = DatadogProvider(
        DatadogSource(api_key_secret="api", app_key_secret="app", api=api),
        host=local_datadog.url,
        secret={"api": API_KEY, "app": APP_KEY}.__getitem__,
    )
    queries = _queries(
        "sum:web.requests{variant:canary}.as_count()",
        "sum:web.requests{variant:canary} by {host}.as_count()",
        "default_zero(sum:web.errors{variant:canary}.as_count())",
        "sum:web.missing{variant:canary}.as_count()",
    )

    series = provider.fetch_series(queries, T0, END, 60)

    minutes = [T0, T0 + MINUTE, T0 + 2 * MINUTE]
    assert series == {
        "m0": dict.fromkeys(minutes, 12.0),
        "m1": dict.fromkeys(minutes, 12.0),
        "m2": {T0: 0.0, T0 + MINUTE: 2.0, T0 + 2 * MINUTE: 0.0},
        "m3": {},
    }
    assert provider.fetch(queries[:1], T0, END) == {"m0": 36.0}
