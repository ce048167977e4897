"""The Datadog provider through the real datadog-api-client against a local HTTP server
that answers with Datadog's documented bodies (v2 scalar, v1 query, errors, 429), and with
bodies that are not: several formulas in another order, missing columns, malformed values.
Per-period series are in test_provider_datadog_series.py, time budgets in
test_provider_datadog_budget.py."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from moto import mock_aws

from orchestrator.analysis.providers import DatadogProvider, IncompleteData, ProviderError, Query
from orchestrator.analysis.providers.base import QueryContext
from orchestrator.models.analysis import DatadogSource

END = datetime(2025, 1, 6, 12, 0, tzinfo=UTC)
START = END - timedelta(minutes=5)
CONTEXT = QueryContext("canary", "v2", "shop.example.com", "r-1")
KEYS = {"api": "the-api-key", "app": "the-app-key"}
V1_SERIES = {
    "status": "ok",
    "res_type": "time_series",
    "query": "q",
    "from_date": 0,
    "to_date": 1,
    "group_by": [],
    "message": "",
    "series": [
        {
            "metric": "web.errors",
            "display_name": "web.errors",
            "scope": "variant:canary",
            "expression": "sum:web.errors{variant:canary}.as_count()",
            "interval": 60,
            "length": 3,
            "start": 0,
            "end": 1,
            "aggr": "sum",
            "unit": None,
            "pointlist": [[1.0e12, 4.0], [1.00006e12, None], [1.00012e12, 6.0]],
        }
    ],
}


def _scalar(*values: float | None) -> dict[str, Any]:
    columns = [
        {"name": f"q{i}", "type": "number", "values": [v], "meta": {"unit": None}}
        for i, v in enumerate(values)
    ]
    return {"data": {"type": "scalar_response", "attributes": {"columns": columns}}}


class FakeDatadog:
    """Answers each route from a queue of (status, body, headers); records requests."""

    def __init__(self) -> None:
        self.replies: dict[str, list[tuple[int, Any, dict[str, str]]]] = {}
        self.seen: list[tuple[str, dict[str, str], Any]] = []
        self.delay = 0.0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._answer(None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                self._answer(json.loads(self.rfile.read(length)))

            def _answer(self, body: Any) -> None:
                path = self.path.split("?")[0]
                owner.seen.append((self.path, dict(self.headers), body))
                time.sleep(owner.delay)
                queue = owner.replies.get(path) or [(404, {"errors": ["Not found"]}, {})]
                status, reply, headers = queue.pop(0) if len(queue) > 1 else queue[0]
                data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                # The client may give up first (a timeout under test).
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def reply(self, path: str, *answers: tuple[int, Any, dict[str, str]]) -> None:
        self.replies[path] = list(answers)


@pytest.fixture
def datadog() -> Iterator[FakeDatadog]:
    server = FakeDatadog()
    yield server
    server.server.shutdown()
    server.server.server_close()


def _provider(server: FakeDatadog, **source: Any) -> tuple[DatadogProvider, list[float]]:
    slept: list[float] = []
    settings = {"api_key_secret": "api", "app_key_secret": "app", "timeout": 2} | source
    provider = DatadogProvider(
        DatadogSource.model_validate(settings),
        host=server.url,
        secret=KEYS.__getitem__,
        sleep=slept.append,
    )
    return provider, slept


def _queries(*texts: str) -> list[Query]:
    return [Query(f"m{i}", text, CONTEXT) for i, text in enumerate(texts)]


SCALAR = "/api/v2/query/scalar"
V1 = "/api/v1/query"


def test_v2_scalar_sums_each_query_and_sends_the_keys(datadog: FakeDatadog) -> None:
    """GIVEN a scalar answer WHEN fetched THEN one value per query, keys in the headers."""
    datadog.reply(SCALAR, (200, _scalar(12.0, 3400.0), {}))
    provider, _ = _provider(datadog)

    answers = provider.fetch(_queries("sum:e{v:canary}.as_count()", "sum:r{v:canary}"), START, END)

    assert answers == {"m0": 12.0, "m1": 3400.0}
    _, headers, body = datadog.seen[-1]
    assert headers["DD-API-KEY"] == "the-api-key"
    assert headers["DD-APPLICATION-KEY"] == "the-app-key"
    attributes = body["data"]["attributes"]
    assert attributes["from"] == int(START.timestamp() * 1000)
    assert [q["aggregator"] for q in attributes["queries"]] == ["sum", "sum"]


def test_v2_null_value_is_no_data(datadog: FakeDatadog) -> None:
    """GIVEN a scalar column with a null value WHEN fetched THEN None (no data), not 0."""
    datadog.reply(SCALAR, (200, _scalar(None, 10.0), {}))
    provider, _ = _provider(datadog)

    assert provider.fetch(_queries("a", "b"), START, END) == {"m0": None, "m1": 10.0}


def test_v1_sums_points_and_skips_nulls(datadog: FakeDatadog) -> None:
    """GIVEN v1 series with a null point WHEN fetched THEN the other points are summed."""
    datadog.reply(V1, (200, V1_SERIES, {}))
    provider, _ = _provider(datadog, api="v1")

    assert provider.fetch(_queries("sum:web.errors{variant:canary}"), START, END) == {"m0": 10.0}
    assert f"from={int(START.timestamp())}" in datadog.seen[-1][0]


def test_v1_empty_series_is_no_data(datadog: FakeDatadog) -> None:
    """GIVEN v1 with no series WHEN fetched THEN None."""
    datadog.reply(V1, (200, V1_SERIES | {"series": []}, {}))
    provider, _ = _provider(datadog, api="v1")

    assert provider.fetch(_queries("q"), START, END) == {"m0": None}


@pytest.mark.parametrize(("status", "words"), [(400, "query rejected"), (403, "key rejected")])
def test_client_errors_are_permanent(datadog: FakeDatadog, status: int, words: str) -> None:
    """GIVEN 400 or 403 WHEN fetched THEN a permanent error naming the cause, no fallback."""
    datadog.reply(SCALAR, (status, {"errors": ["Error parsing query"]}, {}))
    provider, _ = _provider(datadog)

    with pytest.raises(ProviderError, match=words) as caught:
        provider.fetch(_queries("q"), START, END)
    assert caught.value.transient is False
    assert not [s for s in datadog.seen if s[0].startswith(V1)]


def test_429_waits_for_the_reset_header_then_succeeds(datadog: FakeDatadog) -> None:
    """GIVEN a 429 with X-RateLimit-Reset 2 WHEN fetched THEN it sleeps 2 s once and retries."""
    limited = {
        "X-RateLimit-Limit": "100",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": "2",
        "X-RateLimit-Period": "60",
    }
    datadog.reply(
        SCALAR, (429, {"errors": ["Rate limit exceeded"]}, limited), (200, _scalar(5.0), {})
    )
    provider, slept = _provider(datadog)

    assert provider.fetch(_queries("q"), START, END) == {"m0": 5.0}
    assert slept == [2.0]


def test_429_retries_are_bounded(datadog: FakeDatadog) -> None:
    """GIVEN a 429 that never ends WHEN fetched THEN max_retries sleeps, then an error."""
    limited = {"X-RateLimit-Reset": "1"}
    datadog.reply(SCALAR, (429, {"errors": ["Rate limit exceeded"]}, limited))
    provider, slept = _provider(datadog, max_retries=2, fallback_to_v1=False)

    with pytest.raises(ProviderError, match="rate limited"):
        provider.fetch(_queries("q"), START, END)
    assert slept == [1.0, 1.0]


def test_5xx_is_transient_and_falls_back_to_v1(datadog: FakeDatadog) -> None:
    """GIVEN v2 answering 503 WHEN fetched THEN v1 answers; without fallback, a transient error."""
    datadog.reply(SCALAR, (503, {"errors": ["Service unavailable"]}, {}))
    datadog.reply(V1, (200, V1_SERIES, {}))
    provider, _ = _provider(datadog)
    assert provider.fetch(_queries("q"), START, END) == {"m0": 10.0}

    strict, _ = _provider(datadog, fallback_to_v1=False)
    with pytest.raises(ProviderError) as caught:
        strict.fetch(_queries("q"), START, END)
    assert caught.value.transient and not isinstance(caught.value, IncompleteData)


def test_timeout_is_a_transient_error(datadog: FakeDatadog) -> None:
    """GIVEN a server slower than the timeout WHEN fetched THEN a transient error."""
    datadog.delay = 1.5
    datadog.reply(SCALAR, (200, _scalar(1.0), {}))
    provider, _ = _provider(datadog, timeout=0.5, fallback_to_v1=False)

    with pytest.raises(ProviderError) as caught:
        provider.fetch(_queries("q"), START, END)
    assert caught.value.transient


def test_check_reports_a_rejected_api_key(datadog: FakeDatadog) -> None:
    """GIVEN /api/v1/validate answering 403 WHEN checked THEN one problem about the key."""
    datadog.reply("/api/v1/validate", (403, {"errors": ["Forbidden"]}, {}))
    provider, _ = _provider(datadog)

    problems = provider.check(_queries("q"), END)

    assert len(problems) == 1 and "key rejected" in problems[0]


@mock_aws
def test_keys_come_from_secrets_manager(datadog: FakeDatadog) -> None:
    """GIVEN keys in Secrets Manager WHEN the provider queries THEN it sends those keys."""
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(Name="dd/api-functional", SecretString="sm-api")
    secrets.create_secret(Name="dd/app-functional", SecretString="sm-app")
    datadog.reply(SCALAR, (200, _scalar(1.0), {}))
    source = DatadogSource(api_key_secret="dd/api-functional", app_key_secret="dd/app-functional")

    DatadogProvider(source, host=datadog.url).fetch(_queries("q"), START, END)

    headers = datadog.seen[-1][1]
    assert (headers["DD-API-KEY"], headers["DD-APPLICATION-KEY"]) == ("sm-api", "sm-app")


# Datadog's documented scalar column (the API reference example and the client's cassette
# for /api/v2/query/scalar): a number column named after its formula, with unit metadata.
PERCENT = {
    "scale_factor": 1.0,
    "id": 17,
    "name": "percent",
    "plural": "percent",
    "family": "percentage",
    "short_name": "%",
}


def _column(name: str | None, *values: Any) -> dict[str, Any]:
    column = {"type": "number", "values": list(values), "meta": {"unit": [PERCENT, None]}}
    return column if name is None else column | {"name": name}


def _columns(*columns: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"type": "scalar_response", "attributes": {"columns": list(columns)}}}


def test_v2_scalar_reads_each_formula_by_name_whatever_the_order(datadog: FakeDatadog) -> None:
    """GIVEN three formulas answered by a group column and number columns in another
    order WHEN fetched THEN each query gets its own column's value (groups summed)."""
    group = {"type": "group", "name": "host", "values": [["web-1"], ["web-2"]]}
    datadog.reply(
        SCALAR,
        (
            200,
            _columns(
                group, _column("q2", 5.0, 2.0), _column("q0", 10.0, 2.0), _column("q1", 3.0, 4.0)
            ),
            {},
        ),
    )
    provider, _ = _provider(datadog)

    answers = provider.fetch(_queries("a", "b", "c"), START, END)

    assert answers == {"m0": 12.0, "m1": 7.0, "m2": 7.0}


