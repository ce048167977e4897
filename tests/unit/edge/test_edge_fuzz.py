"""Hypothesis fuzz: malformed events of every kind never escape the handlers as exceptions.

Two generators, against rules that exercise every action, cookie stickiness and forcing:

- structural strategies (hypothesis draws every field; thorough but ~5 ms per event here),
  300 events per handler;
- a volume generator: hypothesis draws a seed and the event is built from it
  out of pools of odd values (missing headers, no User-Agent, IPv6, non-ASCII URIs, huge
  query strings, odd cookies, unknown event types), 10,000 events in total (4,000 viewer-
  request, 3,000 origin-request, 3,000 viewer-response), at a fraction of the cost.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge import config, origin_request, rules, segments, viewer_request, viewer_response

HOST = "fuzz.example.com"
SECRET = "fuzz-secret-0123456789abcdef"
FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _variants(canary: dict[str, Any], stable: dict[str, Any] | None = None) -> list[Any]:
    return [
        {"name": "canary", "version": "v2", "weight": 5000, "actions": canary},
        {"name": "stable", "version": "v1", "weight": 5000, "actions": stable or {}},
    ]


RULES = [
    {
        "host": HOST,
        "path_rule": "default",
        "salt": "s",
        "cache_control": "no-cache",
        "allow_forced": True,
        "stickiness": {"key": "cookie", "name": "es_id", "max_age": 600},
        "variants": _variants(
            {
                "set_uri": "/r/{version}/{header:x-lang}{uri}",
                "set_querystring": "{querystring}&v={version}",
                "set_headers": {"X-Release": "{variant} {header:user-agent}"},
                "set_origin": {"domain": "canary.example.org", "port": 443, "protocol": "https"},
            },
            {"set_origin": {"kind": "s3", "domain": "b.s3.amazonaws.com", "path": "/v1"}},
        ),
    },
    {
        "host": HOST,
        "path_rule": "prefix:/go/",
        "salt": "s2",
        "stickiness": {"key": "header", "name": "x-user"},
        "variants": _variants(
            {"redirect": {"status": 308, "location": "https://www.example.com/go{uri}"}}
        ),
    },
    {
        "host": HOST,
        "path_rule": "exact:/maintenance",
        "salt": "s3",
        "variants": _variants({"respond": {"status": 503, "body": "later"}}),
    },
]


@pytest.fixture
def fuzz_edge(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Rules covering every action, forcing on, and a quiet log."""
    path = tmp_path / "edge.json"
    path.write_text(json.dumps({"force_secret": SECRET, "debug_header": "x-debug"}))
    monkeypatch.setenv(config.ENV_PATH, str(path))
    config.reset()
    assert all(rules.is_valid_rule(r) for r in RULES)
    cache = rules.RuleCache(lambda host: RULES if host == HOST else [], ttl_seconds=1e9)
    monkeypatch.setattr(rules, "default_cache", lambda: cache)
    monkeypatch.setattr("edge.log._emit", lambda *args: None)


# -- strategies --------------------------------------------------------------------------

junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=4,
)
odd_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", ";", "=", "a=b; es_id", "es_id=;;", '"', "\x00", "é/ü", "{uri}"]),
)
header_value = st.one_of(
    odd_text,
    st.builds(lambda n: "x" * n, st.integers(0, 20_000)),  # huge values
    junk,
)
header_entry = st.one_of(
    st.lists(st.fixed_dictionaries({"key": odd_text, "value": header_value}), max_size=3),
    st.lists(st.dictionaries(st.sampled_from(["key", "value", "x"]), junk, max_size=2), max_size=2),
    junk,
)
header_names = st.sampled_from(
    [
        "host", "user-agent", "cookie", "x-edgeshift-variant", "x-edgeshift-host",
        "x-edgeshift-sticky-key", "x-edgeshift-force", "x-user", "x-lang", "accept",
    ]
) | st.text(max_size=12)  # fmt: skip
host_header = st.fixed_dictionaries(
    {"key": st.just("Host"), "value": st.sampled_from([HOST, HOST.upper() + ":443", "[::1]"])}
).map(lambda entry: [entry])
headers = st.one_of(
    st.dictionaries(header_names, header_entry, max_size=4),
    st.dictionaries(header_names, header_entry, max_size=4).map(
        lambda h: {**h, "host": [{"key": "Host", "value": HOST}]}
    ),
    st.builds(
        lambda h, host, variant: {**h, "host": host, "x-edgeshift-variant": variant},
        st.dictionaries(header_names, header_entry, max_size=4),
        host_header,
        st.sampled_from([[{"value": "canary"}], [{"value": "stable"}], [{"value": "nope"}]]),
    ),
    junk,
)
client_ip = st.one_of(
    st.ip_addresses().map(str),
    st.sampled_from(["", "2001:0db8:85a3:0:0:8a2e:0370:7334", "::ffff:1.2.3.4", "not-an-ip"]),
    junk,
)
uri = st.one_of(
    st.sampled_from(["/", "/go/x", "/maintenance", "/index.html", "/r/v2/index.html"]),
    st.text(max_size=60).map(lambda t: "/" + t),
    junk,
)
querystring = st.one_of(
    st.just(""), odd_text, st.builds(lambda n: "q=" + "a" * n, st.integers(0, 70_000)), junk
)
request = st.one_of(
    st.fixed_dictionaries(
        {"clientIp": client_ip, "headers": headers, "method": st.just("GET"), "uri": uri},
        optional={"querystring": querystring, "origin": junk},
    ),
    junk,
)
response = st.one_of(
    st.fixed_dictionaries(
        {"status": st.sampled_from(["200", "304", 200, None]), "headers": headers},
        optional={"statusDescription": odd_text},
    ),
    junk,
)
event_type = st.one_of(
    st.sampled_from(["viewer-request", "origin-request", "viewer-response", "origin-response"]),
    st.none(),
    junk,
)


