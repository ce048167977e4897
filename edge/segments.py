"""The segment a request belongs to: browser family and major version, device class, country.

Applications tag their error and conversion counts with this label, so a release that breaks
one browser shows up in that browser's counts even when it is lost in the totals. The label
is ``browser=chrome-131;device=desktop;country=de``; every value is lowercase ``[a-z0-9-]``
and at most 32 characters, whatever the User-Agent held.

The User-Agent table is ordered, first match wins, because browsers name their ancestors:
Edge, Opera and Samsung Internet also say ``Chrome/``, Chrome also says ``Safari/``, and an
IE 11 in compatibility view says ``MSIE 7.0`` beside ``Trident/7.0``. Bots come first so a
crawler pretending to be Chrome is still counted as a bot.

Country: CloudFront adds ``CloudFront-Viewer-Country`` after the viewer-request event, so a
Lambda@Edge viewer-request function only ever sees a copy the viewer sent (anyone can forge
it). viewer-request therefore labels the country ``xx`` (unknown) and origin-request, which
sees the header CloudFront added when the origin request policy names it, fills it in
(``with_country``). Pure string work, no regular expressions: microseconds per request.
"""

from __future__ import annotations

from typing import Any

UNKNOWN = "other"
NO_COUNTRY = "xx"
DIMENSIONS = ("browser", "device", "country")
DEVICES = ("desktop", "mobile", "tablet", "bot", "other")
# Longer is not a browser: real User-Agents stay well under 1 KB, and scanning a 64 KB one
# for every token would cost more than the rest of the request.
MAX_USER_AGENT_CHARS = 1024
_VERSION_DIGITS = 4  # "chrome-99999999" is not a bucket anyone can act on

# Matched case-insensitively against the lowercased User-Agent. "bot/", "bot;" and "bot-"
# rather than "bot", which would also match phone makers such as Cubot.
_BOT_TOKENS = (
    "bot/", "bot;", "bot-", "spider", "crawl", "slurp", "facebookexternalhit", "headless",
    "lighthouse", "python-", "curl/", "wget/", "go-http-client",
)  # fmt: skip

# (token, family, where the major version is): "after" reads the digits right after the
# token; "version" reads them after "Version/" (Safari, old Opera); a number is a fixed
# version (Trident/7.0 is IE 11 whatever MSIE says). Case-sensitive, as browsers send them.
_BROWSERS: tuple[tuple[str, str, Any], ...] = (
    ("Edg/", "edge", "after"),
    ("EdgA/", "edge", "after"),
    ("EdgiOS/", "edge", "after"),
    ("Edge/", "edge", "after"),  # EdgeHTML, before Chromium
    ("OPR/", "opera", "after"),
    ("OPT/", "opera", "after"),
    ("OPiOS/", "opera", "after"),
    ("Opera Mini/", "opera-mini", "after"),
    ("Opera/", "opera", "version"),
    ("SamsungBrowser/", "samsung", "after"),
    ("YaBrowser/", "yandex", "after"),
    ("UCBrowser/", "uc", "after"),
    ("Firefox/", "firefox", "after"),
    ("FxiOS/", "firefox", "after"),
    ("CriOS/", "chrome", "after"),
    ("Chrome/", "chrome", "after"),
    ("Trident/7.", "ie", 11),
    ("MSIE ", "ie", "after"),
    ("Version/", "safari", "after"),
)
# iOS apps' web views (Facebook, Instagram, Gmail) send no Safari or Version token; they run
# the system WebKit, whose version is the iOS version, so they count as that Safari.
_IOS_VERSION_TOKENS = (" OS ", "iPhone OS ")

_TABLET_TOKENS = ("iPad", "Tablet", "tablet", "Kindle", "Silk/", "PlayBook", "Nexus 7", "Nexus 10")
_MOBILE_TOKENS = ("Mobi", "iPhone", "iPod", "Windows Phone", "Opera Mini", "BlackBerry")
_DESKTOP_TOKENS = ("Windows NT", "Macintosh", "X11", "CrOS", "Linux")

_ALLOWED = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-")
# A site's traffic comes from a few hundred distinct User-Agents, so a container remembers
# the labels it worked out: a repeat costs one dict lookup instead of the table scan.
MAX_REMEMBERED = 2048
_seen: dict[str, str] = {}


