"""Tests for edge.origin_request: origin switching by variant, after any URI rewrite."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from edge import origin_request, rules, viewer_request

HOST = "demo.example.com"
RouteItem = Callable[..., dict[str, Any]]
CfEvent = Callable[..., dict[str, Any]]
CANARY_ORIGIN = {"domain": "canary.internal", "port": 8081, "protocol": "http", "path": "/v2"}


def _use_items(monkeypatch: pytest.MonkeyPatch, items: list[Any]) -> None:
    cache = rules.RuleCache(lambda host: items if host == HOST else [], ttl_seconds=5)
    monkeypatch.setattr(rules, "default_cache", lambda: cache)


def _request(event: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = event["Records"][0]["cf"]["request"]
    return request


def _marked(cf_event: CfEvent, variant: str, uri: str = "/index.html") -> dict[str, Any]:
    event: dict[str, Any] = cf_event(uri, extra_headers={"X-Edgeshift-Variant": variant})
    return event


def test_canary_request_goes_to_the_canary_origin(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a canary with set_origin WHEN a canary-marked miss arrives THEN the origin and
    Host header point at the canary origin."""
    _use_items(monkeypatch, [route_item(canary_actions={"set_origin": CANARY_ORIGIN})])

    result = origin_request.handler(_marked(cf_event, "canary"), None)

    assert result["origin"] == {
        "custom": {
            "domainName": "canary.internal",
            "port": 8081,
            "protocol": "http",
            "path": "/v2",
            "sslProtocols": ["TLSv1.2"],
            "readTimeout": 30,
            "keepaliveTimeout": 5,
            "customHeaders": {},
        }
    }
    assert result["headers"]["host"] == [{"key": "Host", "value": "canary.internal"}]


def test_variant_without_set_origin_keeps_the_origin(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a stable variant with no actions WHEN a stable-marked miss arrives THEN unchanged."""
    _use_items(monkeypatch, [route_item(canary_actions={"set_origin": CANARY_ORIGIN})])
    event = _marked(cf_event, "stable")
    before = copy.deepcopy(_request(event))

    assert origin_request.handler(event, None) == before


@pytest.mark.parametrize(
    "headers", [{}, {"X-Edgeshift-Variant": "retired"}, {"X-Edgeshift-Variant": ""}]
)
def test_unmarked_or_unknown_variant_keeps_the_origin(
    headers: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    route_item: RouteItem,
    cf_event: CfEvent,
) -> None:
    """GIVEN no variant header or a name the rule lacks WHEN a miss arrives THEN unchanged."""
    _use_items(monkeypatch, [route_item(canary_actions={"set_origin": CANARY_ORIGIN})])
    event = cf_event(extra_headers=headers)
    before = copy.deepcopy(_request(event))

    assert origin_request.handler(event, None) == before


def test_rule_is_found_after_a_prefix_uri_rewrite(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a prefix rule whose canary rewrites URIs and switches origin WHEN viewer-request
    then origin-request run THEN the rewritten URI still finds the rule and its origin."""
    actions = {"set_uri": "/releases/{version}{uri}", "set_origin": CANARY_ORIGIN}
    _use_items(
        monkeypatch,
        [
            route_item(path_rule="default", canary_weight=0),
            route_item(path_rule="prefix:/app/", canary_weight=10_000, canary_actions=actions),
        ],
    )
    event = cf_event("/app/main.js")

    request = viewer_request.handler(event, None)
    assert request["uri"] == "/releases/v2/app/main.js"
    result = origin_request.handler(event, None)

    assert result["origin"]["custom"]["domainName"] == "canary.internal"


def test_rule_is_found_after_a_fixed_uri_rewrite(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN an exact rule rewriting to a fixed path WHEN both triggers run THEN the origin
    switches, though the original URI cannot be recovered from the new one."""
    actions = {"set_uri": "/index-{version}.html", "set_origin": CANARY_ORIGIN}
    _use_items(
        monkeypatch,
        [
            route_item(path_rule="exact:/index.html", canary_weight=10_000, canary_actions=actions),
        ],
    )
    event = cf_event("/index.html")

    viewer_request.handler(event, None)
    result = origin_request.handler(event, None)

    assert result["uri"] == "/index-v2.html"
    assert result["origin"]["custom"]["domainName"] == "canary.internal"


@pytest.mark.parametrize(
    ("template", "uri", "original"),
    [
        ("/releases/{version}{uri}", "/releases/v2/app/a.js", "/app/a.js"),
        ("{uri}?v={version}", "/a.js?v=v2", "/a.js"),
        ("/releases/{version}{uri}", "/other/app/a.js", None),
        ("/{uri}/{uri}", "/x/x", None),
        ("/fixed.html", "/fixed.html", None),
        ("/r/{version}{uri}/end", "/r/v2/end", None),
    ],
)
def test_original_uri_inverts_render_uri(template: str, uri: str, original: str | None) -> None:
    """GIVEN a template and a rewritten URI WHEN inverting THEN the pre-rewrite URI or None."""
    variant = {"name": "canary", "version": "v2"}

    assert rules.original_uri(template, uri=uri, variant=variant, host=HOST) == original


def _host_missing(event: dict[str, Any]) -> None:
    del _request(event)["headers"]["host"]


def _marker_not_list(event: dict[str, Any]) -> None:
    _request(event)["headers"]["x-edgeshift-variant"] = "canary"


def _headers_none(event: dict[str, Any]) -> None:
    _request(event)["headers"] = None


@pytest.mark.parametrize("damage", [_host_missing, _marker_not_list, _headers_none])
def test_malformed_requests_pass_through(
    damage: Callable[[dict[str, Any]], None],
    monkeypatch: pytest.MonkeyPatch,
    route_item: RouteItem,
    cf_event: CfEvent,
) -> None:
    """GIVEN a request with a broken field WHEN a miss arrives THEN it is returned as is."""
    _use_items(monkeypatch, [route_item(canary_actions={"set_origin": CANARY_ORIGIN})])
    event = _marked(cf_event, "canary")
    damage(event)
    before = copy.deepcopy(_request(event))

    assert origin_request.handler(event, None) == before


@pytest.mark.parametrize(
    "origin",
    [
        {"domain": "o", "port": "80", "protocol": "http", "path": ""},
        {"domain": "o", "port": 80, "protocol": "gopher", "path": ""},
        {"port": 80, "protocol": "http", "path": ""},
        "canary.internal",
    ],
)
def test_malformed_origins_pass_through(
    origin: Any, monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a set_origin action with a bad field WHEN a canary miss arrives THEN unchanged."""
    _use_items(monkeypatch, [route_item(canary_actions={"set_origin": origin})])
    event = _marked(cf_event, "canary")
    before = copy.deepcopy(_request(event))

    assert origin_request.handler(event, None) == before


@pytest.mark.parametrize("event", [{}, None, {"Records": [{"cf": {"request": None}}]}])
def test_events_without_a_request_do_not_raise(event: Any) -> None:
    """GIVEN an event that is not a CloudFront request WHEN handled THEN nothing is raised."""
    assert origin_request.handler(event, None) is None
