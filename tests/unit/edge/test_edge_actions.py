"""Tests for the variant actions at the edge: apply them, and skip rules that misuse them."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from edge import actions, assign, config, force, rules, viewer_request, viewer_response

HOST = "demo.example.com"
RouteItem = Callable[..., dict[str, Any]]
CfEvent = Callable[..., dict[str, Any]]
SECRET = "qa-secret-0123456789abcdef"


def _use(monkeypatch: pytest.MonkeyPatch, *items: dict[str, Any]) -> None:
    cache = rules.RuleCache(lambda host: list(items) if host == HOST else [], ttl_seconds=5)
    monkeypatch.setattr(rules, "default_cache", lambda: cache)


def _config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **values: Any) -> None:
    path = tmp_path / "edge-config.json"
    path.write_text(json.dumps(values))
    monkeypatch.setenv(config.ENV_PATH, str(path))
    config.reset()


def _request(event: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = event["Records"][0]["cf"]["request"]
    return request


def _response_event(request: dict[str, Any], **headers: str) -> dict[str, Any]:
    response = {
        "status": "200",
        "statusDescription": "OK",
        "headers": {k.lower(): [{"key": k, "value": v}] for k, v in headers.items()},
    }
    cf = {"config": {"eventType": "viewer-response"}, "request": request, "response": response}
    return {"Records": [{"cf": cf}]}


# -- viewer actions ----------------------------------------------------------------------


def test_querystring_template_keeps_the_viewers_query(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN set_querystring naming {querystring} WHEN a query arrives THEN both are kept."""
    item = route_item(
        canary_weight=10_000, canary_actions={"set_querystring": "{querystring}&v={version}"}
    )
    _use(monkeypatch, item)
    event = cf_event()
    _request(event)["querystring"] = "a=1"

    assert viewer_request.handler(event, None)["querystring"] == "a=1&v=v2"


