"""The CloudWatch provider against moto, and against stubbed PartialData / NextToken pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import ANY, Stubber
from moto import mock_aws

from orchestrator.analysis.providers import CloudWatchProvider, IncompleteData, ProviderError, Query
from orchestrator.analysis.providers.base import QueryContext

NOW = datetime.now(UTC).replace(microsecond=0)
CANARY = QueryContext("canary", "v2", "shop.example.com", "r-1")
STABLE = QueryContext("stable", "v1", "shop.example.com", "r-1")
DIMENSIONS = {"Host": "{host}", "Variant": "{variant}"}


def _stubbed() -> tuple[CloudWatchProvider, Stubber]:
    client = boto3.client("cloudwatch", region_name="us-east-1")
    return CloudWatchProvider("Shop/Edge", DIMENSIONS, 60, client=client), Stubber(client)


def _result(qid: str, values: list[float], status: str = "Complete") -> dict[str, object]:
    return {
        "Id": qid,
        "Label": qid,
        "Timestamps": [NOW] * len(values),
        "Values": values,
        "StatusCode": status,
    }


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


def test_next_token_pages_are_added_up() -> None:
    """GIVEN two pages joined by NextToken, the first PartialData WHEN fetched THEN summed."""
    provider, stub = _stubbed()
    stub.add_response(
        "get_metric_data",
        {"MetricDataResults": [_result("q0", [3.0], "PartialData")], "NextToken": "page-2"},
    )
    stub.add_response(
        "get_metric_data",
        {"MetricDataResults": [_result("q0", [4.0])]},
        {"MetricDataQueries": ANY, "StartTime": ANY, "EndTime": ANY, "NextToken": "page-2"},
    )
    with stub:
        answers = provider.fetch([Query("errors", "Errors", CANARY)], NOW - timedelta(hours=1), NOW)

    assert answers == {"errors": 7.0}


def test_partial_data_on_the_last_page_is_not_complete() -> None:
    """GIVEN PartialData without a NextToken WHEN fetched THEN IncompleteData (inconclusive)."""
    provider, stub = _stubbed()
    stub.add_response(
        "get_metric_data", {"MetricDataResults": [_result("q0", [3.0], "PartialData")]}
    )
    with stub, pytest.raises(IncompleteData):
        provider.fetch([Query("errors", "Errors", CANARY)], NOW - timedelta(hours=1), NOW)


@pytest.mark.parametrize(("status", "transient"), [("Forbidden", False), ("InternalError", True)])
def test_status_codes_become_errors(status: str, transient: bool) -> None:
    """GIVEN Forbidden or InternalError WHEN fetched THEN permanent or transient error."""
    provider, stub = _stubbed()
    stub.add_response("get_metric_data", {"MetricDataResults": [_result("q0", [], status)]})
    with stub, pytest.raises(ProviderError) as caught:
        provider.fetch([Query("errors", "Errors", CANARY)], NOW - timedelta(hours=1), NOW)
    assert caught.value.transient is transient


def test_access_denied_is_permanent() -> None:
    """GIVEN AccessDenied WHEN fetched THEN a permanent error."""
    provider, stub = _stubbed()
    stub.add_client_error("get_metric_data", "AccessDenied", "not allowed", 403)
    with stub, pytest.raises(ProviderError) as caught:
        provider.fetch([Query("errors", "Errors", CANARY)], NOW - timedelta(hours=1), NOW)
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
        answers = provider.fetch(queries, NOW - timedelta(hours=1), NOW)

    assert len(answers) == 501 and answers["m500"] == 2.0 and answers["m0"] == 1.0
