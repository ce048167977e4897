"""The CloudFront emulator runs the three edge triggers in CloudFront's order, end to end:
a moto server holds the route, two demo origins serve the releases, and plain HTTP requests
(what ``curl`` sends) show the URI rewrite, the origin switch, the Cache-Control override
and the sticky cookie."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge import config, dynamo, rules
from orchestrator.local.cloudfront import CloudFrontEmulator
from orchestrator.local.origins import DemoOrigin
from orchestrator.models import RouteRule
from orchestrator.store.codec import route_item
from orchestrator.store.tables import create_routes_table

pytestmark = pytest.mark.integration

HOST = "emulator.edgeshift.test"
LOOPBACK = "127.0.0.1"


@pytest.fixture(scope="module")
def moto_table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Path]]:
    """A moto server on 127.0.0.1 with a routes table, and an edge config pointing at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        table = f"routes-{uuid.uuid4().hex[:8]}"
        create_routes_table(client, table)
        path = tmp_path_factory.mktemp("edge") / "edge-config.json"
        path.write_text(json.dumps({"table": table, "endpoint_url": endpoint, "ttl_seconds": 0}))
        yield client, path
    finally:
        server.stop()


@pytest.fixture
def cdn(
    moto_table: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[CloudFrontEmulator, Any, DemoOrigin, DemoOrigin]]:
    """Emulator and two error-free origins (v1 is the distribution's default), all stopped
    at the end."""
    client, path = moto_table
    monkeypatch.setenv(config.ENV_PATH, str(path))
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    config.reset()
    rules.reset_default_cache()
    stable = DemoOrigin("v1", 0.0).start()
    canary = DemoOrigin("v2", 0.0).start()
    edge = CloudFrontEmulator(default_origin_port=stable.port).start()
    try:
        yield edge, client, stable, canary
    finally:
        for server in (edge, stable, canary):
            server.stop()
        config.reset()
        rules.reset_default_cache()
        dynamo.close_connections()


def _put(client: Any, canary_port: int, canary_weight: int, **options: Any) -> None:
    rule = RouteRule.model_validate(
        {
            "host": HOST,
            "salt": "r-emulator",
            "rollout_id": "r-emulator",
            "variants": [
                {
                    "name": "canary",
                    "version": "v2",
                    "weight": canary_weight,
                    "actions": {
                        "set_uri": "/releases/{version}{uri}",
                        "set_origin": {"domain": LOOPBACK, "port": canary_port, "protocol": "http"},
                    },
                },
                {"name": "stable", "version": "v1", "weight": 10_000 - canary_weight},
            ],
            **options,
        }
    )
    client.put_item(TableName=_table(client), Item=route_item(rule))


def _table(client: Any) -> str:
    """This module's routes table (moto's backends are shared by every server in the process)."""
    return next(name for name in client.list_tables()["TableNames"] if name.startswith("routes-"))


def _get(
    edge: CloudFrontEmulator, path: str, headers: dict[str, str] | None = None
) -> tuple[int, http.client.HTTPMessage, str]:
    """What ``curl -H 'Host: ...' http://127.0.0.1:PORT/path`` does."""
    connection = http.client.HTTPConnection(LOOPBACK, edge.port, timeout=10)
    try:
        connection.request("GET", path, headers={"Host": HOST, **(headers or {})})
        response = connection.getresponse()
        return response.status, response.msg, response.read().decode()
    finally:
        connection.close()


def test_canary_request_is_rewritten_switched_and_gets_the_overrides(cdn: Any) -> None:
    """GIVEN a 100% canary with set_uri, set_origin, cache_control and cookie stickiness
    WHEN a new viewer asks for /app.js THEN the canary origin served /releases/v2/app.js,
    Cache-Control is overridden and the sticky cookie is set."""
    edge, client, _, canary = cdn
    _put(
        client,
        canary.port,
        10_000,
        cache_control="no-cache, max-age=0",
        stickiness={"key": "cookie", "name": "es_id", "max_age": 3600},
    )

    status, headers, body = _get(edge, "/app.js")

    assert status == 200
    assert body == "release v2: /releases/v2/app.js\n"
    assert headers["x-release"] == "v2"
    assert headers["x-edgeshift-variant"] == "canary"
    assert headers["cache-control"] == "no-cache, max-age=0"
    cookie = headers["set-cookie"]
    assert cookie.startswith("es_id=")
    assert "; Max-Age=3600; Secure; HttpOnly; SameSite=Lax" in cookie


