"""A provider for tests: answers from a table, or fails the way it is told to."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from .base import BaseProvider, ProviderError, Query, SegmentSeries, Series

Answer = Callable[[Query, datetime, datetime], float | None]


@dataclass
class FakeProvider(BaseProvider):
    """``values[(text, variant)]`` answers a query; missing keys answer ``None`` (no data).

    ``error`` makes every fetch raise it; ``calls`` records each batch of queries.
    ``segments[(dimension, value)]`` holds a segment value's ``values`` (as above);
    ``segment_error`` makes only the segment fetch raise.
    """

    values: dict[tuple[str, str], float | None] = field(default_factory=dict)
    answer: Answer | None = None
    error: ProviderError | None = None
    calls: list[list[Query]] = field(default_factory=list)
    segments: dict[tuple[str, str], dict[tuple[str, str], float]] = field(default_factory=dict)
    segment_error: Exception | None = None

    def fetch(
        self,
        queries: Sequence[Query],
        start: datetime,
        end: datetime,
        *,
        deadline: float | None = None,
    ) -> dict[str, float | None]:
        self.calls.append(list(queries))
        if self.error is not None:
            raise self.error
        if self.answer is not None:
            return {q.id: self.answer(q, start, end) for q in queries}
        return {q.id: self.values.get((q.text, q.context.variant)) for q in queries}

    def fetch_series(
        self,
        queries: Sequence[Query],
        start: datetime,
        end: datetime,
        period: int,
        *,
        deadline: float | None = None,
    ) -> dict[str, Series]:
        """The whole window's answer, as one period starting at ``start``."""
        answers = self.fetch(queries, start, end, deadline=deadline)
        return {qid: {} if value is None else {start: value} for qid, value in answers.items()}

    def fetch_segment_series(
        self,
        queries: Sequence[Query],
        dimension: str,
        start: datetime,
        end: datetime,
        period: int,
        *,
        deadline: float | None = None,
        max_values: int = 50,
    ) -> SegmentSeries:
        """Each value's answer, as one period starting at ``start``."""
        self.calls.append(list(queries))
        if self.segment_error is not None:
            raise self.segment_error
        answers: SegmentSeries = {q.id: {} for q in queries}
        for (where, value), table in self.segments.items():
            if where != dimension:
                continue
            for q in queries:
                found = table.get((q.text, q.context.variant))
                if found is not None:
                    answers[q.id][value] = {start: found}
        return answers

    def set_segment_counts(
        self,
        dimension: str,
        value: str,
        variant: str,
        errors: float,
        total: float,
        numerator: str = "Errors",
        denominator: str = "Requests",
    ) -> None:
        table = self.segments.setdefault((dimension, value), {})
        table[numerator, variant] = errors
        table[denominator, variant] = total

    def set_counts(
        self,
        variant: str,
        errors: float,
        total: float,
        numerator: str = "Errors",
        denominator: str = "Requests",
    ) -> None:
        self.values[numerator, variant] = errors
        self.values[denominator, variant] = total
