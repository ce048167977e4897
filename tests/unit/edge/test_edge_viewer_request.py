"""Tests for edge.viewer_request: variant assignment, URI rewrite and pass-through safety."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

from edge import rules, viewer_request

HOST = "demo.example.com"
RouteItem = Callable[..., dict[str, Any]]
CfEvent = Callable[..., dict[str, Any]]


def _use_items(monkeypatch: pytest.MonkeyPatch, items: list[Any]) -> rules.RuleCache:
    cache = rules.RuleCache(lambda host: items if host == HOST else [], ttl_seconds=5)
    monkeypatch.setattr(rules, "default_cache", lambda: cache)
    return cache


def _request(event: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = event["Records"][0]["cf"]["request"]
    return request


REWRITE = {"set_uri": "/releases/{version}{uri}"}


def test_canary_viewer_gets_rewritten_uri_and_header(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a rule at 100% canary with a set_uri WHEN a request arrives THEN the URI is
    rewritten and the variant header names canary."""
    _use_items(monkeypatch, [route_item(canary_weight=10_000, canary_actions=REWRITE)])
    event = cf_event("/index.html")

    result = viewer_request.handler(event, None)

    assert result is _request(event)
    assert result["uri"] == "/releases/v2/index.html"
    assert result["headers"]["x-edgeshift-variant"] == [
        {"key": "X-Edgeshift-Variant", "value": "canary"}
    ]


