"""CloudWatch counts with GetMetricData MetricStat ``Sum`` (metric math is not needed for
counts, and moto does not evaluate it)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from orchestrator.analysis.counts import Counts
from orchestrator.models import CloudWatchAnalysis

from .base import ProviderError, QueryContext

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient


class CloudWatchProvider:
    def __init__(self, client: CloudWatchClient | None = None) -> None:
        self.client = client or boto3.client("cloudwatch")

    def counts(
        self, spec: CloudWatchAnalysis, context: QueryContext, start: datetime, end: datetime
    ) -> Counts:
        dimensions = [{"Name": k, "Value": context.fill(v)} for k, v in spec.dimensions.items()]
        queries = [
            _sum_query("total", spec.namespace, spec.requests_metric, dimensions, spec.period),
            _sum_query("errors", spec.namespace, spec.errors_metric, dimensions, spec.period),
        ]
        sums = self._sums(queries, start, end)
        try:
            return Counts(errors=round(sums["errors"]), total=round(sums["total"]))
        except ValueError as exc:
            raise ProviderError(f"inconsistent counts for {context.variant}: {exc}") from exc

    def _sums(
        self, queries: list[dict[str, Any]], start: datetime, end: datetime
    ) -> dict[str, float]:
        sums = {query["Id"]: 0.0 for query in queries}
        kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end}
        try:
            while True:
                page = self.client.get_metric_data(**kwargs)
                for result in page["MetricDataResults"]:
                    sums[result["Id"]] += sum(result.get("Values", []))
                if not page.get("NextToken"):
                    return sums
                kwargs["NextToken"] = page["NextToken"]
        except (ClientError, BotoCoreError) as exc:
            raise ProviderError(f"CloudWatch GetMetricData failed: {exc}") from exc


def _sum_query(
    query_id: str, namespace: str, metric: str, dimensions: list[dict[str, str]], period: int
) -> dict[str, Any]:
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {"Namespace": namespace, "MetricName": metric, "Dimensions": dimensions},
            "Period": period,
            "Stat": "Sum",
        },
        "ReturnData": True,
    }
