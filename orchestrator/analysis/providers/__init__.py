"""Metric providers: each answers "how many bad events and events for variant V in [t0, t1)".

The backends (CloudWatch, Datadog) import their SDKs lazily: importing this package is cheap.
"""

from .base import (
    BaseProvider,
    IncompleteData,
    Measurement,
    MetricProvider,
    ProviderError,
    Query,
    QueryContext,
    measure,
    metric_queries,
)
from .cloudwatch import CloudWatchProvider
from .datadog import DatadogProvider
from .fake import FakeProvider

__all__ = [
    "BaseProvider",
    "CloudWatchProvider",
    "DatadogProvider",
    "FakeProvider",
    "IncompleteData",
    "Measurement",
    "MetricProvider",
    "ProviderError",
    "Query",
    "QueryContext",
    "measure",
    "metric_queries",
]
