"""Counts per segment value (``fetch_segment_series``): CloudWatch against moto (values
discovered with ListMetrics, one MetricStat each), Datadog against the local endpoint
(the query grouped ``by {browser}``, each group read from its tags), and ``measure``
keeping the largest values and naming the rest."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from moto import mock_aws

from orchestrator.analysis.providers import (
    CloudWatchProvider,
    DatadogProvider,
    ProviderError,
    Query,
    measure,
)
from orchestrator.analysis.providers.base import QueryContext
from orchestrator.local.datadog import API_KEY, APP_KEY, DatadogEndpoint
from orchestrator.models.analysis import AnalysisSpec, DatadogSource

CANARY = QueryContext("canary", "v2", "shop.example.com", "r-1")
STABLE = QueryContext("stable", "v1", "shop.example.com", "r-1")
DIMENSIONS = {"Host": "{host}", "Variant": "{variant}"}
MINUTE = timedelta(minutes=1)


def _put(
    client: object, variant: str, browser: str | None, name: str, value: float, at: datetime
) -> None:
    dimensions = [
        {"Name": "Host", "Value": "shop.example.com"},
        {"Name": "Variant", "Value": variant},
    ]
    if browser is not None:
        dimensions.append({"Name": "browser", "Value": browser})
    client.put_metric_data(  # type: ignore[attr-defined]
        Namespace="Shop/Edge",
        MetricData=[
            {"MetricName": name, "Dimensions": dimensions, "Value": value, "Timestamp": at}
        ],
    )


@mock_aws
def test_cloudwatch_discovers_the_values_and_counts_each() -> None:
    """GIVEN Requests with and without a browser dimension in moto (and a metric with one
    more dimension) WHEN fetched by browser THEN each browser's own sums per minute, only
    for the exact dimension set, and the totals are not counted as a value."""
    client = boto3.client("cloudwatch", region_name="us-east-1")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=4)
    _put(client, "canary", "chrome-131", "Requests", 90.0, start + timedelta(seconds=10))
    _put(client, "canary", "ie-11", "Requests", 10.0, start + timedelta(seconds=20))
    _put(client, "canary", "ie-11", "Requests", 4.0, start + MINUTE + timedelta(seconds=5))
    _put(client, "canary", None, "Requests", 104.0, start + timedelta(seconds=10))
    _put(client, "stable", "chrome-131", "Requests", 900.0, start + timedelta(seconds=10))
    client.put_metric_data(
        Namespace="Shop/Edge",
        MetricData=[
            {
                "MetricName": "Requests",
                "Dimensions": [
                    {"Name": "Host", "Value": "shop.example.com"},
                    {"Name": "Variant", "Value": "canary"},
                    {"Name": "browser", "Value": "edge-131"},
                    {"Name": "region", "Value": "eu"},
                ],
                "Value": 5.0,
                "Timestamp": start + timedelta(seconds=10),
            }
        ],
    )
    provider = CloudWatchProvider("Shop/Edge", DIMENSIONS, 60, client=client)
    queries = [Query("c_den", "Requests", CANARY), Query("s_den", "Requests", STABLE)]

    found = provider.fetch_segment_series(queries, "browser", start, start + 3 * MINUTE, 60)

    assert found == {
        "c_den": {"chrome-131": {start: 90.0}, "ie-11": {start: 10.0, start + MINUTE: 4.0}},
        "s_den": {"chrome-131": {start: 900.0}},
    }


@mock_aws
def test_cloudwatch_segments_respect_the_deadline() -> None:
    """GIVEN a spent deadline WHEN fetching by segment THEN a transient error, no call."""
    client = boto3.client("cloudwatch", region_name="us-east-1")
    provider = CloudWatchProvider("Shop/Edge", DIMENSIONS, 60, client=client)
    now = datetime.now(UTC)
    with pytest.raises(ProviderError) as spent:
        provider.fetch_segment_series(
            [Query("c", "Requests", CANARY)],
            "browser",
            now - MINUTE,
            now,
            60,
            deadline=time.monotonic() - 1,
        )
    assert spent.value.transient


def _spec(max_values: int = 50) -> AnalysisSpec:
    return AnalysisSpec.model_validate(
        {
            "namespace": "Shop/Edge",
            "dimensions": DIMENSIONS,
            "metrics": [{"name": "error-rate", "numerator": "Errors", "denominator": "Requests"}],
            "segments": [{"by": "browser", "max_values": max_values}],
        }
    )


@mock_aws
def test_measure_keeps_the_largest_values_and_names_the_rest() -> None:
    """GIVEN three browsers and max_values 2 WHEN measured THEN each arm has the two largest
    browsers' counts (a browser without errors counts 0 of them) and the smallest is
    listed as not judged."""
    client = boto3.client("cloudwatch", region_name="us-east-1")
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=3)
    at = start + timedelta(seconds=10)
    for variant, scale in (("canary", 1.0), ("stable", 19.0)):
        for browser, requests, errors in (
            ("chrome-131", 600, 6),
            ("safari-18", 300, 0),
            ("ie-11", 5, 5),
        ):
            _put(client, variant, browser, "Requests", requests * scale, at)
            if errors:
                _put(client, variant, browser, "Errors", errors, at)
        _put(client, variant, None, "Requests", 905 * scale, at)
        _put(client, variant, None, "Errors", 11, at)
    provider = CloudWatchProvider("Shop/Edge", DIMENSIONS, 60, client=client)
    contexts = {"canary": CANARY, "stable": STABLE}

    found = measure(provider, _spec(2), contexts, start, start + 2 * MINUTE, segments=True)

    canary = found["error-rate", "canary"]
    assert canary.counts is not None and canary.counts.total == 905
    assert canary.segments is not None
    assert {
        k: (v.counts.errors, v.counts.total) for k, v in canary.segments.items() if v.counts
    } == {
        "browser=chrome-131": (6, 600),
        "browser=safari-18": (0, 300),
    }
    assert canary.unjudged_segments == ("browser=ie-11",)


def test_measure_keeps_the_totals_when_segments_fail() -> None:
    """GIVEN a provider whose segment fetch raises WHEN measured THEN the totals stand and
    the segments are unknown, with the reason."""
    from orchestrator.analysis.providers import FakeProvider

    fake = FakeProvider(segment_error=ProviderError("throttled"))
    for variant in ("canary", "stable"):
        fake.set_counts(variant, 5, 1000)
    now = datetime.now(UTC)
    found = measure(
        fake, _spec(), {"canary": CANARY, "stable": STABLE}, now - MINUTE, now, segments=True
    )

    canary = found["error-rate", "canary"]
    assert canary.ok and canary.counts is not None
    assert canary.segments is None and canary.segments_missing == "throttled"


@pytest.fixture
def local_datadog() -> Iterator[DatadogEndpoint]:
    endpoint = DatadogEndpoint().start()
    yield endpoint
    endpoint.stop()


@pytest.mark.parametrize("api", ["v2", "v1"])
def test_datadog_groups_by_the_tag_on_the_local_endpoint(
    local_datadog: DatadogEndpoint, api: str
) -> None:
    """GIVEN points tagged by browser (and some untagged) in the local endpoint WHEN fetched
    by browser on v2 and v1 THEN each browser's per-minute sums; untagged points in none."""
    t0 = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
    second = int(t0.timestamp())
    store = local_datadog.store
    for offset in range(0, 120, 10):
        store.add(
            "web.requests", {"variant": "canary", "browser": "chrome-131"}, second + offset, 3.0
        )
        store.add("web.requests", {"variant": "canary"}, second + offset, 1.0)
    store.add("web.requests", {"variant": "canary", "browser": "ie-11"}, second + 70, 2.0)
    provider = DatadogProvider(
        DatadogSource(api_key_secret="api", app_key_secret="app", api=api),
        host=local_datadog.url,
        secret={"api": API_KEY, "app": APP_KEY}.__getitem__,
    )
    queries = [Query("m0", "sum:web.requests{variant:canary}.as_count()", CANARY)]

    found = provider.fetch_segment_series(queries, "browser", t0, t0 + 2 * MINUTE, 60)

    assert found == {
        "m0": {"chrome-131": {t0: 18.0, t0 + MINUTE: 18.0}, "ie-11": {t0 + MINUTE: 2.0}}
    }
