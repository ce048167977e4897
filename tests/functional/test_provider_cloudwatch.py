"""The CloudWatch provider against moto, and against stubbed GetMetricData pages shaped like
AWS's documented responses: PartialData, NextToken, repeated timestamps, top-level and
per-result Messages, and a deadline."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from orchestrator.analysis.providers import (
    CloudWatchProvider,
    IncompleteData,
    ProviderError,
    Query,
    cloudwatch,
)
from orchestrator.analysis.providers.base import QueryContext

NOW = datetime.now(UTC).replace(microsecond=0)
CANARY = QueryContext("canary", "v2", "shop.example.com", "r-1")
STABLE = QueryContext("stable", "v1", "shop.example.com", "r-1")
DIMENSIONS = {"Host": "{host}", "Variant": "{variant}"}
T0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)  # a whole minute
PAGE_2 = {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY, "NextToken": "page-2"}


def _stubbed() -> tuple[CloudWatchProvider, Stubber]:
    client = boto3.client("cloudwatch", region_name="us-east-1")
    return CloudWatchProvider("Shop/Edge", DIMENSIONS, 60, client=client), Stubber(client)


def _result(
    qid: str,
    values: list[float],
    status: str = "Complete",
    minutes: list[int] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One MetricDataResult as GetMetricData returns it (newest first, like AWS)."""
    minutes = minutes if minutes is not None else list(range(len(values)))[::-1]
    return {
        "Id": qid,
        "Label": "Errors",
        "Timestamps": [T0 + timedelta(minutes=m) for m in minutes],
        "Values": values,
        "StatusCode": status,
        **extra,
    }


def _errors() -> list[Query]:
    return [Query("errors", "Errors", CANARY)]


WINDOW = (T0, T0 + timedelta(minutes=10))


@mock_aws
def test_sums_per_variant_from_moto() -> None:
    """GIVEN per-variant Requests/Errors in moto WHEN fetched THEN each query's sum."""
    client = boto3.client("cloudwatch", region_name="us-east-1")
    for variant, requests, errors in (("canary", 500.0, 9.0), ("stable", 9_500.0, 40.0)):
        dimensions = [
            {"Name": "Host", "Value": "shop.example.com"},
            {"Name": "Variant", "Value": variant},
        ]
        for offset in (0, 60):
            client.put_metric_data(
                Namespace="Shop/Edge",
                MetricData=[
                    {
                        "MetricName": name,
                        "Dimensions": dimensions,
                        "Value": value / 2,
                        "Timestamp": NOW - timedelta(seconds=offset + 30),
                        "Unit": "Count",
                    }
                    for name, value in (("Requests", requests), ("Errors", errors))
                ],
            )
    provider = CloudWatchProvider("Shop/Edge", DIMENSIONS, 60, client=client)
    queries = [
        Query("c_num", "Errors", CANARY),
        Query("c_den", "Requests", CANARY),
        Query("s_num", "Errors", STABLE),
        Query("s_den", "Requests", STABLE),
        Query("none", "Missing", STABLE),
    ]

    answers = provider.fetch(queries, NOW - timedelta(minutes=10), NOW + timedelta(minutes=1))

    assert answers == {"c_num": 9.0, "c_den": 500.0, "s_num": 40.0, "s_den": 9_500.0, "none": None}


@mock_aws
def test_series_from_moto_has_one_sum_per_minute() -> None:
    """GIVEN datapoints in minutes 0, 1 and 3 of a window WHEN fetched per 60 s THEN one
    sum per minute that had data, keyed by the minute's start in UTC; no data is {}."""
    client = boto3.client("cloudwatch", region_name="us-east-1")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=6)
    dimensions = [
        {"Name": "Host", "Value": "shop.example.com"},
        {"Name": "Variant", "Value": "canary"},
    ]
    for minute, second, value in ((0, 5, 5.0), (0, 40, 1.0), (1, 10, 7.0), (3, 59, 2.0)):
        client.put_metric_data(
            Namespace="Shop/Edge",
            MetricData=[
                {
                    "MetricName": "Requests",
                    "Dimensions": dimensions,
                    "Value": value,
                    "Timestamp": start + timedelta(minutes=minute, seconds=second),
                }
            ],
        )
    provider = CloudWatchProvider("Shop/Edge", DIMENSIONS, 60, client=client)
    queries = [Query("den", "Requests", CANARY), Query("none", "Missing", CANARY)]

    series = provider.fetch_series(queries, start, start + timedelta(minutes=5), 60)

    one = timedelta(minutes=1)
    assert series == {
        "den": {start: 6.0, start + one: 7.0, start + 3 * one: 2.0},
        "none": {},
    }
    assert all(moment.tzinfo == UTC for moment in series["den"])


