"""Tests for edge.segments and the segment header the triggers carry to the origin."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge import config, origin_request, rules, segments, viewer_request, viewer_response

HOST = "demo.example.com"
WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15"

# Real User-Agent strings as browsers send them, and the label each must get.
USER_AGENTS = [
    (f"{WIN} Chrome/131.0.0.0 Safari/537.36", "chrome-131", "desktop"),
    (f"{WIN} Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86", "edge-131", "desktop"),
    (f"{WIN} Chrome/70.0.3538.102 Safari/537.36 Edge/18.19045", "edge-18", "desktop"),
    (f"{WIN} Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0", "opera-115", "desktop"),
    (f"{WIN} Chrome/131.0.0.0 YaBrowser/24.12.0.0 Safari/537.36", "yandex-24", "desktop"),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "firefox-133",
        "desktop",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko",
        "ie-11",
        "desktop",
    ),
    (  # IE 11 in compatibility view says MSIE 7.0; Trident/7.0 is what it really is
        "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; .NET4.0C)",
        "ie-11",
        "desktop",
    ),
    ("Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; Trident/6.0)", "ie-10", "desktop"),
    ("Mozilla/4.0 (compatible; MSIE 8.0; Windows NT 6.1; Trident/4.0)", "ie-8", "desktop"),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/18.1 Safari/605.1.15",
        "safari-18",
        "desktop",
    ),
    (
        f"{IPHONE} (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
        "safari-18",
        "mobile",
    ),
    (  # an app's web view: no Safari or Version token, the iOS version is WebKit's
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/450.0.0.38.108]",
        "safari-17",
        "mobile",
    ),
    (
        f"{IPHONE} (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
        "chrome-131",
        "mobile",
    ),
    (
        f"{IPHONE} (KHTML, like Gecko) FxiOS/133.0 Mobile/15E148 Safari/605.1.15",
        "firefox-133",
        "mobile",
    ),
    (
        f"{IPHONE} (KHTML, like Gecko) Version/18.0 EdgiOS/131.0.2903.92 Mobile/15E148 "
        "Safari/605.1.15",
        "edge-131",
        "mobile",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 17_6 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
        "safari-17",
        "tablet",
    ),
    (
        "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36",
        "chrome-131",
        "mobile",
    ),
    (  # an Android tablet leaves "Mobile" out
        "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "chrome-131",
        "tablet",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
        "samsung-26",
        "mobile",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.2903.87",
        "edge-131",
        "mobile",
    ),
    (
        "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0",
        "firefox-133",
        "mobile",
    ),
    (
        "Opera/9.80 (Android; Opera Mini/7.5.33361/31.1448; U; en) Presto/2.8.119 Version/11.1010",
        "opera-mini-7",
        "mobile",
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/131.0.0.0 Safari/537.36",
        "chrome-131",
        "desktop",
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
        "firefox-133",
        "desktop",
    ),
    ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot", "bot"),
    (  # a crawler that also says Chrome is still a bot
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
        "+http://www.bing.com/bingbot.htm) Chrome/116.0.1938.76 Safari/537.36",
        "bot",
        "bot",
    ),
    (f"{WIN} HeadlessChrome/131.0.0.0 Safari/537.36", "bot", "bot"),
    ("facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)", "bot", "bot"),
    ("curl/8.5.0", "bot", "bot"),
    ("Mozilla/5.0", "other", "other"),
    ("", "other", "other"),
    (f"{WIN} Chrome/99999999.0 Safari/537.36", "chrome", "desktop"),
]


@pytest.mark.parametrize(("user_agent", "browser", "device"), USER_AGENTS)
def test_real_user_agents_get_their_browser_and_device(
    user_agent: str, browser: str, device: str
) -> None:
    """GIVEN a real User-Agent WHEN classified THEN the family, major version and device
    class are the ones that browser is."""
    assert segments.classify(user_agent) == (browser, device)


def test_malformed_and_huge_user_agents_are_other() -> None:
    """GIVEN something that is not a usable User-Agent WHEN labelled THEN every part is
    unknown, and nothing raises."""
    for junk in (None, 5, b"Chrome/131", ["Chrome/131"], "Chrome/131 " + "x" * 5000):
        assert segments.label(junk) == "browser=other;device=other;country=xx"


def test_country_comes_from_the_viewer_country_header_or_is_xx() -> None:
    """GIVEN CloudFront-Viewer-Country values WHEN labelled THEN two ASCII letters become
    the lowercase code and anything else is xx."""
    assert segments.label(USER_AGENTS[0][0], "DE") == "browser=chrome-131;device=desktop;country=de"
    for odd in (None, "", "D", "DEU", "1A", "ÄÖ", 49):
        assert segments.country_code(odd) == "xx"


def test_remembered_labels_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN more distinct User-Agents than the container remembers WHEN labelled THEN the
    memory stays bounded and the labels stay right."""
    monkeypatch.setattr(segments, "MAX_REMEMBERED", 8)
    monkeypatch.setattr(segments, "_seen", {})
    for n in range(50):
        assert segments.label(f"Firefox/{n}") == f"browser=firefox-{n};device=other;country=xx"
    assert len(segments._seen) <= 8


@settings(max_examples=500, deadline=None)
@given(user_agent=st.one_of(st.text(max_size=300), st.binary(max_size=50), st.none()))
def test_any_input_gives_a_valid_label(user_agent: Any) -> None:
    """GIVEN any string (or not a string) WHEN labelled THEN the label is well formed."""
    value = segments.label(user_agent)
    assert segments.is_valid(value)
    assert segments.is_valid(segments.with_country(value, "fr"))


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.text(max_size=40),
    token=st.sampled_from([t for t, _, _ in segments._BROWSERS]),
    digits=st.text(alphabet="0123456789.", max_size=12),
    suffix=st.text(max_size=40),
)
def test_user_agents_near_the_tokens_give_valid_labels(
    prefix: str, token: str, digits: str, suffix: str
) -> None:
    """GIVEN strings built around the table's tokens WHEN labelled THEN the label is valid."""
    assert segments.is_valid(segments.label(prefix + token + digits + suffix))