def test_v2_scalar_missing_column_is_no_data_not_a_neighbours_value(datadog: FakeDatadog) -> None:
    """GIVEN columns for the first and third formulas only WHEN fetched THEN the second is
    None (no data) and the third keeps its own value."""
    datadog.reply(SCALAR, (200, _columns(_column("q0", 1.0), _column("q2", 9.0)), {}))
    provider, _ = _provider(datadog)

    assert provider.fetch(_queries("a", "b", "c"), START, END) == {
        "m0": 1.0,
        "m1": None,
        "m2": 9.0,
    }


def test_v2_scalar_unnamed_columns_come_in_formula_order(datadog: FakeDatadog) -> None:
    """GIVEN number columns without names WHEN fetched THEN read in formula order."""
    datadog.reply(SCALAR, (200, _columns(_column(None, 4.0), _column(None, 40.0)), {}))
    provider, _ = _provider(datadog)

    assert provider.fetch(_queries("a", "b"), START, END) == {"m0": 4.0, "m1": 40.0}


@pytest.mark.parametrize("value", ["12", {"value": 12}, True, [12.0]])
def test_v2_scalar_malformed_value_is_a_provider_error(datadog: FakeDatadog, value: Any) -> None:
    """GIVEN a number column holding a string, an object, a boolean or a list WHEN fetched
    THEN a ProviderError naming the value, not a TypeError, and no v1 query."""
    datadog.reply(SCALAR, (200, _columns(_column("q0", value)), {}))
    provider, _ = _provider(datadog)

    with pytest.raises(ProviderError, match="malformed") as caught:
        provider.fetch(_queries("a"), START, END)
    assert not isinstance(caught.value, IncompleteData)
    assert not [s for s in datadog.seen if s[0].startswith(V1)]