def test_series_asks_for_sum_at_the_period() -> None:
    """GIVEN a threshold-style query WHEN fetched as a series THEN MetricStat is Sum at the
    period asked, whatever the provider's own period and the query's stat."""
    provider, stub = _stubbed()
    expected = {
        "MetricDataQueries": [
            {
                "Id": "q0",
                "MetricStat": {
                    "Metric": {
                        "Namespace": "Shop/Edge",
                        "MetricName": "Errors",
                        "Dimensions": [
                            {"Name": "Host", "Value": "shop.example.com"},
                            {"Name": "Variant", "Value": "canary"},
                        ],
                    },
                    "Period": 300,
                    "Stat": "Sum",
                },
                "ReturnData": True,
            }
        ],
        "StartTime": WINDOW[0],
        "EndTime": WINDOW[1],
    }
    stub.add_response(
        "get_metric_data", {"MetricDataResults": [_result("q0", [4.0], minutes=[5])]}, expected
    )
    with stub:
        series = provider.fetch_series([Query("p99", "Errors", CANARY, stat="p99")], *WINDOW, 300)

    assert series == {"p99": {T0 + timedelta(minutes=5): 4.0}}


def test_next_token_pages_are_added_up() -> None:
    """GIVEN two Complete pages joined by NextToken, other minutes on each WHEN fetched
    THEN the sum and the series cover both pages."""
    provider, stub = _stubbed()
    for _ in range(2):
        stub.add_response(
            "get_metric_data",
            {"MetricDataResults": [_result("q0", [3.0], minutes=[1])], "NextToken": "page-2"},
        )
        stub.add_response(
            "get_metric_data", {"MetricDataResults": [_result("q0", [4.0], minutes=[0])]}, PAGE_2
        )
    with stub:
        answers = provider.fetch(_errors(), *WINDOW)
        series = provider.fetch_series(_errors(), *WINDOW, 60)

    assert answers == {"errors": 7.0}
    assert series == {"errors": {T0: 4.0, T0 + timedelta(minutes=1): 3.0}}


def test_partial_data_on_an_early_page_is_not_complete() -> None:
    """GIVEN a PartialData page followed by a Complete one WHEN fetched THEN IncompleteData
    (the merged answer is not judged), for the sum and the series alike."""
    provider, stub = _stubbed()
    for _ in range(2):
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [_result("q0", [3.0], "PartialData", minutes=[1])],
                "NextToken": "page-2",
            },
        )
        stub.add_response(
            "get_metric_data", {"MetricDataResults": [_result("q0", [4.0], minutes=[0])]}, PAGE_2
        )
    with stub:
        with pytest.raises(IncompleteData, match="PartialData"):
            provider.fetch(_errors(), *WINDOW)
        with pytest.raises(IncompleteData, match="PartialData"):
            provider.fetch_series(_errors(), *WINDOW, 60)


def test_partial_data_on_the_last_page_is_not_complete() -> None:
    """GIVEN PartialData without a NextToken WHEN fetched THEN IncompleteData (inconclusive)."""
    provider, stub = _stubbed()
    stub.add_response(
        "get_metric_data", {"MetricDataResults": [_result("q0", [3.0], "PartialData")]}
    )
    with stub, pytest.raises(IncompleteData):
        provider.fetch(_errors(), *WINDOW)


