"""Write-time validation of route actions and rule options, naming the field at fault.

Every route the orchestrator accepts must be one the edge applies (``rules.is_valid_rule``);
the model calls the edge's own checks (``edge.validate``), so there is no second copy of
CloudFront's rules to keep equal.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from edge import rules as edge_rules
from edge import validate as edge_validate
from orchestrator.models import RouteRule
from orchestrator.models import route as route_model
from orchestrator.store.codec import from_attributes, route_item


def _route(canary_actions: dict[str, Any] | None = None, **rule: Any) -> dict[str, Any]:
    return {
        "host": "shop.example.com",
        "path_rule": "default",
        "salt": "r-1",
        "variants": [
            {"name": "canary", "version": "v2", "weight": 1_000, "actions": canary_actions or {}},
            {"name": "stable", "version": "v1", "weight": 9_000},
        ],
        **rule,
    }


def _refused(doc: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as refused:
        RouteRule.model_validate(doc)
    return str(refused.value)


def _stored(rule: RouteRule) -> dict[str, Any]:
    """The item as the edge reads it: through the real codec, DynamoDB types and back."""
    return from_attributes(route_item(rule))


GOOD_ACTIONS: dict[str, dict[str, Any]] = {
    "uri and header": {"set_uri": "/r/{version}/{header:accept-language}{uri}"},
    "querystring": {"set_querystring": "{querystring}&v={version}"},
    "headers": {"set_headers": {"X-Release": "{variant}-{version}", "Accept": "*/*"}},
    "custom origin": {"set_origin": {"domain": "canary.example.org", "port": 8443, "path": "/v2"}},
    "s3 origin": {"set_origin": {"kind": "s3", "domain": "my-bucket.s3.amazonaws.com"}},
    "s3 origin with oai": {
        "set_origin": {
            "kind": "s3",
            "domain": "my-bucket.s3.eu-west-1.amazonaws.com",
            "auth_method": "origin-access-identity",
            "region": "eu-west-1",
        }
    },
    "loopback origin (local stack)": {
        "set_origin": {"domain": "127.0.0.1", "port": 18080, "protocol": "http"}
    },
    "redirect": {"redirect": {"status": 308, "location": "/v2{uri}"}},
    "redirect to a literal host": {
        "redirect": {"location": "https://www.example.com/v2{uri}?from={host}"}
    },
    "respond": {"respond": {"status": 503, "body": "x" * 40_000, "headers": {"Retry-After": "60"}}},
}


@pytest.mark.parametrize("canary", GOOD_ACTIONS.values(), ids=GOOD_ACTIONS.keys())
def test_accepted_actions_are_ones_the_edge_applies(canary: dict[str, Any]) -> None:
    """GIVEN valid actions WHEN written and read back as the edge reads items THEN the edge
    accepts the rule too."""
    rule = RouteRule.model_validate(_route(canary))

    assert edge_rules.is_valid_rule(_stored(rule))


def test_rule_options_round_trip_to_the_edge() -> None:
    """GIVEN cookie stickiness, a Cache-Control override and forcing WHEN stored THEN the
    edge reads the same options."""
    rule = RouteRule.model_validate(
        _route(
            stickiness={"key": "cookie", "name": "es_id", "max_age": 3600},
            cache_control="no-cache, max-age=0",
            allow_forced=True,
        )
    )
    item = _stored(rule)

    assert edge_rules.is_valid_rule(item)
    assert item["stickiness"] == {"key": "cookie", "name": "es_id", "max_age": 3600}
    assert item["cache_control"] == "no-cache, max-age=0"
    assert item["allow_forced"] is True


def test_items_written_before_these_options_still_load() -> None:
    """GIVEN an item of the first format (variants, salt, rollout_id, revision only) WHEN
    loaded THEN it validates with ip_ua stickiness, no override and forcing off."""
    doc = _route({"set_uri": "/releases/{version}{uri}"}, rollout_id="r-1", revision=4)

    rule = RouteRule.model_validate(doc)

    assert (rule.stickiness, rule.cache_control, rule.allow_forced) == (None, None, False)
    assert rule.variant("canary").actions.set_uri == "/releases/{version}{uri}"


S3 = {"kind": "s3", "domain": "my-bucket.s3.amazonaws.com"}
BAD: dict[str, tuple[dict[str, Any], str]] = {
    "unknown action": ({"set_cookie": "a=b"}, "set_cookie"),
    "unknown template field": ({"set_uri": "/{release}{uri}"}, "{release}"),
    "querystring field in set_uri": ({"set_uri": "/x{querystring}"}, "{querystring}"),
    "set_uri without slash": ({"set_uri": "releases{uri}"}, "set_uri"),
    "querystring with ?": ({"set_querystring": "?v=1"}, "set_querystring"),
    "disallowed header": ({"set_headers": {"X-Amz-Cf-Id": "x"}}, "X-Amz-Cf-Id"),
    "disallowed prefix": ({"set_headers": {"X-Edge-Location": "x"}}, "X-Edge-Location"),
    "connection": ({"set_headers": {"Connection": "close"}}, "Connection"),
    "read-only host": ({"set_headers": {"Host": "evil.example.com"}}, "read-only"),
    "read-only via": ({"set_headers": {"Via": "1.1 x"}}, "read-only"),
    "reserved header": ({"set_headers": {"x-edgeshift-variant": "canary"}}, "reserved"),
    "header newline": ({"set_headers": {"X-A": "a\r\nB: c"}}, "control characters"),
    "bad header name": ({"set_headers": {"X A": "b"}}, "not a valid header name"),
    "origin ip": ({"set_origin": {"domain": "10.0.0.1"}}, "not an IP"),
    "origin port": ({"set_origin": {"domain": "o.example.org", "port": 81}}, "port"),
    "origin colon": ({"set_origin": {"domain": "o.example.org:81"}}, "colon"),
    "origin trailing slash": ({"set_origin": {"domain": "o.example.org", "path": "/v2/"}}, "path"),
    "s3 with port": ({"set_origin": {**S3, "port": 443}}, "custom origins only"),
    "s3 not a bucket": ({"set_origin": {"kind": "s3", "domain": "example.org"}}, "bucket"),
    "s3 oai no region": ({"set_origin": {**S3, "auth_method": "origin-access-identity"}}, "region"),
    "custom with region": ({"set_origin": {"domain": "o.example.org", "region": "us-east-1"}},
                           "S3 origins only"),
    "redirect status": ({"redirect": {"status": 303, "location": "/x"}}, "status"),
    "redirect relative": ({"redirect": {"location": "x"}}, "location"),
    "redirect //{uri}": ({"redirect": {"location": "/{uri}"}}, "literal path character"),
    "redirect //host": ({"redirect": {"location": "//evil.example/"}}, "literal path character"),
    "redirect backslash": ({"redirect": {"location": "/\\evil.example/"}}, "backslash"),
    "redirect host from a header": (
        {"redirect": {"location": "https://{header:x-next-host}/"}}, "scheme and host literally"
    ),
    "redirect host from a field": ({"redirect": {"location": "https://{host}/x"}}, "literally"),
    "redirect leaks the cookie": (
        {"redirect": {"location": "https://b.example.org/?c={header:cookie}"}}, "Cookie"
    ),
    "set_uri reads authorization": ({"set_uri": "/{header:Authorization}{uri}"}, "Authorization"),
    "header reads the edge's own": (
        {"set_headers": {"X-A": "{header:x-edgeshift-variant}"}}, "own headers"
    ),
    "x-forwarded-proto": ({"set_headers": {"X-Forwarded-Proto": "https"}}, "X-Forwarded-Proto"),
    "x-amzn-trace-id": ({"set_headers": {"X-Amzn-Trace-Id": "x"}}, "X-Amzn-Trace-Id"),
    "cloudfront-viewer-country": (
        {"set_headers": {"CloudFront-Viewer-Country": "US"}}, "read-only"
    ),
    "redirect template": ({"redirect": {"location": "/{nope}"}}, "{nope}"),
    "respond too big": ({"respond": {"body": "x" * 41_000}}, "40960"),
    "respond header": ({"respond": {"headers": {"X-Cache": "HIT"}}}, "X-Cache"),
    "redirect and respond": ({"redirect": {"location": "/x"}, "respond": {}}, "redirect"),
    "redirect and set_uri": ({"redirect": {"location": "/x"}, "set_uri": "/y"}, "set_uri"),
}  # fmt: skip


@pytest.mark.parametrize(("canary", "named"), BAD.values(), ids=BAD.keys())
def test_bad_actions_are_refused_naming_the_field(canary: dict[str, Any], named: str) -> None:
    """GIVEN an action the edge cannot apply WHEN written THEN refused, the field named."""
    message = _refused(_route(canary))

    assert named in message
    assert "variants.0.actions" in message


BAD_OPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "cookie without name": ({"stickiness": {"key": "cookie"}}, "stickiness"),
    "unknown key": ({"stickiness": {"key": "session", "name": "s"}}, "stickiness.key"),
    "ip_ua with name": ({"stickiness": {"key": "ip_ua", "name": "x"}}, "stickiness"),
    "bad cookie name": ({"stickiness": {"key": "cookie", "name": "a b"}}, "stickiness.name"),
    "read-only header key": ({"stickiness": {"key": "header", "name": "Host"}}, "read-only"),
    "max_age too short": ({"stickiness": {"key": "cookie", "name": "a", "max_age": 1}}, "max_age"),
    "cache_control newline": ({"cache_control": "no-store\r\nX: 1"}, "cache_control"),
    "allow_forced string": ({"allow_forced": "yes"}, "allow_forced"),
}


@pytest.mark.parametrize(("options", "named"), BAD_OPTIONS.values(), ids=BAD_OPTIONS.keys())
def test_bad_rule_options_are_refused_naming_the_field(options: dict[str, Any], named: str) -> None:
    """GIVEN malformed stickiness, cache_control or allow_forced WHEN written THEN refused."""
    assert named in _refused(_route(**options))


def test_weights_not_summing_to_full_weight_are_refused() -> None:
    """GIVEN weights summing to 9000 WHEN written THEN refused, naming the sum."""
    doc = _route()
    doc["variants"][1]["weight"] = 8_000

    assert "9000" in _refused(doc)


def test_a_respond_that_fits_alone_but_not_with_the_edges_headers_is_refused() -> None:
    """GIVEN a 40,900-byte body (under 40 KB alone) on a rule with Cache-Control and cookie
    stickiness WHEN written THEN refused: the Cache-Control and Set-Cookie the edge adds push
    the generated response over CloudFront's limit. The message names field and rule."""
    respond = {"respond": {"status": 503, "body": "x" * 40_700}}
    options = {"cache_control": "no-store", "stickiness": {"key": "cookie", "name": "es_id"}}

    message = _refused(_route(respond, path_rule="prefix:/checkout", **options))

    assert "variants.0.actions.respond" in message
    assert "40960" in message
    assert "prefix:/checkout" in message


def test_the_model_calls_the_edges_checks_instead_of_keeping_copies() -> None:
    """GIVEN the route model module WHEN inspected THEN it keeps no header lists of its own:
    CloudFront's rules live once, in edge/."""
    for copy in ("DISALLOWED_HEADERS", "DISALLOWED_PREFIXES", "READ_ONLY_HEADERS"):
        assert not hasattr(route_model, copy)
    assert route_model.BASE_FIELDS is edge_validate.BASE_FIELDS
    assert set(route_model.VariantActions.model_fields) == edge_validate.ACTION_NAMES