def events(with_response: bool) -> st.SearchStrategy[Any]:
    cf = st.fixed_dictionaries(
        {"config": st.fixed_dictionaries({"eventType": event_type}), "request": request},
        optional={"response": response} if with_response else {},
    )
    return st.one_of(
        st.builds(lambda c: {"Records": [{"cf": c}]}, cf),
        st.builds(lambda c: {"Records": c}, junk),
        junk,
    )


def _part(event: Any, name: str) -> Any:
    try:
        return event["Records"][0]["cf"][name]
    except Exception:
        return None


# -- volume generator --------------------------------------------------------------------

JUNK: list[Any] = [None, True, 0, -1, 1.5, float("nan"), "", "x", [], {}, [None], {"a": None}]
JUNK += [[[]], {"value": None}, [{"key": "Host"}], [{"value": 5}], [{"value": None}], "\x00"]
TEXTS = ["", " ", "é", "ü/ß", "日本", "\u202e", "%2F", "{uri}", "{header:host}", "\r\n", "🙂"]
COOKIES = ["es_id=abc", "es_id=", "=;;=", "es_id", 'es_id="q"', "a=b; es_id=c; es_id=d"]
COOKIES += ["es_id=" + "z" * 300, "edgeshift-force=canary.9999999999.00", "; ; ;"]
NAMES = ["host", "user-agent", "cookie", "x-edgeshift-variant", "x-edgeshift-host", "accept"]
NAMES += ["x-edgeshift-sticky-key", "x-edgeshift-force", "x-user", "x-lang", "HOST", ""]
NAMES += ["x-edgeshift-segment", "cloudfront-viewer-country"]
TYPES = ["viewer-request", "origin-request", "viewer-response", "origin-response", None, 5]


def _text(r: random.Random) -> str:
    kind = r.random()
    if kind < 0.5:
        return r.choice(TEXTS)
    if kind < 0.8:
        return "".join(chr(r.randrange(0x20, 0x3000)) for _ in range(r.randrange(40)))
    return r.choice("ab/?&=%") * r.randrange(70_000)


def _value(r: random.Random, name: str) -> Any:
    if r.random() < 0.15:
        return r.choice(JUNK)
    if name == "host":
        return r.choice([HOST, HOST.upper() + ":443", "[::1]:8", "", "other.example.com"])
    if name == "cookie":
        return r.choice(COOKIES)
    if name == "x-edgeshift-variant":
        return r.choice(["canary", "stable", "nope", ""])
    if name == "user-agent" and r.random() < 0.5:
        return r.choice(["Mozilla/5.0", "Trident/7.0", "Chrome/131 Edg/", "MSIE 99999999"])
    if name == "cloudfront-viewer-country":
        return r.choice(["DE", "de", "", "XYZ", "ü1"])
    return _text(r)


def _headers(r: random.Random) -> Any:
    if r.random() < 0.05:
        return r.choice(JUNK)
    headers: dict[Any, Any] = {}
    if r.random() < 0.8:
        headers["host"] = [{"key": "Host", "value": _value(r, "host")}]
    for _ in range(r.randrange(6)):
        name = r.choice(NAMES)
        if r.random() < 0.1:
            headers[name] = r.choice(JUNK)
        else:
            count = r.choice([0, 1, 1, 1, 2])
            headers[name] = [{"key": name.title(), "value": _value(r, name)} for _ in range(count)]
    return headers