def test_timestamps_repeated_across_pages_count_once() -> None:
    """GIVEN minute 1 on both pages WHEN fetched THEN it is counted once in the sum and in
    the series."""
    provider, stub = _stubbed()
    for _ in range(2):
        stub.add_response(
            "get_metric_data",
            {
                "MetricDataResults": [_result("q0", [5.0, 3.0], minutes=[2, 1])],
                "NextToken": "page-2",
            },
        )
        stub.add_response(
            "get_metric_data",
            {"MetricDataResults": [_result("q0", [3.0, 4.0], minutes=[1, 0])]},
            PAGE_2,
        )
    with stub:
        answers = provider.fetch(_errors(), *WINDOW)
        series = provider.fetch_series(_errors(), *WINDOW, 60)

    assert answers == {"errors": 12.0}
    assert series["errors"] == {
        T0: 4.0,
        T0 + timedelta(minutes=1): 3.0,
        T0 + timedelta(minutes=2): 5.0,
    }


@pytest.mark.parametrize(
    "code",
    [
        "MaxQueryResultsExceeded",
        "MaxMetricsExceeded",
        "MaxMatchingResultsExceeded",
        "MaxQueryTimeRangeExceeded",
    ],
)
def test_top_level_truncation_messages_are_errors(code: str) -> None:
    """GIVEN Complete results beside a top-level truncation message WHEN fetched THEN a
    permanent error naming the code, never the (partial) values."""
    provider, stub = _stubbed()
    page = {
        "MetricDataResults": [_result("q0", [3.0])],
        "Messages": [{"Code": code, "Value": "Maximum number of allowed metrics exceeded"}],
    }
    stub.add_response("get_metric_data", page)
    stub.add_response("get_metric_data", page)
    with stub:
        for call in (
            lambda: provider.fetch(_errors(), *WINDOW),
            lambda: provider.fetch_series(_errors(), *WINDOW, 60),
        ):
            with pytest.raises(ProviderError, match=code) as caught:
                call()
            assert caught.value.transient is False
            assert not isinstance(caught.value, IncompleteData)


def test_an_unknown_top_level_message_is_incomplete() -> None:
    """GIVEN a top-level message of a code not known here WHEN fetched THEN IncompleteData."""
    provider, stub = _stubbed()
    stub.add_response(
        "get_metric_data",
        {
            "MetricDataResults": [_result("q0", [3.0])],
            "Messages": [{"Code": "SomethingNew", "Value": "as much as possible was executed"}],
        },
    )
    with stub, pytest.raises(IncompleteData, match="SomethingNew"):
        provider.fetch(_errors(), *WINDOW)


def test_arithmetic_error_in_a_result_is_incomplete() -> None:
    """GIVEN a Complete result whose Messages say points were dropped (ArithmeticError)
    WHEN fetched THEN IncompleteData naming it, not a sum of what was left."""
    provider, stub = _stubbed()
    dropped = [
        {
            "Code": "ArithmeticError",
            "Value": "One or more data points have been dropped due to non-numeric values "
            "(NaN, -Infinite, +Infinite)",
        }
    ]
    stub.add_response(
        "get_metric_data", {"MetricDataResults": [_result("q0", [3.0], Messages=dropped)]}
    )
    with stub, pytest.raises(IncompleteData, match="ArithmeticError"):
        provider.fetch_series(_errors(), *WINDOW, 60)


def test_timestamps_and_values_of_different_lengths_are_an_error() -> None:
    """GIVEN a result with two timestamps and one value WHEN fetched THEN a ProviderError."""
    provider, stub = _stubbed()
    result = _result("q0", [3.0], minutes=[0, 1])
    stub.add_response("get_metric_data", {"MetricDataResults": [result]})
    with stub, pytest.raises(ProviderError, match="2 timestamps and 1 values"):
        provider.fetch(_errors(), *WINDOW)


@pytest.mark.parametrize(("status", "transient"), [("Forbidden", False), ("InternalError", True)])
def test_status_codes_become_errors(status: str, transient: bool) -> None:
    """GIVEN Forbidden or InternalError WHEN fetched THEN permanent or transient error."""
    provider, stub = _stubbed()
    stub.add_response("get_metric_data", {"MetricDataResults": [_result("q0", [], status)]})
    with stub, pytest.raises(ProviderError) as caught:
        provider.fetch(_errors(), *WINDOW)
    assert caught.value.transient is transient


def test_access_denied_is_permanent() -> None:
    """GIVEN AccessDenied WHEN fetched THEN a permanent error."""
    provider, stub = _stubbed()
    stub.add_client_error("get_metric_data", "AccessDenied", "not allowed", 403)
    with stub, pytest.raises(ProviderError) as caught:
        provider.fetch(_errors(), *WINDOW)
    assert caught.value.transient is False


