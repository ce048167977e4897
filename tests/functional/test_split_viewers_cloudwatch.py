"""Counting viewers for the served split end to end on CloudWatch's API (moto): the local
traffic's ``Viewers`` metric as PutMetricData publishes it, read back by the CloudWatch
provider for a plan with ``analysis.split.viewers``, and judged in viewers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import boto3
from moto import mock_aws

from orchestrator.analysis.evaluate import contexts
from orchestrator.analysis.providers import CloudWatchProvider
from orchestrator.analysis.providers.base import measure
from orchestrator.analysis.split import served_split
from orchestrator.local import traffic
from orchestrator.models import Rollout, RolloutPlan, RolloutStatus
from orchestrator.models.analysis import SPLIT_VIEWERS, SplitSpec

HOST = "shop.example.com"


def _plan() -> RolloutPlan:
    return RolloutPlan.model_validate(
        {
            "target": {"host": HOST},
            "stable": {"name": "stable", "version": "v1"},
            "canary": {"name": "canary", "version": "v2"},
            "stages": [{"weight": 10, "bake": 600, "interval": 60}],
            "analysis": {
                "namespace": traffic.NAMESPACE,
                "dimensions": {"Host": "{host}", "Variant": "{variant}"},
                "requests_metric": "Requests",
                "errors_metric": "Errors",
                "split": {"viewers": traffic.VIEWERS_METRIC},
            },
        }
    )


def _publish(client: object, start: float, seconds: int) -> None:
    """Each second: one heavy client on the canary making 100 requests, 10 light canary
    viewers and 90 light stable ones making one each (requests 55% canary, viewers 11%)."""
    for second in range(seconds):
        tally = traffic.Tally()
        for _ in range(100):
            tally.add("canary", False, viewer="10.0.0.1|crawler")
        for n in range(10):
            tally.add("canary", False, viewer=f"10.1.{second}.{n}|browser")
        for n in range(90):
            tally.add("stable", False, viewer=f"10.2.{second}.{n}|browser")
        traffic.put_counts(client, traffic.tally_data(HOST, tally, start + second))


def _running(plan: RolloutPlan, start: datetime) -> Rollout:
    return Rollout.start(plan, "t", now=start).model_copy(
        update={
            "status": RolloutStatus.RUNNING,
            "stage_started_at": start,
            "stage_index": 0,
        }
    )


@mock_aws
def test_a_heavy_client_skews_the_requests_but_not_the_viewers_the_check_counts() -> None:
    """GIVEN the local traffic's counts for five minutes in CloudWatch WHEN a plan counting
    viewers measures and checks them THEN each variant's viewers come back and the split,
    11% of viewers at a 10% weight, is ok, where the request share (55%) would not be."""
    client = boto3.client("cloudwatch", region_name="us-east-1")
    start = (datetime.now(UTC) - timedelta(minutes=7)).replace(second=0, microsecond=0)
    _publish(client, start.timestamp(), seconds=300)
    plan = _plan()
    rollout = _running(plan, start)
    provider = CloudWatchProvider(
        traffic.NAMESPACE, plan.analysis.dimensions, plan.analysis.period, client=client
    )

    found = measure(provider, plan.analysis, contexts(rollout), start, start + timedelta(minutes=6))

    assert found[SPLIT_VIEWERS, "canary"].counts.total == 300 * 11  # type: ignore[union-attr]
    assert found[SPLIT_VIEWERS, "stable"].counts.total == 300 * 90  # type: ignore[union-attr]
    assert found["error-rate", "canary"].counts.total == 300 * 110  # type: ignore[union-attr]
    check = served_split(rollout, found)
    assert check is not None and check.unit == "viewers" and check.weight == 0.1
    assert check.outcome == "ok", check.reason
    assert check.share is not None and abs(check.share - 11 / 101) < 1e-9
    # The same counts judged by requests: the heavy client makes it a mismatch.
    spec = plan.analysis.model_copy(update={"split": SplitSpec()})
    by_requests = _running(plan.model_copy(update={"analysis": spec}), start)
    requests_check = served_split(by_requests, found)
    assert requests_check is not None and requests_check.outcome == "mismatch"
    assert requests_check.share == 110 / 200