def test_returning_viewer_keeps_its_variant_and_gets_no_new_cookie(cdn: Any) -> None:
    """GIVEN cookie stickiness at 50% WHEN a viewer comes back with its cookie from other
    IPs THEN the same release serves every time and no new cookie is set."""
    edge, client, _, canary = cdn
    _put(client, canary.port, 5_000, stickiness={"key": "cookie", "name": "es_id"})
    _, headers, first = _get(edge, "/app.js")
    cookie = headers["set-cookie"].split(";")[0]

    answers = [
        _get(edge, "/app.js", {"Cookie": cookie, "X-Forwarded-For": f"198.18.0.{n}"})
        for n in range(10)
    ]

    assert {body for _, _, body in answers} == {first}
    assert all("set-cookie" not in h for _, h, _ in answers)


def test_stable_viewers_reach_the_default_origin_untouched(cdn: Any) -> None:
    """GIVEN a 0% canary and no override WHEN a viewer asks THEN the distribution's default
    origin serves the original URI."""
    edge, client, _, canary = cdn
    _put(client, canary.port, 0)

    status, headers, body = _get(edge, "/app.js")

    assert (status, body) == (200, "release v1: /app.js\n")
    assert "cache-control" not in headers
    assert "set-cookie" not in headers
    assert edge.stats["function_errors"] == 0


def test_the_origins_server_and_date_are_passed_on_once(cdn: Any) -> None:
    """GIVEN an origin that sends Server and Date WHEN a viewer asks THEN each comes once,
    the origin's, as CloudFront passes them on (not the emulator's beside them)."""
    edge, client, _, canary = cdn
    _put(client, canary.port, 0)

    _, headers, _ = _get(edge, "/app.js")

    assert len(headers.get_all("Server") or []) == 1
    assert len(headers.get_all("Date") or []) == 1
    assert headers["Server"].startswith("BaseHTTP")  # the demo origin's http.server


def test_redirect_is_answered_by_the_edge_without_the_origin(cdn: Any) -> None:
    """GIVEN a canary redirect WHEN a canary viewer asks THEN the emulator answers the 302
    itself: no origin fetch and no viewer-response."""
    edge, client, _, _ = cdn
    rule = RouteRule.model_validate(
        {
            "host": HOST,
            "variants": [
                {
                    "name": "canary",
                    "version": "v2",
                    "weight": 10_000,
                    "actions": {"redirect": {"status": 302, "location": "/v2{uri}"}},
                },
                {"name": "stable", "version": "v1", "weight": 0},
            ],
        }
    )
    client.put_item(TableName=_table(client), Item=route_item(rule))
    fetched = edge.stats["origin_fetches"]

    status, headers, _ = _get(edge, "/app.js?x=1")

    assert (status, headers["location"]) == (302, "/v2/app.js?x=1")
    assert edge.stats["origin_fetches"] == fetched


def _served_canary(edge: CloudFrontEmulator, viewers: int) -> float:
    served = []
    for n in range(viewers):
        _, headers, _ = edge.serve(
            "GET", "/app.js", [("Host", HOST)], f"198.18.{n // 250}.{n % 250}"
        )
        served.append(dict(headers).get("x-edgeshift-variant") == "canary")
    return sum(served) / viewers


def test_the_reassign_fault_serves_the_canary_about_twice_its_weight(cdn: Any) -> None:
    """GIVEN a 10% canary WHEN the emulator's reassign_variant fault is on for stable THEN
    about 19% of viewers get the canary (10% + 90% x 10%), each one stickily; off (the
    default) the edge serves its weight."""
    edge, client, _, canary = cdn
    _put(client, canary.port, 1_000)
    assert 0.06 < _served_canary(edge, 1_000) < 0.14

    edge.reassign_variant = "stable"
    share = _served_canary(edge, 1_000)
    again = _served_canary(edge, 1_000)

    assert 0.15 < share < 0.24
    assert again == share  # the faulty assignment is as sticky as the real one
    assert edge.stats["reassigned"] > 0 and edge.stats["function_errors"] == 0