def test_more_than_500_queries_are_batched() -> None:
    """GIVEN 501 queries WHEN fetched THEN two calls of at most 500 queries each."""
    provider, stub = _stubbed()
    queries = [Query(f"m{i}", "Errors", CANARY) for i in range(501)]
    stub.add_response(
        "get_metric_data", {"MetricDataResults": [_result(f"q{i}", [1.0]) for i in range(500)]}
    )
    stub.add_response("get_metric_data", {"MetricDataResults": [_result("q0", [2.0])]})
    with stub:
        answers = provider.fetch(queries, *WINDOW)

    assert len(answers) == 501 and answers["m500"] == 2.0 and answers["m0"] == 1.0


def test_batches_stay_within_one_page_of_datapoints() -> None:
    """GIVEN 200 queries over 600 one-second periods (120,000 points) WHEN fetched THEN
    two calls, each under CloudWatch's 100,800 datapoints per page."""
    provider, stub = _stubbed()
    queries = [Query(f"m{i}", "Errors", CANARY) for i in range(200)]
    first = cloudwatch.MAX_DATAPOINTS // 600
    stub.add_response(
        "get_metric_data", {"MetricDataResults": [_result(f"q{i}", [1.0]) for i in range(first)]}
    )
    stub.add_response(
        "get_metric_data",
        {"MetricDataResults": [_result(f"q{i}", [1.0]) for i in range(200 - first)]},
    )
    with stub:
        series = provider.fetch_series(queries, *WINDOW, 1)
        stub.assert_no_pending_responses()

    assert len(series) == 200 and all(s == {T0: 1.0} for s in series.values())


def test_last_is_the_newest_point_whatever_the_order() -> None:
    """GIVEN points oldest first WHEN the aggregator is last THEN the newest one."""
    provider, stub = _stubbed()
    stub.add_response(
        "get_metric_data", {"MetricDataResults": [_result("q0", [1.0, 9.0], minutes=[0, 4])]}
    )
    with stub:
        answers = provider.fetch([Query("v", "Latency", CANARY, "Average", "last")], *WINDOW)
    assert answers == {"v": 9.0}


def test_a_spent_budget_makes_no_call() -> None:
    """GIVEN a deadline already past WHEN fetched THEN a transient error, no request."""
    provider, stub = _stubbed()
    with stub, pytest.raises(ProviderError, match="time budget spent") as caught:
        provider.fetch_series(_errors(), *WINDOW, 60, deadline=time.monotonic() - 1)
    assert caught.value.transient and not isinstance(caught.value, IncompleteData)


def test_the_deadline_is_checked_between_pages() -> None:
    """GIVEN a first page that takes longer than the budget and has a NextToken WHEN
    fetched THEN the next page is not asked for: a transient error."""
    provider, stub = _stubbed()
    stub.add_response(
        "get_metric_data",
        {"MetricDataResults": [_result("q0", [3.0])], "NextToken": "page-2"},
    )
    provider.client.meta.events.register(
        "before-parameter-build.cloudwatch.GetMetricData", lambda **_: time.sleep(0.3)
    )
    with stub, pytest.raises(ProviderError, match="time budget spent"):
        provider.fetch(_errors(), *WINDOW, deadline=time.monotonic() + 0.2)
    stub.assert_no_pending_responses()


def test_its_own_client_has_timeouts_within_the_budget_and_no_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN no injected client WHEN a client is made THEN bounded timeouts and a single
    attempt; with less time left than those timeouts, the timeouts shrink to fit."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    provider = CloudWatchProvider("Shop/Edge", DIMENSIONS)

    roomy = provider._client_within(60.0).meta.config
    tight = provider._client_within(1.5).meta.config

    assert (roomy.connect_timeout, roomy.read_timeout) == (
        cloudwatch.CONNECT_TIMEOUT,
        cloudwatch.READ_TIMEOUT,
    )
    assert roomy.retries["total_max_attempts"] == 1
    assert (tight.connect_timeout, tight.read_timeout) == (1.5, 1.5)
    assert provider._client_within(60.0) is provider._client_within(30.0)