def test_querystring_template_without_a_viewer_query_has_no_stray_ampersand(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN set_querystring naming {querystring} WHEN there is none THEN no '&' dangles."""
    item = route_item(
        canary_weight=10_000, canary_actions={"set_querystring": "{querystring}&v={version}"}
    )
    _use(monkeypatch, item)

    assert viewer_request.handler(cf_event(), None)["querystring"] == "v=v2"


def test_redirect_answers_without_the_origin(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a canary redirect WHEN a canary viewer arrives THEN a 307 with the rendered
    location and the viewer's query string is returned instead of the request."""
    redirect = {"status": 307, "location": "/v/{version}{uri}"}
    _use(monkeypatch, route_item(canary_weight=10_000, canary_actions={"redirect": redirect}))
    event = cf_event("/app.js")
    _request(event)["querystring"] = "x=1"

    response = viewer_request.handler(event, None)

    assert response["status"] == "307"
    assert response["statusDescription"] == "Temporary Redirect"
    assert response["headers"]["location"] == [{"key": "Location", "value": "/v/v2/app.js?x=1"}]


def test_respond_returns_a_synthetic_response_with_the_rule_headers(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a canary respond action and a rule cache_control WHEN a canary viewer arrives
    THEN the generated response carries body, content type and Cache-Control (CloudFront
    skips viewer-response for generated responses)."""
    respond = {"status": 503, "body": "maintenance", "content_type": "text/plain"}
    item = route_item(canary_weight=10_000, canary_actions={"respond": respond})
    item["cache_control"] = "no-store"
    _use(monkeypatch, item)

    response = viewer_request.handler(cf_event(), None)

    assert response["status"] == "503"
    assert response["body"] == "maintenance"
    assert response["headers"]["content-type"][0]["value"] == "text/plain"
    assert response["headers"]["cache-control"][0]["value"] == "no-store"


def test_stable_viewers_are_not_redirected(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a canary redirect at 0% WHEN a viewer arrives THEN the request goes on."""
    redirect = {"location": "/elsewhere"}
    _use(monkeypatch, route_item(canary_weight=0, canary_actions={"redirect": redirect}))

    assert "uri" in viewer_request.handler(cf_event(), None)


# -- stickiness --------------------------------------------------------------------------


def _cookie_rule(route_item: RouteItem, weight: int = 5000) -> dict[str, Any]:
    item = route_item(canary_weight=weight)
    item["stickiness"] = {"key": "cookie", "name": "es_id", "max_age": 3600}
    return item


def test_cookie_stickiness_uses_the_cookie_and_ignores_ip(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN cookie stickiness WHEN one cookie arrives from many IPs THEN one variant, and
    it is the one the cookie's key hashes to."""
    _use(monkeypatch, _cookie_rule(route_item))
    seen = set()
    for n in range(50):
        event = cf_event(client_ip=f"10.0.0.{n}", extra_headers={"Cookie": "a=b; es_id=abc"})
        request = viewer_request.handler(event, None)
        seen.add(request["headers"]["x-edgeshift-variant"][0]["value"])

    bucket = assign.bucket_of("r-test", "c:abc")
    assert seen == {"canary" if bucket < 5000 else "stable"}


def test_a_new_viewer_gets_a_minted_id_and_a_secure_cookie(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN cookie stickiness and a viewer without the cookie WHEN viewer-request then
    viewer-response run THEN the minted id comes back as Secure, SameSite=Lax, Max-Age, and
    the origin's own cookies stay."""
    _use(monkeypatch, _cookie_rule(route_item))
    event = cf_event()
    request = viewer_request.handler(event, None)
    minted = request["headers"]["x-edgeshift-sticky-key"][0]["value"]

    response = viewer_response.handler(
        _response_event(request, **{"Set-Cookie": "session=1"}), None
    )

    cookies = [c["value"] for c in response["headers"]["set-cookie"]]
    assert cookies[0] == "session=1"
    assert cookies[1] == f"es_id={minted}; Path=/; Max-Age=3600; Secure; HttpOnly; SameSite=Lax"
    # The next request with that cookie gets the same variant the minted id was given.
    again = cf_event(client_ip="192.0.2.99", extra_headers={"Cookie": f"es_id={minted}"})
    variant = viewer_request.handler(again, None)["headers"]["x-edgeshift-variant"]
    assert variant == request["headers"]["x-edgeshift-variant"]


def test_a_returning_viewer_gets_no_new_cookie(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a viewer with the sticky cookie WHEN the triggers run THEN no Set-Cookie."""
    _use(monkeypatch, _cookie_rule(route_item))
    request = viewer_request.handler(cf_event(extra_headers={"Cookie": "es_id=abc"}), None)

    response = viewer_response.handler(_response_event(request), None)

    assert "set-cookie" not in response["headers"]


def test_viewers_cannot_plant_a_sticky_id(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN a viewer sending the internal sticky header WHEN viewer-request runs THEN it is
    replaced by the edge's own value (or dropped)."""
    _use(monkeypatch, _cookie_rule(route_item))
    event = cf_event(extra_headers={"Cookie": "es_id=abc", "X-Edgeshift-Sticky-Key": "evil"})

    request = viewer_request.handler(event, None)

    assert "x-edgeshift-sticky-key" not in request["headers"]


def test_header_stickiness_falls_back_to_ip_and_user_agent(
    monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN header stickiness WHEN the header is present THEN it is the key, else IP+UA."""
    request = {"clientIp": "203.0.113.9", "headers": {"x-user": [{"value": "u-1"}]}}
    stickiness = {"key": "header", "name": "X-User"}

    assert assign.sticky_key(request, stickiness) == ("h:u-1", None)
    request["headers"] = {}
    assert assign.sticky_key(request, stickiness) == ("203.0.113.9|", None)


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        ("es_id=abc", "abc"),
        ("a=1;es_id=abc ; b", "abc"),
        ('es_id="abc"', "abc"),
        ("es_id=", None),
        ("es_idx=abc", None),
        ("=;;;===", None),
    ],
)
def test_cookie_parsing_tolerates_odd_syntax(cookie: str, expected: str | None) -> None:
    """GIVEN odd Cookie headers WHEN reading the sticky cookie THEN value or None, no error."""
    headers = {"cookie": [{"key": "Cookie", "value": "x=y"}, {"key": "Cookie", "value": cookie}]}
    assert assign.cookie_value(headers, "es_id") == expected


# -- forced variant ----------------------------------------------------------------------


def _forced_rule(route_item: RouteItem) -> dict[str, Any]:
    item = route_item(canary_weight=0)
    item["allow_forced"] = True
    return item


def _variant_for(event: dict[str, Any]) -> str:
    request = viewer_request.handler(event, None)
    return str(request["headers"]["x-edgeshift-variant"][0]["value"])


def test_a_signed_token_forces_the_canary(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN forcing on (secret + rule) WHEN a valid signed token arrives by header or
    cookie THEN the viewer gets the canary at 0% weight."""
    _config(monkeypatch, tmp_path, force_secret=SECRET)
    _use(monkeypatch, _forced_rule(route_item))
    token = force.sign(SECRET, HOST, "canary", 2_000_000_000)
    monkeypatch.setattr("time.time", lambda: 1_999_999_000.0)

    assert _variant_for(cf_event(extra_headers={"X-Edgeshift-Force": token})) == "canary"
    assert _variant_for(cf_event(extra_headers={"Cookie": f"edgeshift-force={token}"})) == (
        "canary"
    )


@pytest.mark.parametrize(
    "token",
    [
        "canary",
        "canary.2000000000.0000",
        force.sign("another-secret-0123456789", HOST, "canary", 2_000_000_000),
        force.sign(SECRET, "other.example.com", "canary", 2_000_000_000),
        force.sign(SECRET, HOST, "canary", 1_999_998_000),  # expired
        force.sign(SECRET, HOST, "canary", 2_099_999_000),  # valid for too long
        force.sign(SECRET, HOST, "nightly", 2_000_000_000),  # no such variant
        "cänary.2000000000.ff",
    ],
)
def test_unsigned_or_bad_tokens_are_ignored(
    token: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    route_item: RouteItem,
    cf_event: CfEvent,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """GIVEN forcing on WHEN a token is forged, expired, too long-lived, for another host
    or variant THEN normal assignment applies and the attempt is logged without the IP."""
    _config(monkeypatch, tmp_path, force_secret=SECRET)
    _use(monkeypatch, _forced_rule(route_item))
    monkeypatch.setattr("time.time", lambda: 1_999_999_000.0)

    assert _variant_for(cf_event(extra_headers={"X-Edgeshift-Force": token})) == "stable"
    logged = capsys.readouterr().out
    assert "forced variant rejected" in logged
    assert "203.0.113.7" not in logged


@pytest.mark.parametrize(("secret", "allow"), [(None, True), (SECRET, False)])
def test_forcing_is_off_unless_both_the_secret_and_the_rule_allow_it(
    secret: str | None,
    allow: bool,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    route_item: RouteItem,
    cf_event: CfEvent,
) -> None:
    """GIVEN no secret, or a rule that does not allow forcing WHEN a valid token arrives
    THEN it has no effect."""
    _config(monkeypatch, tmp_path, force_secret=secret)
    item = _forced_rule(route_item)
    item["allow_forced"] = allow
    _use(monkeypatch, item)
    token = force.sign(SECRET, HOST, "canary", 2_000_000_000)
    monkeypatch.setattr("time.time", lambda: 1_999_999_000.0)

    assert _variant_for(cf_event(extra_headers={"X-Edgeshift-Force": token})) == "stable"


# -- malformed actions found in the table ------------------------------------------------

BAD_ACTIONS: dict[str, dict[str, Any]] = {
    "unknown action": {"set_cookie": "x"},
    "disallowed header": {"set_headers": {"X-Amz-Cf-Id": "x"}},
    "proxy header": {"set_headers": {"Proxy-Authorization": "x"}},
    "read-only header": {"set_headers": {"Host": "evil.example.com"}},
    "reserved header": {"set_headers": {"X-Edgeshift-Variant": "canary"}},
    "header value newline": {"set_headers": {"X-A": "a\r\nB: c"}},
    "unknown template field": {"set_uri": "/{release}{uri}"},
    "querystring field in set_uri": {"set_uri": "/{querystring}"},
    "querystring with ?": {"set_querystring": "?a=1"},
    "redirect bad status": {"redirect": {"status": 303, "location": "/x"}},
    "redirect relative": {"redirect": {"location": "x"}},
    "respond too big": {"respond": {"body": "x" * 41_000}},
    "respond status bool": {"respond": {"status": True}},
    "redirect plus set_uri": {"redirect": {"location": "/x"}, "set_uri": "/y"},
    "s3 oai without region": {
        "set_origin": {
            "kind": "s3",
            "domain": "b.s3.amazonaws.com",
            "auth_method": "origin-access-identity",
        }
    },
    "origin kind unknown": {
        "set_origin": {"kind": "ftp", "domain": "o", "port": 1, "protocol": "http"}
    },
}


@pytest.mark.parametrize("bad", BAD_ACTIONS.values(), ids=BAD_ACTIONS.keys())
def test_rules_with_bad_actions_are_skipped(
    bad: dict[str, Any], monkeypatch: pytest.MonkeyPatch, route_item: RouteItem, cf_event: CfEvent
) -> None:
    """GIVEN an item whose action the orchestrator would have refused WHEN read THEN the rule
    is skipped and viewers pass through unchanged."""
    item = route_item(canary_weight=10_000, canary_actions=bad)
    assert not rules.is_valid_rule(item)
    _use(monkeypatch, item)
    event = cf_event()
    before = copy.deepcopy(_request(event))

    assert viewer_request.handler(event, None) == before


@pytest.mark.parametrize(
    "rule_field",
    [
        {"stickiness": {"key": "cookie"}},
        {"stickiness": {"key": "session"}},
        {"stickiness": {"key": "header", "name": "bad header"}},
        {"cache_control": "no-store\r\nX-Evil: 1"},
        {"allow_forced": "yes"},
    ],
)
def test_rules_with_bad_rule_fields_are_skipped(
    rule_field: dict[str, Any], route_item: RouteItem
) -> None:
    """GIVEN a malformed stickiness, cache_control or allow_forced WHEN validated THEN no."""
    item = route_item()
    item.update(rule_field)
    assert not rules.is_valid_rule(item)


def test_templates_substitute_once_so_values_cannot_inject_fields() -> None:
    """GIVEN a header value holding '{uri}' WHEN rendered THEN it stays literal."""
    headers = {"x-a": [{"key": "X-A", "value": "{uri}"}]}
    fields = {"uri": "/u", "version": "v", "variant": "c", "host": "h", "querystring": ""}

    rendered = actions.render("{header:x-a}{uri}", fields=fields, headers=headers)

    assert rendered == "{uri}/u"