def label(user_agent: Any, country: Any = None) -> str:
    """The segment header value for a request; ``other``/``xx`` parts for what is unknown."""
    known = _seen.get(user_agent) if isinstance(user_agent, str) else None
    if known is None:
        browser, device = classify(user_agent)
        known = f"browser={browser};device={device};country="
        if isinstance(user_agent, str) and len(user_agent) <= MAX_USER_AGENT_CHARS:
            if len(_seen) >= MAX_REMEMBERED:
                _seen.clear()  # cheaper than an LRU, and a busy site refills it in moments
            _seen[user_agent] = known
    return known + country_code(country)


def classify(user_agent: Any) -> tuple[str, str]:
    """(browser, device) for a User-Agent; anything malformed or huge is ("other", "other")."""
    if not isinstance(user_agent, str) or not 0 < len(user_agent) <= MAX_USER_AGENT_CHARS:
        return UNKNOWN, UNKNOWN
    lowered = user_agent.lower()
    for token in _BOT_TOKENS:
        if token in lowered:
            return "bot", "bot"
    return browser_of(user_agent), device_of(user_agent)


def browser_of(user_agent: str) -> str:
    """``family-major`` from the first table entry the User-Agent holds, else ``other``."""
    for token, family, where in _BROWSERS:
        at = user_agent.find(token)
        if at < 0:
            continue
        if isinstance(where, int):
            return f"{family}-{where}"
        if where == "version":
            at = user_agent.find("Version/")
            token = "Version/"
            if at < 0:
                return family
        if family == "safari" and "Safari/" not in user_agent and "Mobile/" not in user_agent:
            return UNKNOWN  # "Version/" alone is some other client's own numbering
        return _bucket(family, user_agent, at + len(token))
    if "AppleWebKit/" in user_agent and ("iPhone" in user_agent or "iPad" in user_agent):
        for token in _IOS_VERSION_TOKENS:
            at = user_agent.find(token)
            if at >= 0:
                return _bucket("safari", user_agent, at + len(token))
    return UNKNOWN


def device_of(user_agent: str) -> str:
    """Tablet before mobile (iPads and Android tablets also say "Mobile" or "Android")."""
    for token in _TABLET_TOKENS:
        if token in user_agent:
            return "tablet"
    for token in _MOBILE_TOKENS:
        if token in user_agent:
            return "mobile"
    if "Android" in user_agent:
        return "tablet"  # Android phones say "Mobile"; tablets leave it out (Google's advice)
    for token in _DESKTOP_TOKENS:
        if token in user_agent:
            return "desktop"
    return UNKNOWN


def country_code(value: Any) -> str:
    """ISO 3166-1 alpha-2, lowercase, from ``CloudFront-Viewer-Country``; ``xx`` otherwise."""
    if isinstance(value, str) and len(value) == 2 and value.isascii() and value.isalpha():
        return value.lower()
    return NO_COUNTRY


def with_country(segment: str, country: Any) -> str:
    """``segment`` with its country part replaced (origin-request knows the real country)."""
    head, sep, _ = segment.rpartition(";country=")
    if not sep:
        return segment
    return f"{head};country={country_code(country)}"


def is_valid(segment: Any) -> bool:
    """True when ``segment`` is a label this module could have written."""
    if not isinstance(segment, str):
        return False
    parts = segment.split(";")
    if len(parts) != len(DIMENSIONS):
        return False
    for part, dimension in zip(parts, DIMENSIONS, strict=True):
        name, sep, value = part.partition("=")
        if name != dimension or not sep or not 0 < len(value) <= 32:
            return False
        if not _ALLOWED.issuperset(value):
            return False
    return True


def _bucket(family: str, user_agent: str, start: int) -> str:
    end = start
    limit = min(len(user_agent), start + _VERSION_DIGITS)
    while end < limit and "0" <= user_agent[end] <= "9":
        end += 1
    if end == start:
        return family
    if end < len(user_agent) and "0" <= user_agent[end] <= "9":
        return family  # more digits than any real major version: not a version
    return f"{family}-{int(user_agent[start:end])}"
