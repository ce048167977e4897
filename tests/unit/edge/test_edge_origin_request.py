"""Tests for edge.origin_request: origin switching by the variant and rule viewer-request chose."""

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


def _marked(
    cf_event: CfEvent, variant: str, uri: str = "/index.html", rule: str = "1:default"
) -> dict[str, Any]:
    marks = {"X-Edgeshift-Variant": variant, "X-Edgeshift-Rule": rule}
    event: dict[str, Any] = cf_event(uri, extra_headers=marks)
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


def test_origin_follows_the_rule_viewer_request_chose_not_the_rewritten_uri(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN prefix:/v2/ (canary to v2-canary) and prefix:/app/ whose canary rewrites to
    "/v2{uri}" (to app-canary) WHEN /v2/app/x.js arrives THEN it goes to v2-canary: the
    rewrite that could also have produced this URI is not taken for the rule that matched."""
    v2 = {**CANARY_ORIGIN, "domain": "v2-canary.example.org"}
    app = {
        "set_uri": "/v2{uri}",
        "set_origin": {**CANARY_ORIGIN, "domain": "app-canary.example.org"},
    }
    _use_items(
        monkeypatch,
        [
            route_item(
                path_rule="prefix:/v2/", canary_weight=10_000, canary_actions={"set_origin": v2}
            ),
            route_item(path_rule="prefix:/app/", canary_weight=10_000, canary_actions=app),
        ],
    )
    wrong = 0
    for n in range(509):
        event = cf_event("/v2/app/x.js", client_ip=f"198.51.100.{n % 250}", user_agent=f"ua{n}")
        viewer_request.handler(event, None)
        result = origin_request.handler(event, None)
        wrong += result["origin"]["custom"]["domainName"] != "v2-canary.example.org"

    assert wrong == 0


@pytest.mark.parametrize("marker", ["", "default", "x:default", "1:prefix:/nope/", "1"])
def test_a_missing_or_unknown_rule_marker_keeps_the_origin(
    marker: str, monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a variant header but no usable rule header WHEN a miss arrives THEN unchanged:
    the rule is never guessed from the URI."""
    _use_items(monkeypatch, [route_item(canary_actions={"set_origin": CANARY_ORIGIN})])
    event = _marked(cf_event, "canary", rule=marker)
    before = copy.deepcopy(_request(event))

    assert origin_request.handler(event, None) == before


def test_a_newer_revision_keeps_the_variant_by_name(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN viewer-request chose revision 1 and this container already reads revision 2
    WHEN the miss arrives THEN the variant's origin in the rule at that key is used."""
    item = route_item(canary_actions={"set_origin": CANARY_ORIGIN})
    item["revision"] = 2
    _use_items(monkeypatch, [item])

    result = origin_request.handler(_marked(cf_event, "canary", rule="1:default"), None)

    assert result["origin"]["custom"]["domainName"] == "canary.internal"


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
