"""Shared fixtures for the edge tests: a clean edge state per test and a real moto server."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge import config, dynamo, rules
from orchestrator.store.tables import create_routes_table

HOST = "demo.example.com"


@pytest.fixture(autouse=True)
def clean_edge_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test starts with no cached config, rules or connections, and fake credentials."""
    monkeypatch.delenv(config.ENV_PATH, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    config.reset()
    rules.reset_default_cache()
    yield
    config.reset()
    rules.reset_default_cache()
    dynamo.close_connections()


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server on an ephemeral 127.0.0.1 port, shared by the whole session."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def routes_table(
    moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Any]:
    """Create a fresh routes table in moto and point the edge config at it.

    Returns ``put(item)``, which writes a plain-Python item with boto3 as the orchestrator does.
    """
    import boto3

    name = f"routes-{uuid.uuid4().hex[:8]}"
    resource = boto3.resource(
        "dynamodb",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    create_routes_table(resource.meta.client, name)
    table = resource.Table(name)
    path = tmp_path / "edge-config.json"
    path.write_text(
        json.dumps({"table": name, "regions": ["us-east-1"], "endpoint_url": moto_endpoint})
    )
    monkeypatch.setenv(config.ENV_PATH, str(path))
    config.reset()
    return table.put_item


@pytest.fixture
def route_item() -> Callable[..., dict[str, Any]]:
    """Factory for route items (a fixture, since test modules here are not a package)."""
    return make_route_item


@pytest.fixture
def cf_event() -> Callable[..., dict[str, Any]]:
    """Factory for CloudFront request events."""
    return make_cf_event


def make_route_item(
    *,
    host: str = HOST,
    path_rule: str = "default",
    canary_weight: int = 1000,
    salt: str = "r-test",
    canary_actions: dict[str, Any] | None = None,
    stable_actions: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A route item in the orchestrator's format: canary first, then stable, 10000 in total."""
    return {
        "host": host,
        "path_rule": path_rule,
        "revision": 1,
        "salt": salt,
        "rollout_id": "r-test",
        "variants": [
            {
                "name": "canary",
                "version": "v2",
                "weight": canary_weight,
                "actions": canary_actions if canary_actions is not None else {},
            },
            {
                "name": "stable",
                "version": "v1",
                "weight": 10_000 - canary_weight,
                "actions": stable_actions if stable_actions is not None else {},
            },
        ],
    }


def make_cf_event(
    uri: str = "/index.html",
    *,
    host: str = HOST,
    client_ip: str = "203.0.113.7",
    user_agent: str = "Mozilla/5.0",
    extra_headers: dict[str, str] | None = None,
    event_type: str | None = None,
) -> dict[str, Any]:
    """A CloudFront Lambda@Edge request event shaped like the ones AWS documents.

    ``eventType`` is left out unless given, so one event can go through several handlers
    (each accepts an event without it); ``test_edge_event_shapes`` uses AWS's own examples.
    """
    headers = {
        "host": [{"key": "Host", "value": host}],
        "user-agent": [{"key": "User-Agent", "value": user_agent}],
    }
    for name, value in (extra_headers or {}).items():
        headers[name.lower()] = [{"key": name, "value": value}]
    cf_config = {"distributionId": "EDFDVBD6EXAMPLE"}
    if event_type is not None:
        cf_config["eventType"] = event_type
    return {
        "Records": [
            {
                "cf": {
                    "config": cf_config,
                    "request": {
                        "clientIp": client_ip,
                        "headers": headers,
                        "method": "GET",
                        "querystring": "",
                        "uri": uri,
                        "origin": {
                            "s3": {
                                "domainName": "bucket.s3.amazonaws.com",
                                "path": "",
                                "authMethod": "none",
                                "customHeaders": {},
                                "region": "us-east-1",
                            }
                        },
                    },
                }
            }
        ]
    }
