"""CloudWatch: GetMetricData with MetricStat per variant (``Sum`` for counts; metric math is
not needed for counts, and moto does not evaluate it), all queries of a look batched in as
few calls as the 500-query limit allows, pages followed through ``NextToken``.

A result whose ``StatusCode`` is still ``PartialData`` after the last page is not complete
yet: the look is inconclusive. ``Forbidden`` and access errors are permanent; throttling,
``InternalError`` and network failures are transient.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .base import BaseProvider, IncompleteData, ProviderError, Query

if TYPE_CHECKING:
    from mypy_boto3_cloudwatch import CloudWatchClient

MAX_QUERIES = 500
_PERMANENT = {
    "AccessDenied",
    "AccessDeniedException",
    "InvalidParameterValue",
    "InvalidParameterCombination",
    "MissingParameter",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "ValidationError",
}


class CloudWatchProvider(BaseProvider):
    def __init__(
        self,
        namespace: str,
        dimensions: dict[str, str] | None = None,
        period: int = 60,
        client: CloudWatchClient | None = None,
    ) -> None:
        self.namespace = namespace
        self.dimensions = dimensions or {}
        self.period = period
        self._client = client

    @property
    def client(self) -> CloudWatchClient:
        if self._client is None:
            import boto3

            self._client = boto3.client("cloudwatch")
        return self._client

    def fetch(
        self, queries: Sequence[Query], start: datetime, end: datetime
    ) -> dict[str, float | None]:
        points: dict[str, list[float]] = {}
        partial: list[str] = []
        for offset in range(0, len(queries), MAX_QUERIES):
            batch = queries[offset : offset + MAX_QUERIES]
            ids = {f"q{i}": query for i, query in enumerate(batch)}
            request = [self._metric_stat(qid, query) for qid, query in ids.items()]
            for qid, (values, status) in self._pages(request, start, end).items():
                points[ids[qid].id] = values
                if status == "PartialData":
                    partial.append(ids[qid].text)
        if partial:
            raise IncompleteData(f"CloudWatch data still partial for {sorted(set(partial))}")
        return {query.id: _aggregate(points.get(query.id, []), query) for query in queries}

    def _metric_stat(self, qid: str, query: Query) -> dict[str, Any]:
        dimensions = [
            {"Name": name, "Value": query.context.fill(value)}
            for name, value in self.dimensions.items()
        ]
        metric = {"Namespace": self.namespace, "MetricName": query.text, "Dimensions": dimensions}
        return {
            "Id": qid,
            "MetricStat": {"Metric": metric, "Period": self.period, "Stat": query.stat},
            "ReturnData": True,
        }

    def _pages(
        self, request: list[dict[str, Any]], start: datetime, end: datetime
    ) -> dict[str, tuple[list[float], str]]:
        from botocore.exceptions import BotoCoreError, ClientError

        found: dict[str, tuple[list[float], str]] = {}
        kwargs: dict[str, Any] = {"MetricDataQueries": request, "StartTime": start, "EndTime": end}
        try:
            while True:
                page = self.client.get_metric_data(**kwargs)
                for result in page.get("MetricDataResults", []):
                    values, _ = found.get(result["Id"], ([], "Complete"))
                    status = result.get("StatusCode", "Complete")
                    if status in ("InternalError", "Forbidden"):
                        raise ProviderError(
                            f"CloudWatch {status} for {result.get('Label', result['Id'])}",
                            transient=status == "InternalError",
                        )
                    found[result["Id"]] = ([*values, *result.get("Values", [])], status)
                if not page.get("NextToken"):
                    return found
                kwargs["NextToken"] = page["NextToken"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise ProviderError(
                f"CloudWatch GetMetricData failed: {exc}", transient=code not in _PERMANENT
            ) from exc
        except BotoCoreError as exc:
            raise ProviderError(f"CloudWatch unreachable: {exc}") from exc


def _aggregate(values: list[float], query: Query) -> float | None:
    if not values:
        return None
    if query.aggregator == "sum":
        return float(sum(values))
    if query.aggregator == "max":
        return max(values)
    if query.aggregator == "min":
        return min(values)
    if query.aggregator == "last":
        return values[0]  # GetMetricData returns newest first by default
    return sum(values) / len(values)