@pytest.mark.parametrize(
    "body",
    [
        {"data": {"type": "scalar_response", "attributes": {"columns": {"q0": 1}}}},
        {"data": {"type": "scalar_response", "attributes": {"columns": ["q0"]}}},
        {
            "data": {
                "type": "scalar_response",
                "attributes": {"columns": [_column("q0") | {"values": 3}]},
            }
        },
        {"data": ["scalar_response"]},
    ],
    ids=["columns-object", "column-string", "values-number", "data-list"],
)
def test_v2_scalar_malformed_body_is_a_provider_error(datadog: FakeDatadog, body: Any) -> None:
    """GIVEN bodies of the wrong shape WHEN fetched THEN a ProviderError, never a crash."""
    datadog.reply(SCALAR, (200, body, {}))
    provider, _ = _provider(datadog, fallback_to_v1=False)

    with pytest.raises(ProviderError, match="malformed"):
        provider.fetch(_queries("a"), START, END)


@pytest.mark.parametrize(
    "point", [["1e12", 4.0], [1.0e12, "4"], [1.0e12, {"v": 4}], {"t": 1.0e12}, [1.0e12]]
)
def test_v1_malformed_point_is_a_provider_error(datadog: FakeDatadog, point: Any) -> None:
    """GIVEN a v1 pointlist entry of the wrong type WHEN fetched THEN a ProviderError."""
    series = dict(V1_SERIES["series"][0]) | {"pointlist": [point]}  # type: ignore[index]
    datadog.reply(V1, (200, V1_SERIES | {"series": [series]}, {}))
    provider, _ = _provider(datadog, api="v1")

    with pytest.raises(ProviderError, match="malformed"):
        provider.fetch(_queries("q"), START, END)