def _client_ip(r: random.Random) -> Any:
    return r.choice(
        [
            f"{r.randrange(256)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(256)}",
            "2001:0db8:85a3:0:0:8a2e:0370:7334",
            f"fe80::{r.randrange(65536):x}%eth0",
            "",
            None,
            12345,
        ]
    )


def _request(r: random.Random) -> Any:
    if r.random() < 0.05:
        return r.choice(JUNK)
    request: dict[str, Any] = {}
    fields = {
        "clientIp": lambda: _client_ip(r),
        "headers": lambda: _headers(r),
        "method": lambda: r.choice(["GET", "HEAD", None]),
        "querystring": lambda: "" if r.random() < 0.5 else _text(r),
        "uri": lambda: r.choice(["/", "/go/x", "/maintenance", "/r/v2/x", _text(r), None]),
        "origin": lambda: r.choice([{}, {"custom": {}}, {"s3": None}, None]),
    }
    for name, make in fields.items():
        if r.random() < 0.92:
            request[name] = make()
    return request


def random_event(r: random.Random, with_response: bool) -> Any:
    """One malformed (or nearly well-formed) CloudFront event built from ``r``."""
    roll = r.random()
    if roll < 0.04:
        return r.choice(JUNK)
    if roll < 0.08:
        return {"Records": r.choice(JUNK)}
    cf: dict[str, Any] = {"config": {"eventType": r.choice(TYPES)}, "request": _request(r)}
    if with_response and r.random() < 0.95:
        cf["response"] = {"status": r.choice(["200", 304, None]), "headers": _headers(r)}
    return {"Records": [{"cf": cf}]}


# One draw per event: hypothesis picks (and can replay) the seed, plain ``random`` builds the
# event. Letting hypothesis draw every random() call costs ~5 ms per event on these machines.
SEEDS = st.integers(min_value=0, max_value=2**64 - 1)


# -- properties --------------------------------------------------------------------------


def _check_viewer_request(event: Any) -> None:
    original = _part(event, "request")
    result = viewer_request.handler(event, None)
    if isinstance(result, dict) and "status" in result:
        assert result["status"] in ("308", "503")
        return
    assert result is original
    ours = _part(event, "config") in ({"eventType": "viewer-request"}, {"eventType": None})
    if ours and isinstance(result, dict) and isinstance(result.get("headers"), dict):
        variant = result["headers"].get("x-edgeshift-variant")
        assert variant is None or variant[0]["value"] in ("canary", "stable")
        segment = result["headers"].get("x-edgeshift-segment")
        assert segment is None or segments.is_valid(segment[0]["value"])


def _check_origin_request(event: Any) -> None:
    original = _part(event, "request")
    result = origin_request.handler(event, None)
    assert result is original
    origin = result.get("origin") if isinstance(result, dict) else None
    switched = isinstance(origin, dict) and any(
        isinstance(o, dict) and o.get("domainName") in ("canary.example.org", "b.s3.amazonaws.com")
        for o in origin.values()
    )
    if switched:
        assert len(origin) == 1


def _check_viewer_response(event: Any) -> None:
    assert viewer_response.handler(event, None) is _part(event, "response")


@settings(FUZZ, max_examples=4000)
@given(seed=SEEDS)
def test_viewer_request_never_raises_on_generated_events(fuzz_edge: None, seed: int) -> None:
    """GIVEN any event WHEN viewer-request runs THEN it returns the event's request (possibly
    rewritten) or a generated response, and never a viewer-chosen variant header."""
    _check_viewer_request(random_event(random.Random(seed), with_response=False))


@settings(FUZZ, max_examples=3000)
@given(seed=SEEDS)
def test_origin_request_never_raises_on_generated_events(fuzz_edge: None, seed: int) -> None:
    """GIVEN any event WHEN origin-request runs THEN the event's own request comes back, with
    exactly one origin when it was switched."""
    _check_origin_request(random_event(random.Random(seed), with_response=False))


@settings(FUZZ, max_examples=3000)
@given(seed=SEEDS)
def test_viewer_response_never_raises_on_generated_events(fuzz_edge: None, seed: int) -> None:
    """GIVEN any event WHEN viewer-response runs THEN the event's own response comes back."""
    _check_viewer_response(random_event(random.Random(seed), with_response=True))


@settings(FUZZ, max_examples=300)
@given(event=events(with_response=True))
def test_handlers_never_raise_on_structural_events(fuzz_edge: None, event: Any) -> None:
    """GIVEN events whose every field hypothesis drew WHEN each handler runs THEN each
    returns its own part of the event (or a generated response)."""
    _check_viewer_request(event)
    _check_origin_request(event)
    _check_viewer_response(event)
