"""The seam between fetching and judging."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from orchestrator.analysis.counts import Counts
from orchestrator.models import CloudWatchAnalysis


class ProviderError(Exception):
    """The provider could not answer; the workflow treats it as missing evidence."""


@dataclass(frozen=True)
class QueryContext:
    """Values a query template may use."""

    variant: str
    version: str
    host: str
    rollout_id: str

    def fill(self, template: str) -> str:
        return template.format(
            variant=self.variant, version=self.version, host=self.host, rollout_id=self.rollout_id
        )


class MetricProvider(Protocol):
    def counts(
        self, spec: CloudWatchAnalysis, context: QueryContext, start: datetime, end: datetime
    ) -> Counts: ...