def test_is_valid_refuses_labels_the_edge_never_writes() -> None:
    """GIVEN malformed labels WHEN checked THEN each is refused."""
    for bad in (
        "",
        "browser=chrome-131",
        "browser=Chrome;device=desktop;country=de",
        "device=desktop;browser=chrome-131;country=de",
        "browser=;device=desktop;country=de",
        f"browser={'a' * 33};device=desktop;country=de",
        None,
    ):
        assert not segments.is_valid(bad)


# -- the triggers ------------------------------------------------------------------------


@pytest.fixture
def debug_edge(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., None]:
    """Point the edge at the given route items, with the debug header on."""
    path = tmp_path / "edge.json"
    path.write_text(json.dumps({"debug_header": "x-edgeshift-debug"}))
    monkeypatch.setenv(config.ENV_PATH, str(path))
    config.reset()

    def use(items: list[Any]) -> None:
        cache = rules.RuleCache(lambda host: items if host == HOST else [], ttl_seconds=5)
        monkeypatch.setattr(rules, "default_cache", lambda: cache)

    return use


def _request(event: dict[str, Any]) -> dict[str, Any]:
    request: dict[str, Any] = event["Records"][0]["cf"]["request"]
    return request


def _header(request: dict[str, Any], name: str) -> str:
    return str(request["headers"][name][0]["value"])


def test_viewer_request_labels_the_segment_and_drops_a_viewer_copy(
    debug_edge: Callable[..., None],
    route_item: Callable[..., dict[str, Any]],
    cf_event: Callable[..., dict[str, Any]],
) -> None:
    """GIVEN a routed request from IE 11 that also sends its own segment and country headers
    WHEN viewer-request runs THEN the segment is the edge's, with the country unknown (the
    viewer's CloudFront-Viewer-Country is not trusted)."""
    debug_edge([route_item()])
    event = cf_event(
        user_agent=USER_AGENTS[6][0],
        extra_headers={
            "X-Edgeshift-Segment": "browser=chrome-131",
            "CloudFront-Viewer-Country": "US",
        },
    )

    request = viewer_request.handler(event, None)

    assert _header(request, "x-edgeshift-segment") == "browser=ie-11;device=desktop;country=xx"


def test_origin_request_fills_in_the_country_cloudfront_added(
    debug_edge: Callable[..., None],
    route_item: Callable[..., dict[str, Any]],
    cf_event: Callable[..., dict[str, Any]],
) -> None:
    """GIVEN a request viewer-request labelled WHEN CloudFront adds CloudFront-Viewer-Country
    and origin-request runs THEN the origin gets the segment with that country."""
    debug_edge([route_item()])
    event = cf_event(user_agent=USER_AGENTS[0][0])
    request = viewer_request.handler(event, None)
    request["headers"]["cloudfront-viewer-country"] = [
        {"key": "CloudFront-Viewer-Country", "value": "DE"}
    ]

    out = origin_request.handler(cf_event_of(request, "origin-request"), None)

    assert _header(out, "x-edgeshift-segment") == "browser=chrome-131;device=desktop;country=de"


def test_origin_request_leaves_a_segment_without_country_as_it_is(
    debug_edge: Callable[..., None],
    route_item: Callable[..., dict[str, Any]],
    cf_event: Callable[..., dict[str, Any]],
) -> None:
    """GIVEN a distribution that does not forward CloudFront-Viewer-Country WHEN origin-request
    runs THEN the segment keeps country=xx."""
    debug_edge([route_item()])
    request = viewer_request.handler(cf_event(user_agent=USER_AGENTS[0][0]), None)

    out = origin_request.handler(cf_event_of(request, "origin-request"), None)

    assert _header(out, "x-edgeshift-segment").endswith(";country=xx")


def test_debug_header_shows_the_segment(
    debug_edge: Callable[..., None],
    route_item: Callable[..., dict[str, Any]],
    cf_event: Callable[..., dict[str, Any]],
) -> None:
    """GIVEN the debug header on WHEN a response goes back THEN it names the segment."""
    debug_edge([route_item()])
    request = viewer_request.handler(cf_event(user_agent=USER_AGENTS[11][0]), None)
    event = cf_event_of(request, "viewer-response")
    event["Records"][0]["cf"]["response"] = {"status": "200", "headers": {}}

    response = viewer_response.handler(event, None)

    debug = response["headers"]["x-edgeshift-debug"][0]["value"]
    assert debug.endswith("; segment=browser=safari-18;device=mobile;country=xx")


def test_generated_response_debug_header_shows_the_segment(
    debug_edge: Callable[..., None],
    route_item: Callable[..., dict[str, Any]],
    cf_event: Callable[..., dict[str, Any]],
) -> None:
    """GIVEN a respond action WHEN viewer-request answers by itself THEN its debug header
    names the segment too."""
    respond = {"respond": {"status": 200, "body": "hi"}}
    debug_edge([route_item(canary_weight=10_000, canary_actions=respond)])

    response = viewer_request.handler(cf_event(user_agent="curl/8.5.0"), None)

    debug = response["headers"]["x-edgeshift-debug"][0]["value"]
    assert debug.endswith("; segment=browser=bot;device=bot;country=xx")


def cf_event_of(request: dict[str, Any], event_type: str) -> dict[str, Any]:
    cf = {"config": {"eventType": event_type}, "request": request}
    return {"Records": [{"cf": cf}]}
