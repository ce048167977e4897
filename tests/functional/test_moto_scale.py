"""Functional tests for orchestrator.local.moto_scale: moto's server answers the same,
at the cost of the request, on a real moto server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from orchestrator.local import moto_scale


@pytest.fixture(scope="module")
def cloudwatch() -> Iterator[Any]:
    from moto.server import ThreadedMotoServer

    moto_scale.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.get_host_and_port()[1]}"
        yield boto3.client(
            "cloudwatch",
            endpoint_url=url,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )
    finally:
        server.stop()


def _query(qid: str, name: str, namespace: str, host: str | None) -> dict[str, Any]:
    dimensions = [{"Name": "Host", "Value": host}] if host else []
    return {
        "Id": qid,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": name, "Dimensions": dimensions},
            "Period": 1,
            "Stat": "Sum",
        },
    }


def test_a_query_sees_its_own_metrics_among_many(cloudwatch):
    """GIVEN datapoints of several hosts, metrics and namespaces WHEN one host's metric is
    queried THEN the sums are that host's only."""
    at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=5)
    for namespace in ("Ours", "Theirs"):
        for host, value in (("a.test", 1.0), ("b.test", 10.0)):
            for name in ("Requests", "Errors"):
                cloudwatch.put_metric_data(
                    Namespace=namespace,
                    MetricData=[
                        {
                            "MetricName": name,
                            "Dimensions": [{"Name": "Host", "Value": host}],
                            "Timestamp": at + timedelta(seconds=s),
                            "Value": value,
                            "StorageResolution": 1,
                        }
                        for s in range(3)
                    ],
                )
    answer = cloudwatch.get_metric_data(
        MetricDataQueries=[
            _query("requests", "Requests", "Ours", "a.test"),
            _query("errors", "Errors", "Ours", "b.test"),
            _query("all", "Requests", "Ours", None),
        ],
        StartTime=at - timedelta(seconds=1),
        EndTime=at + timedelta(seconds=10),
    )
    sums = {r["Id"]: sum(r["Values"]) for r in answer["MetricDataResults"]}
    # With dimensions moto matches regardless of the namespace: Ours and Theirs both count.
    assert sums == {"requests": 6.0, "errors": 60.0, "all": 33.0}


def test_the_moto_module_list_is_read_once():
    """GIVEN the dispatcher's lookup WHEN asked twice THEN the same modules, without
    listing the package directory again."""
    from moto import backends

    first = time.perf_counter()
    modules = list(backends.list_of_moto_modules())
    again = list(backends.list_of_moto_modules())
    assert modules == again and "dynamodb" in modules
    assert time.perf_counter() - first < 1.0


def test_the_interpreter_keeps_one_client_per_region_and_service(cloudwatch):
    """GIVEN the Step Functions interpreter asking for a Lambda client per task WHEN asked
    again (with other credentials) THEN it gets the same client; another region its own."""
    from moto.stepfunctions.parser.asl.utils import boto_client

    first = boto_client.boto_client_for("us-east-1", "lambda", None)
    assert boto_client.boto_client_for("us-east-1", "lambda", object()) is first
    assert boto_client.boto_client_for("eu-west-1", "lambda", None) is not first