def test_a_body_that_is_not_json_falls_back_to_v1(datadog: FakeDatadog) -> None:
    """GIVEN v2 answering 200 with a body that is not JSON (a proxy's page) WHEN fetched
    THEN v1 answers."""
    datadog.reply(SCALAR, (200, b"<html>maintenance</html>", {}))
    datadog.reply(V1, (200, V1_SERIES, {}))
    provider, _ = _provider(datadog)

    assert provider.fetch(_queries("q"), START, END) == {"m0": 10.0}


def test_v2_errors_beside_some_values_are_incomplete(datadog: FakeDatadog) -> None:
    """GIVEN a body with one value and Datadog's ``errors`` WHEN fetched THEN IncompleteData:
    an answer Datadog says went wrong is not judged."""
    body = _columns(_column("q0", 5.0)) | {"errors": "Query q1 timed out"}
    datadog.reply(SCALAR, (200, body, {}))
    provider, _ = _provider(datadog)

    with pytest.raises(IncompleteData, match="timed out"):
        provider.fetch(_queries("a", "b"), START, END)


def test_v2_errors_without_values_are_permanent(datadog: FakeDatadog) -> None:
    """GIVEN no columns and Datadog's ``errors`` WHEN fetched THEN a permanent error."""
    datadog.reply(SCALAR, (200, _columns() | {"errors": "Error parsing query"}, {}))
    provider, _ = _provider(datadog)

    with pytest.raises(ProviderError, match="parsing") as caught:
        provider.fetch(_queries("a"), START, END)
    assert caught.value.transient is False


def test_429_honours_retry_after_on_v2(datadog: FakeDatadog) -> None:
    """GIVEN a v2 429 with Retry-After 3 and X-RateLimit-Reset 1 WHEN fetched THEN it waits
    the longer, 3 s, once, and retries."""
    limited = {"Retry-After": "3", "X-RateLimit-Reset": "1"}
    datadog.reply(
        SCALAR, (429, {"errors": ["Rate limit exceeded"]}, limited), (200, _scalar(5.0), {})
    )
    provider, slept = _provider(datadog)

    assert provider.fetch(_queries("q"), START, END) == {"m0": 5.0}
    assert slept == [3.0]


def test_429_beyond_the_longest_wait_is_not_slept(datadog: FakeDatadog) -> None:
    """GIVEN a 429 asking for 30 s WHEN fetched THEN no sleep: a transient error at once."""
    datadog.reply(SCALAR, (429, {"errors": ["Rate limit exceeded"]}, {"Retry-After": "30"}))
    provider, slept = _provider(datadog, fallback_to_v1=False)

    with pytest.raises(ProviderError, match="rate limited") as caught:
        provider.fetch(_queries("q"), START, END)
    assert caught.value.transient and slept == []


@pytest.mark.parametrize("status", [429, 503])
def test_the_client_pool_makes_no_retries_of_its_own(datadog: FakeDatadog, status: int) -> None:
    """GIVEN a v1 GET answered 429 or 503 with Retry-After 1 WHEN fetched with no retries
    allowed THEN exactly one request reaches the server (urllib3's Retry would make four,
    sleeping on Retry-After between them)."""
    datadog.reply(V1, (status, {"errors": ["Try later"]}, {"Retry-After": "1"}))
    provider, _ = _provider(datadog, api="v1", max_retries=0)
    began = time.monotonic()

    with pytest.raises(ProviderError):
        provider.fetch(_queries("q"), START, END)

    assert len([s for s in datadog.seen if s[0].startswith(V1)]) == 1
    assert time.monotonic() - began < 1.0


def test_check_runs_the_queries_after_the_keys(datadog: FakeDatadog) -> None:
    """GIVEN valid keys and a query Datadog rejects WHEN checked THEN one problem naming the
    query; with a query that answers, none."""
    datadog.reply("/api/v1/validate", (200, {"valid": True}, {}))
    datadog.reply(SCALAR, (400, {"errors": ["Error parsing query: unknown metric"]}, {}))
    provider, _ = _provider(datadog)

    problems = provider.check(_queries("sum:nope{*}"), END)

    assert len(problems) == 1 and "query rejected" in problems[0]
    datadog.reply(SCALAR, (200, _scalar(3.0), {}))
    assert provider.check(_queries("sum:web.requests{*}"), END) == []
