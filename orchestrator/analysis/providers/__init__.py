"""Metric providers: each answers "how many errors and requests for variant V in [t0, t1)"."""

from .base import MetricProvider, ProviderError, QueryContext
from .cloudwatch import CloudWatchProvider

__all__ = ["CloudWatchProvider", "MetricProvider", "ProviderError", "QueryContext"]
