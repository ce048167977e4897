"""A look never takes longer than its time budget: measured on the wall clock against a
local server (127.0.0.1, a free port) that rate-limits with ``Retry-After`` or answers too
slowly. Bounds leave 1.5 s of slack for a busy machine."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from test_provider_datadog import SCALAR, V1, FakeDatadog, _queries, _scalar, datadog

from orchestrator.analysis.providers import DatadogProvider, IncompleteData, ProviderError
from orchestrator.analysis.providers import datadog as datadog_module
from orchestrator.models.analysis import DatadogSource

__all__ = ["datadog"]  # the fixture, imported for this module's tests

SLACK = 1.5
END = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
START = END - timedelta(minutes=5)
TIMESERIES = "/api/v2/query/timeseries"
LIMITED = (429, {"errors": ["Rate limit exceeded"]}, {"Retry-After": "30"})


def _real_clock_provider(server: FakeDatadog, **source: Any) -> DatadogProvider:
    settings = {"api_key_secret": "api", "app_key_secret": "app", "timeout": 10} | source
    keys = {"api": "the-api-key", "app": "the-app-key"}
    return DatadogProvider(
        DatadogSource.model_validate(settings), host=server.url, secret=keys.__getitem__
    )


def _timed(call: Callable[[], Any]) -> tuple[ProviderError, float]:
    began = time.monotonic()
    with pytest.raises(ProviderError) as caught:
        call()
    return caught.value, time.monotonic() - began


def _requests(server: FakeDatadog) -> int:
    return len(server.seen)


@pytest.mark.parametrize("api", ["v2", "v1"])
def test_retry_after_30_with_a_2_s_budget_returns_within_the_budget(
    datadog: FakeDatadog, api: str
) -> None:
    """GIVEN every route answering 429 with Retry-After: 30 WHEN a look with a 2 s budget
    fetches counts (v2 falling back to v1, or v1) THEN a transient error within the budget,
    and the server saw one request per route."""
    for path in (SCALAR, TIMESERIES, V1):
        datadog.reply(path, LIMITED)
    provider = _real_clock_provider(datadog, api=api, max_retries=10)

    for call in (
        lambda: provider.fetch(_queries("q"), START, END, deadline=time.monotonic() + 2),
        lambda: provider.fetch_series(_queries("q"), START, END, 60, deadline=time.monotonic() + 2),
    ):
        before = _requests(datadog)
        error, took = _timed(call)

        assert error.transient and not isinstance(error, IncompleteData)
        assert took <= 2 + SLACK
        assert _requests(datadog) - before <= (2 if api == "v2" else 1)


def test_short_rate_limit_waits_stop_at_the_budget(datadog: FakeDatadog) -> None:
    """GIVEN a 429 asking for 1 s each time WHEN a look with a 2.5 s budget and 10 retries
    allowed fetches THEN it waits while a retry fits, then a transient error within the
    budget, after a handful of requests."""
    datadog.reply(SCALAR, (429, {"errors": ["Rate limit exceeded"]}, {"X-RateLimit-Reset": "1"}))
    provider = _real_clock_provider(datadog, max_retries=10, fallback_to_v1=False)

    error, took = _timed(
        lambda: provider.fetch(_queries("q"), START, END, deadline=time.monotonic() + 2.5)
    )

    assert error.transient and "rate limited" in str(error)
    assert 1.0 <= took <= 2.5 + SLACK
    assert 2 <= _requests(datadog) <= 3


def test_a_slow_server_is_cut_off_at_the_deadline(datadog: FakeDatadog) -> None:
    """GIVEN a server taking 4 s per answer and a 10 s request timeout WHEN a look with a
    1.5 s budget fetches (v2, then the v1 fallback) THEN the request timeout is the time
    left: a transient "time budget spent" error within the budget."""
    datadog.delay = 4.0
    datadog.reply(TIMESERIES, (200, {"data": {}}, {}))
    provider = _real_clock_provider(datadog)

    error, took = _timed(
        lambda: provider.fetch_series(
            _queries("q"), START, END, 60, deadline=time.monotonic() + 1.5
        )
    )

    assert error.transient and "time budget spent" in str(error)
    assert took <= 1.5 + SLACK
    assert _requests(datadog) == 1


def test_without_a_deadline_the_default_budget_applies(
    datadog: FakeDatadog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN no deadline and a server slower than the default budget WHEN fetched THEN the
    call still ends within that budget."""
    monkeypatch.setattr(datadog_module, "DEFAULT_BUDGET", 1.0)
    datadog.delay = 3.0
    datadog.reply(SCALAR, (200, _scalar(1.0), {}))
    provider = _real_clock_provider(datadog, fallback_to_v1=False)

    error, took = _timed(lambda: provider.fetch(_queries("q"), START, END))

    assert error.transient and took <= 1.0 + SLACK


def test_a_spent_budget_sends_nothing(datadog: FakeDatadog) -> None:
    """GIVEN a deadline already past WHEN fetched THEN a transient error and no request."""
    provider = _real_clock_provider(datadog)

    error, _ = _timed(
        lambda: provider.fetch(_queries("q"), START, END, deadline=time.monotonic() - 1)
    )

    assert error.transient and "time budget spent" in str(error)
    assert _requests(datadog) == 0
