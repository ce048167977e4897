"""The handlers against AWS's own example events, for all four trigger types."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import aws_events
import pytest

from edge import origin_request, rules, viewer_request, viewer_response

HOST = aws_events.DISTRIBUTION_HOST
CANARY_ORIGIN = {"domain": "canary.example.org", "port": 443, "protocol": "https", "path": "/v2"}
S3_CANARY = {
    "kind": "s3",
    "domain": "canary-bucket.s3.amazonaws.com",
    "path": "/v2",
    "auth_method": "origin-access-identity",
    "region": "us-east-1",
}
Handler = Callable[[dict[str, Any], object], Any]
HANDLERS: dict[str, Handler] = {
    "viewer-request": viewer_request.handler,
    "origin-request": origin_request.handler,
    "viewer-response": viewer_response.handler,
}


def _route(canary: dict[str, Any], **rule: Any) -> dict[str, Any]:
    return {
        "host": HOST,
        "path_rule": "default",
        "salt": "r-docs",
        "rollout_id": "r-docs",
        "revision": 3,
        "variants": [
            {"name": "canary", "version": "v2", "weight": 10_000, "actions": canary},
            {"name": "stable", "version": "v1", "weight": 0, "actions": {}},
        ],
        **rule,
    }


def _use(monkeypatch: pytest.MonkeyPatch, *items: dict[str, Any]) -> None:
    cache = rules.RuleCache(lambda host: list(items) if host == HOST else [], ttl_seconds=5)
    monkeypatch.setattr(rules, "default_cache", lambda: cache)


def _cf(event: dict[str, Any]) -> dict[str, Any]:
    cf: dict[str, Any] = event["Records"][0]["cf"]
    return cf


def _mark(event: dict[str, Any], variant: str = "canary", host: str = HOST) -> None:
    """What viewer-request leaves for the later triggers: variant, host, rule (3:default)."""
    headers = _cf(event)["request"]["headers"]
    headers["x-edgeshift-variant"] = [{"key": "X-Edgeshift-Variant", "value": variant}]
    headers["x-edgeshift-host"] = [{"key": "X-Edgeshift-Host", "value": host}]
    headers["x-edgeshift-rule"] = [{"key": "X-Edgeshift-Rule", "value": "3:default"}]


def test_documented_viewer_request_is_rewritten(monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN AWS's viewer-request example and a 100% canary rule WHEN handled THEN the URI,
    query string and headers are rewritten and the variant and host are recorded."""
    _use(
        monkeypatch,
        _route(
            {
                "set_uri": "/releases/{version}{uri}index.html",
                "set_querystring": "v={version}",
                "set_headers": {"X-Release": "{variant}-{version}"},
            }
        ),
    )

    request = viewer_request.handler(aws_events.viewer_request(), None)

    assert request["uri"] == "/releases/v2/index.html"
    assert request["querystring"] == "v=v2"
    assert request["headers"]["x-release"] == [{"key": "X-Release", "value": "canary-v2"}]
    assert request["headers"]["x-edgeshift-variant"][0]["value"] == "canary"
    assert request["headers"]["x-edgeshift-host"][0]["value"] == HOST
    assert request["headers"]["user-agent"] == [{"key": "User-Agent", "value": "curl/7.66.0"}]


def test_documented_origin_request_custom_origin_is_switched(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN AWS's origin-request example (custom origin, Host = origin) marked canary WHEN
    handled THEN the canary origin replaces it and Host names the new origin."""
    _use(monkeypatch, _route({"set_origin": CANARY_ORIGIN}))
    event = aws_events.origin_request_custom()
    _mark(event)

    request = origin_request.handler(event, None)

    assert request["origin"] == {
        "custom": {
            "domainName": "canary.example.org",
            "port": 443,
            "protocol": "https",
            "path": "/v2",
            "sslProtocols": ["TLSv1.2"],
            "readTimeout": 30,
            "keepaliveTimeout": 5,
            "customHeaders": {},
        }
    }
    assert request["headers"]["host"] == [{"key": "Host", "value": "canary.example.org"}]


def test_documented_s3_origin_request_can_switch_to_another_bucket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN the documented S3 origin object WHEN the canary's origin is another bucket THEN
    the request carries an S3 origin with the same auth method and region."""
    _use(monkeypatch, _route({"set_origin": S3_CANARY}))
    event = aws_events.origin_request_s3()
    _mark(event)

    request = origin_request.handler(event, None)

    assert request["origin"] == {
        "s3": {
            "domainName": "canary-bucket.s3.amazonaws.com",
            "path": "/v2",
            "authMethod": "origin-access-identity",
            "region": "us-east-1",
            "customHeaders": {},
        }
    }
    assert request["headers"]["host"][0]["value"] == "canary-bucket.s3.amazonaws.com"


def test_documented_s3_origin_request_can_switch_to_a_custom_origin(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN the documented S3 origin WHEN the canary's origin is custom THEN only the custom
    object remains (CloudFront takes exactly one)."""
    _use(monkeypatch, _route({"set_origin": CANARY_ORIGIN}))
    event = aws_events.origin_request_s3()
    _mark(event)

    request = origin_request.handler(event, None)

    assert list(request["origin"]) == ["custom"]


def test_documented_viewer_response_gets_cache_control_and_debug_header(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """GIVEN AWS's viewer-response example, a rule with cache_control and the debug header
    on WHEN handled THEN Cache-Control and the debug header are set, nothing else changes."""
    import json

    from edge import config

    path = tmp_path / "edge.json"
    path.write_text(json.dumps({"debug_header": "X-Edgeshift-Debug"}))
    monkeypatch.setenv(config.ENV_PATH, str(path))
    _use(monkeypatch, _route({}, cache_control="no-cache, max-age=0"))
    event = aws_events.viewer_response()
    _mark(event)
    before = copy.deepcopy(_cf(event)["response"])

    response = viewer_response.handler(event, None)

    assert response["headers"].pop("cache-control") == [
        {"key": "Cache-Control", "value": "no-cache, max-age=0"}
    ]
    debug = response["headers"].pop("x-edgeshift-debug")
    assert debug[0]["value"].startswith("variant=canary; version=v2; rule=default")
    assert response == before


def test_documented_origin_response_is_left_alone_by_every_handler(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN AWS's origin-response example (no edgeshift function runs there) WHEN a handler
    is attached there by mistake THEN it returns its part unchanged: no cookie gets cached."""
    _use(monkeypatch, _route({"set_uri": "/x{uri}"}, cache_control="no-store"))
    for name, handler in HANDLERS.items():
        event = aws_events.origin_response()
        _mark(event)
        part = "response" if name == "viewer-response" else "request"
        before = copy.deepcopy(_cf(event)[part])

        assert handler(event, None) == before, name


@pytest.mark.parametrize("kind", list(aws_events.ALL))
@pytest.mark.parametrize("trigger", list(HANDLERS))
def test_every_documented_event_through_every_handler_never_raises(
    kind: str, trigger: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN any documented event WHEN any handler gets it THEN it answers with the event's
    own request or response (a trigger mismatch leaves it unchanged)."""
    _use(monkeypatch, _route({"set_uri": "/x{uri}", "set_origin": CANARY_ORIGIN}))
    event = aws_events.ALL[kind]()
    part = "response" if trigger == "viewer-response" else "request"
    expected = _cf(event).get(part)

    result = HANDLERS[trigger](event, None)

    assert result is expected
