"""Segments end to end on loopback: simulated viewers through the CloudFront emulator and the
real edge triggers to a demo origin that fails one browser, counted per segment."""

from __future__ import annotations

import http.client
import time
from collections.abc import Iterator
from typing import Any

import pytest

from edge import config, rules
from orchestrator.local.cloudfront import CloudFrontEmulator
from orchestrator.local.origins import DemoOrigin
from orchestrator.local.traffic import IE_11, USER_AGENTS, TrafficGenerator

pytestmark = pytest.mark.integration

HOST = "segments.edgeshift.test"
CHROME = USER_AGENTS[0][1]


def _rule(canary_port: int) -> dict[str, Any]:
    origin = {"domain": "127.0.0.1", "port": canary_port, "protocol": "http"}
    return {
        "host": HOST,
        "path_rule": "default",
        "revision": 1,
        "salt": "r-segments",
        "rollout_id": "r-segments",
        "variants": [
            {
                "name": "canary",
                "version": "v2",
                "weight": 10_000,
                "actions": {"set_origin": origin},
            },
            {"name": "stable", "version": "v1", "weight": 0, "actions": {}},
        ],
    }


@pytest.fixture
def cdn(monkeypatch: pytest.MonkeyPatch) -> Iterator[CloudFrontEmulator]:
    """The emulator in front of a canary that fails every IE 11 request and nothing else."""
    config.reset()
    stable = DemoOrigin("v1", 0.0).start()
    canary = DemoOrigin("v2", 0.0, segment_errors={"browser=ie-11": 1.0}).start()
    items = [_rule(canary.port)]
    assert rules.is_valid_rule(items[0])
    cache = rules.RuleCache(lambda host: items if host == HOST else [], ttl_seconds=3600)
    monkeypatch.setattr(rules, "default_cache", lambda: cache)
    edge = CloudFrontEmulator(default_origin_port=stable.port).start()
    try:
        yield edge
    finally:
        for server in (edge, stable, canary):
            server.stop()
        config.reset()


def _get(edge: CloudFrontEmulator, headers: dict[str, str]) -> tuple[int, http.client.HTTPMessage]:
    connection = http.client.HTTPConnection("127.0.0.1", edge.port, timeout=10)
    try:
        connection.request("GET", "/app.js", headers={"Host": HOST, **headers})
        response = connection.getresponse()
        response.read()
        return response.status, response.msg
    finally:
        connection.close()


def test_origin_sees_the_segment_with_the_country_cloudfront_located(
    cdn: CloudFrontEmulator,
) -> None:
    """GIVEN an IE 11 viewer located in Germany that forges CloudFront-Viewer-Country WHEN it
    asks THEN the origin got the edge's label with CloudFront's country, and failed it."""
    status, headers = _get(
        cdn,
        {
            "User-Agent": IE_11,
            "X-Emulated-Viewer-Country": "DE",
            "CloudFront-Viewer-Country": "US",
        },
    )

    assert status == 500
    assert headers["x-edgeshift-segment"] == "browser=ie-11;device=desktop;country=de"
    assert cdn.stats["function_errors"] == 0


def test_other_browsers_are_served(cdn: CloudFrontEmulator) -> None:
    """GIVEN a Chrome viewer without a known country WHEN it asks THEN the canary serves it
    and the segment's country is xx."""
    status, headers = _get(cdn, {"User-Agent": CHROME})

    assert status == 200
    assert headers["x-edgeshift-segment"] == "browser=chrome-131;device=desktop;country=xx"


class _CloudWatch:
    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
        self.calls.append(MetricData)


def test_traffic_counts_each_segment_and_only_ie_fails(cdn: CloudFrontEmulator) -> None:
    """GIVEN simulated viewers WHEN they run a few seconds THEN the tally counts browsers and
    countries, every IE 11 request failed, no other did, and CloudWatch got the segments."""
    cloudwatch = _CloudWatch()
    generator = TrafficGenerator(
        cdn.port, HOST, cloudwatch, users=500, rate=400, max_requests=1200, max_seconds=20
    ).start()
    deadline = time.monotonic() + 20
    while sum(generator.totals.requests.values()) < 1200 and time.monotonic() < deadline:
        time.sleep(0.1)
    generator.stop()
    totals = generator.totals

    browsers = totals.by_dimension("canary", "browser")
    assert totals.requests["canary"] == 1200
    assert browsers["ie-11"][0] > 0 and browsers["ie-11"][0] == browsers["ie-11"][1]
    assert totals.errors["canary"] == browsers["ie-11"][1]
    assert len(totals.by_dimension("canary", "country")) >= 10
    dimensions = {
        d["Name"] for call in cloudwatch.calls for datum in call for d in datum["Dimensions"]
    }
    assert dimensions == {"Host", "Variant", "browser", "device", "country"}