def test_stable_viewer_keeps_uri_and_gets_header(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a rule at 0% canary and a stable variant without actions WHEN a request arrives
    THEN only the variant header is added."""
    _use_items(monkeypatch, [route_item(canary_weight=0, canary_actions=REWRITE)])
    event = cf_event("/index.html")
    expected = copy.deepcopy(_request(event))
    expected["headers"]["x-edgeshift-variant"] = [{"key": "X-Edgeshift-Variant", "value": "stable"}]
    expected["headers"]["x-edgeshift-host"] = [{"key": "X-Edgeshift-Host", "value": HOST}]
    expected["headers"]["x-edgeshift-rule"] = [{"key": "X-Edgeshift-Rule", "value": "1:default"}]
    expected["headers"]["x-edgeshift-segment"] = [
        {"key": "X-Edgeshift-Segment", "value": "browser=other;device=other;country=xx"}
    ]

    assert viewer_request.handler(event, None) == expected


def test_the_same_viewer_gets_the_same_variant(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a 50% rollout WHEN one viewer sends many requests THEN every answer agrees, and
    different viewers land on both sides."""
    _use_items(monkeypatch, [route_item(canary_weight=5000)])

    def variant(ip: str) -> str:
        result = viewer_request.handler(cf_event(client_ip=ip), None)
        return str(result["headers"]["x-edgeshift-variant"][0]["value"])

    assert len({variant("203.0.113.7") for _ in range(20)}) == 1
    assert {variant(f"198.51.100.{i}") for i in range(50)} == {"canary", "stable"}


def test_rule_precedence_applies_per_uri(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a prefix rule with a rewrite and a default without WHEN requests hit each THEN
    only the prefix's URIs are rewritten."""
    _use_items(
        monkeypatch,
        [
            route_item(path_rule="default", canary_weight=10_000),
            route_item(path_rule="prefix:/app/", canary_weight=10_000, canary_actions=REWRITE),
        ],
    )

    assert viewer_request.handler(cf_event("/app/a.js"), None)["uri"] == "/releases/v2/app/a.js"
    assert viewer_request.handler(cf_event("/other.js"), None)["uri"] == "/other.js"


def test_host_without_rules_passes_through(
    monkeypatch: pytest.MonkeyPatch, cf_event: CfEvent
) -> None:
    """GIVEN no rules for the host WHEN a request arrives THEN it is returned unchanged."""
    _use_items(monkeypatch, [])
    event = cf_event()
    before = copy.deepcopy(_request(event))

    assert viewer_request.handler(event, None) == before


def _no_host(event: dict[str, Any]) -> None:
    del _request(event)["headers"]["host"]


def _headers_list(event: dict[str, Any]) -> None:
    _request(event)["headers"] = []


def _uri_none(event: dict[str, Any]) -> None:
    _request(event)["uri"] = None


def _host_not_list(event: dict[str, Any]) -> None:
    _request(event)["headers"]["host"] = "demo.example.com"


def _agent_not_list(event: dict[str, Any]) -> None:
    _request(event)["headers"]["user-agent"] = "curl/8.5"


@pytest.mark.parametrize(
    "damage", [_no_host, _headers_list, _uri_none, _host_not_list, _agent_not_list]
)
def test_malformed_requests_pass_through(
    damage: Callable[[dict[str, Any]], None],
    monkeypatch: pytest.MonkeyPatch,
    route_item: RouteItem,
    cf_event: CfEvent,
) -> None:
    """GIVEN a request missing or mistyping a field WHEN handled THEN it is returned as is."""
    _use_items(monkeypatch, [route_item(canary_weight=10_000, canary_actions=REWRITE)])
    event = cf_event()
    damage(event)
    before = copy.deepcopy(_request(event))

    assert viewer_request.handler(event, None) == before


@pytest.mark.parametrize("event", [{}, {"Records": []}, None, {"Records": [{"cf": {}}]}])
def test_events_without_a_request_do_not_raise(event: Any) -> None:
    """GIVEN an event that is not a CloudFront request WHEN handled THEN nothing is raised."""
    assert viewer_request.handler(event, None) is None


def _weights_as_strings(item: dict[str, Any]) -> None:
    for variant in item["variants"]:
        variant["weight"] = str(variant["weight"])


def _no_salt(item: dict[str, Any]) -> None:
    del item["salt"]


def _variants_as_dict(item: dict[str, Any]) -> None:
    item["variants"] = {v["name"]: v for v in item["variants"]}


def _origin_without_port(item: dict[str, Any]) -> None:
    item["variants"][0]["actions"]["set_origin"] = {"domain": "o", "protocol": "http"}


@pytest.mark.parametrize(
    "damage", [_weights_as_strings, _no_salt, _variants_as_dict, _origin_without_port]
)
def test_malformed_items_pass_through(
    damage: Callable[[dict[str, Any]], None],
    monkeypatch: pytest.MonkeyPatch,
    route_item: RouteItem,
    cf_event: CfEvent,
) -> None:
    """GIVEN a structurally broken route item WHEN viewers arrive THEN all pass through."""
    item = route_item(canary_weight=5000, canary_actions=dict(REWRITE))
    damage(item)
    _use_items(monkeypatch, [item])

    for i in range(50):
        event = cf_event(client_ip=f"198.51.100.{i}")
        before = copy.deepcopy(_request(event))
        assert viewer_request.handler(event, None) == before


def _outcomes(cf_event: CfEvent) -> list[tuple[bool, str | None]]:
    """(passed through unchanged, variant header) for 100 distinct viewers."""
    seen = []
    for i in range(100):
        event = cf_event(client_ip=f"198.51.100.{i}")
        before = copy.deepcopy(_request(event))
        result = viewer_request.handler(event, None)
        marker = result["headers"].get("x-edgeshift-variant")
        seen.append((result == before, marker[0]["value"] if marker else None))
    return seen


def test_weights_not_covering_everyone_skip_the_rule(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN weights summing to 50% WHEN viewers arrive THEN the rule is skipped: all pass
    through unchanged, rather than half of them being assigned."""
    item = route_item(canary_weight=5000)
    item["variants"][1]["weight"] = 0
    _use_items(monkeypatch, [item])

    outcomes = set(_outcomes(cf_event))

    assert outcomes == {(True, None)}


def test_a_template_yielding_an_invalid_uri_skips_the_rule(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a canary set_uri without a leading slash WHEN viewers arrive THEN the rule is
    skipped as malformed and every viewer passes through untouched."""
    _use_items(
        monkeypatch, [route_item(canary_weight=5000, canary_actions={"set_uri": "releases{uri}"})]
    )

    outcomes = set(_outcomes(cf_event))

    assert outcomes == {(True, None)}


def test_header_values_in_a_uri_template_are_percent_encoded(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a set_uri naming a header WHEN the viewer's value holds slashes and spaces THEN
    they are percent-encoded, so a viewer cannot steer the path outside the template."""
    actions = {"set_uri": "/r/{header:x-path}{uri}"}
    _use_items(monkeypatch, [route_item(canary_weight=10_000, canary_actions=actions)])
    event = cf_event("/a", extra_headers={"X-Path": "b c/../d"})

    assert viewer_request.handler(event, None)["uri"] == "/r/b%20c%2F..%2Fd/a"


def test_table_failure_passes_through(monkeypatch: pytest.MonkeyPatch, cf_event: CfEvent) -> None:
    """GIVEN a table that cannot be read WHEN a request arrives THEN it is returned as is."""

    def failing(host: str) -> list[dict[str, Any]]:
        raise OSError("no route to host")

    monkeypatch.setattr(rules, "default_cache", lambda: rules.RuleCache(failing, ttl_seconds=5))
    event = cf_event()
    before = copy.deepcopy(_request(event))

    assert viewer_request.handler(event, None) == before


def test_unreadable_config_passes_through(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any, cf_event: CfEvent
) -> None:
    """GIVEN a broken edge config WHEN a request arrives THEN it is returned as is."""
    monkeypatch.setenv("EDGESHIFT_EDGE_CONFIG", str(tmp_path / "missing.json"))
    event = cf_event()
    before = copy.deepcopy(_request(event))

    assert viewer_request.handler(event, None) == before


def test_handler_reads_routes_from_a_real_table(
    routes_table: Callable[..., Any], route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a route written with boto3 to moto WHEN the real handler runs THEN it applies it."""
    routes_table(Item=route_item(canary_weight=10_000, canary_actions=REWRITE))

    result = viewer_request.handler(cf_event("/index.html"), None)

    assert result["uri"] == "/releases/v2/index.html"


def test_header_key_is_title_cased() -> None:
    """GIVEN a lower-case header name WHEN formatting for CloudFront THEN each word is capped."""
    assert viewer_request.header_key("x-edgeshift-variant") == "X-Edgeshift-Variant"


def test_viewer_supplied_variant_header_is_dropped_on_pass_through(
    cf_event: CfEvent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN a viewer sending the variant header itself WHEN no rule matches THEN it is gone."""
    _use_items(monkeypatch, [])
    event = cf_event(extra_headers={"X-Edgeshift-Variant": "canary"})
    request = viewer_request.handler(event, None)
    assert "x-edgeshift-variant" not in request["headers"]
