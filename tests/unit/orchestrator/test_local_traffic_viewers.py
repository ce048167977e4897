"""The local traffic's ``Viewers`` count: each variant's distinct viewers per minute, so a
plan's 60-second periods sum to the viewers of the minute, not to the seconds a viewer was
active in."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.local import traffic


class _CloudWatch:
    def __init__(self) -> None:
        self.data: list[dict[str, Any]] = []

    def put_metric_data(self, Namespace: str, MetricData: list[dict[str, Any]]) -> None:
        self.data += MetricData


def _viewers(cloudwatch: _CloudWatch, variant: str) -> float:
    return sum(
        float(d["Value"])
        for d in cloudwatch.data
        if d["MetricName"] == traffic.VIEWERS_METRIC
        and {"Name": "Variant", "Value": variant} in d["Dimensions"]
    )


def test_a_viewer_active_every_second_is_one_viewer_of_the_minute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN one client on the canary making a request every second for two minutes, and
    60 stable viewers a minute making one request each WHEN the traffic publishes each
    second THEN the Viewers sum to 2 and 120: the heavy client counts once a minute, as
    ``analysis.split.viewers`` asks, not once per second it was active."""
    cloudwatch = _CloudWatch()
    generator = traffic.TrafficGenerator(
        edge_port=1, host="shop.example.com", cloudwatch=cloudwatch
    )
    start = 1_700_000_040.0  # a minute's first second
    for second in range(120):
        monkeypatch.setattr(
            "orchestrator.local.traffic.time.time", lambda s=second: start + s + 0.5
        )
        generator._pending.add("canary", False, viewer="10.0.0.1|crawler")
        generator._pending.add("stable", False, viewer=f"10.2.0.{second % 60}|browser")
        generator._flush()
    assert _viewers(cloudwatch, "canary") == 2  # once in each minute
    assert _viewers(cloudwatch, "stable") == 120
