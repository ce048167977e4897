"""Tests for edge.dynamo: typed-JSON decoding, region choice, and Query against moto."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from edge import config, dynamo

HOST = "demo.example.com"
RouteItem = Callable[..., dict[str, Any]]


@pytest.mark.parametrize(
    ("typed", "plain"),
    [
        ({"S": "x"}, "x"),
        ({"N": "7"}, 7),
        ({"N": "-1.5"}, -1.5),
        ({"N": "1e3"}, 1000.0),
        ({"BOOL": False}, False),
        ({"NULL": True}, None),
        ({"M": {"a": {"N": "1"}, "b": {"L": [{"S": "y"}]}}}, {"a": 1, "b": ["y"]}),
        ({"L": [{"N": "1"}, {"NULL": True}]}, [1, None]),
        ({"SS": ["a", "b"]}, ["a", "b"]),
        ({"NS": ["1", "2.5"]}, [1, 2.5]),
        ({"B": "aGk="}, b"hi"),
        ({"BS": ["aGk="]}, [b"hi"]),
    ],
)
def test_deserialize_turns_typed_values_into_plain_python(typed: Any, plain: Any) -> None:
    """GIVEN a DynamoDB typed value WHEN deserializing THEN the plain Python value results."""
    assert dynamo.deserialize(typed) == plain


@pytest.mark.parametrize("typed", [{}, {"S": "a", "N": "1"}, {"XYZ": 1}])
def test_deserialize_rejects_unknown_shapes(typed: dict[str, Any]) -> None:
    """GIVEN a value that is not one typed attribute WHEN deserializing THEN DynamoError."""
    with pytest.raises(dynamo.DynamoError):
        dynamo.deserialize(typed)


@pytest.mark.parametrize(
    ("executing", "expected"),
    [("eu-west-1", "eu-west-1"), ("ap-south-1", "us-east-1"), (None, "us-east-1")],
)
def test_pick_region_prefers_the_local_replica(executing: str | None, expected: str) -> None:
    """GIVEN replicas in us-east-1 and eu-west-1 WHEN picking THEN the local one or the first."""
    assert dynamo.pick_region(("us-east-1", "eu-west-1"), executing) == expected


def test_missing_credentials_raise(monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN no AWS credentials in the environment WHEN reading THEN DynamoError is raised."""
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    with pytest.raises(dynamo.DynamoError, match="credentials"):
        dynamo.credentials_from_env()


def test_query_host_reads_items_written_by_boto3(
    routes_table: Callable[..., Any], route_item: RouteItem
) -> None:
    """GIVEN route items put with boto3 WHEN the edge queries the host THEN it gets them back."""
    item = route_item(
        path_rule="prefix:/app/",
        canary_actions={
            "set_uri": "/releases/{version}{uri}",
            "set_origin": {"domain": "127.0.0.1", "port": 8081, "protocol": "http", "path": ""},
        },
    )
    routes_table(Item=item)
    routes_table(Item=route_item(host="other.example.com"))

    items = dynamo.query_host(HOST)

    assert items == [item]
    assert isinstance(items[0]["variants"][0]["weight"], int)


@pytest.mark.alone  # four pages from moto within the edge's 250 ms lookup deadline
def test_query_host_follows_pagination(
    routes_table: Callable[..., Any], route_item: RouteItem
) -> None:
    """GIVEN more items than one page holds WHEN querying THEN every page is read."""
    rules = [f"exact:/page-{i}.html" for i in range(7)]
    for path_rule in rules:
        routes_table(Item=route_item(path_rule=path_rule))

    items = dynamo.query_host(HOST, limit=2)

    assert sorted(i["path_rule"] for i in items) == sorted(rules)


def test_query_host_survives_many_calls_on_one_connection(
    routes_table: Callable[..., Any], route_item: RouteItem
) -> None:
    """GIVEN a pooled connection WHEN querying repeatedly THEN each call answers correctly."""
    routes_table(Item=route_item(canary_weight=2500))

    weights = [dynamo.query_host(HOST)[0]["variants"][0]["weight"] for _ in range(3)]

    assert weights == [2500, 2500, 2500]


def test_query_host_without_items_returns_empty(routes_table: Callable[..., Any]) -> None:
    """GIVEN a table with no item for the host WHEN querying THEN the answer is empty."""
    assert dynamo.query_host("nobody.example.com") == []


def test_missing_table_raises_dynamo_error(routes_table: Callable[..., Any]) -> None:
    """GIVEN a config naming a table that does not exist WHEN querying THEN DynamoError."""
    cfg = config.load()
    missing = config.EdgeConfig(table="absent", endpoint_url=cfg.endpoint_url)

    with pytest.raises(dynamo.DynamoError, match="ResourceNotFound"):
        dynamo.query_host(HOST, cfg=missing)


def test_unreachable_endpoint_raises_dynamo_error() -> None:
    """GIVEN an endpoint nobody listens on WHEN querying THEN DynamoError, not OSError."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = config.EdgeConfig(endpoint_url=f"http://127.0.0.1:{port}", deadline_seconds=0.2)

    with pytest.raises(dynamo.DynamoError):
        dynamo.query_host(HOST, cfg=cfg)


def test_numbers_round_trip_as_boto3_wrote_them(
    routes_table: Callable[..., Any], route_item: RouteItem
) -> None:
    """GIVEN Decimal numbers written by boto3 WHEN read at the edge THEN ints and floats return."""
    item = route_item()
    item["revision"] = Decimal("7")
    item["ratio"] = Decimal("0.25")
    routes_table(Item=item)

    (read,) = dynamo.query_host(HOST)

    assert (read["revision"], read["ratio"]) == (7, 0.25)


def test_runaway_pagination_is_bounded(
    routes_table: Callable[..., Any], route_item: RouteItem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN more pages than MAX_PAGES WHEN querying THEN DynamoError instead of partial rules."""
    for i in range(3):
        routes_table(Item=route_item(path_rule=f"exact:/{i}"))
    monkeypatch.setattr(dynamo, "MAX_PAGES", 1)

    with pytest.raises(dynamo.DynamoError, match="pages"):
        dynamo.query_host(HOST, limit=1)


def test_dead_pooled_connection_is_replaced() -> None:
    """GIVEN a keep-alive peer that silently drops idle connections WHEN querying again THEN
    the client reconnects once and answers."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    answer = json.dumps({"Items": [{"host": {"S": HOST}}], "Count": 1}).encode()
    connections: list[int] = []

    class OneShot(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            connections.append(1)
            super().setup()

        def do_POST(self) -> None:  # http.server dispatches by this name
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)
            # Close without "Connection: close", as an idle-timeout on the server side does.
            self.close_connection = True

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), OneShot)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    cfg = config.EdgeConfig(endpoint_url=f"http://127.0.0.1:{server.server_address[1]}")
    try:
        first = dynamo.query_host(HOST, cfg=cfg)
        second = dynamo.query_host(HOST, cfg=cfg)
    finally:
        server.shutdown()
        server.server_close()

    assert first == second == [{"host": HOST}]
    assert len(connections) == 2
