"""What CloudFront accepts back from a Lambda@Edge function, per trigger: one place for it.

A function result that breaks one of these rules fails CloudFront's validation and the viewer
gets a 502. The edge checks them when it reads a rule and again when it renders one, and the
orchestrator's route model calls the same functions when a route is written
(``orchestrator/models/route.py``), so the three can never disagree.

Sources (AWS, CloudFront Developer Guide):
- Header lists: "Restrictions on all edge functions", sections "Disallowed headers" and
  "Read-only headers", https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/
  edge-function-restrictions-all.html#function-restrictions-headers. An earlier version of
  the page also listed Content-Encoding, Content-Length and Transfer-Encoding as read-only in
  viewer-response; they stay here, since refusing a harmless header costs less than a 502.
  CloudFront-Viewer-Country is refused in viewer-request ("Restrictions on Lambda@Edge",
  "CloudFront headers").
- Sizes: "Quotas on Lambda@Edge", https://docs.aws.amazon.com/AmazonCloudFront/latest/
  DeveloperGuide/cloudfront-limits.html#limits-lambda-at-edge: a response generated in a
  viewer trigger is at most 40 KB "including headers and body"; the URI including the query
  string must be shorter than 8,192 characters; a query string a function writes cannot hold
  spaces, control characters or ``#``.
"""

from __future__ import annotations

import re

VIEWER_REQUEST = "viewer-request"
ORIGIN_REQUEST = "origin-request"
VIEWER_RESPONSE = "viewer-response"
GENERATED = "generated-response"  # a response a viewer-request function answers with

DISALLOWED_HEADERS = frozenset(
    {
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "trailer",
        "upgrade",
        "x-accel-buffering",
        "x-accel-charset",
        "x-accel-limit-rate",
        "x-accel-redirect",
        "x-cache",
        "x-forwarded-proto",
        "x-real-ip",
    }
)
# X-Amz-Cf-* and X-Edge-* as documented; every X-Amzn-* the page lists (Auth, Cf-Billing,
# Cf-Id, Cf-Xff, Errortype, Fle-Profile, Header-Count, Header-Order, Lambda-Integration-Tag,
# RequestId) is covered by refusing the whole X-Amzn- family; Proxy-* and X-Accel-* likewise.
DISALLOWED_PREFIXES = ("proxy-", "x-accel-", "x-amz-cf-", "x-amzn-", "x-edge-")
READ_ONLY_HEADERS: dict[str, frozenset[str]] = {
    VIEWER_REQUEST: frozenset(
        {"content-length", "host", "transfer-encoding", "via", "cloudfront-viewer-country"}
    ),
    ORIGIN_REQUEST: frozenset(
        {
            "accept-encoding",
            "content-length",
            "if-modified-since",
            "if-none-match",
            "if-range",
            "if-unmodified-since",
            "transfer-encoding",
            "via",
        }
    ),
    VIEWER_RESPONSE: frozenset(
        {"content-encoding", "content-length", "transfer-encoding", "warning", "via"}
    ),
    # A generated response replaces the origin's: only the framing headers are CloudFront's.
    GENERATED: frozenset({"content-length", "transfer-encoding", "via"}),
}
MAX_GENERATED_RESPONSE_BYTES = 40 * 1024
# "must be less than 8,192 characters": the URI, a "?" and the query string together.
MAX_URI_CHARS = 8191
TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_BAD_QUERY = re.compile(r"[\x00-\x20\x7f#]")
_BAD_URI = re.compile(r"[\x00-\x20\x7f#?]")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_problem(name: str, trigger: str) -> str | None:
    """Why a function in ``trigger`` cannot add or change header ``name``, or None."""
    if not isinstance(name, str) or not TOKEN.match(name):
        return "is not a valid header name"
    lowered = name.lower()
    if lowered in DISALLOWED_HEADERS or lowered.startswith(DISALLOWED_PREFIXES):
        return "is a header CloudFront does not let Lambda@Edge set"
    if lowered in READ_ONLY_HEADERS.get(trigger, frozenset()):
        return f"is read-only in {trigger}"
    return None


def header_value_problem(value: str) -> str | None:
    """Why ``value`` cannot be a header value (CR, LF and other controls split headers)."""
    if not isinstance(value, str):
        return "must be a string"
    if _BAD_VALUE.search(value):
        return "cannot hold control characters"
    return None


def uri_problem(uri: str, querystring: str = "") -> str | None:
    """Why CloudFront would reject ``uri`` and ``querystring`` as a function wrote them."""
    if not isinstance(uri, str) or not uri.startswith("/"):
        return "the URI must start with '/'"
    if _BAD_URI.search(uri):
        return "the URI cannot hold spaces, control characters, '?' or '#'"
    if not isinstance(querystring, str):
        return "the query string must be a string"
    if _BAD_QUERY.search(querystring):
        return "the query string cannot hold spaces, control characters or '#'"
    size = len(uri) + (len(querystring) + 1 if querystring else 0)
    if size > MAX_URI_CHARS:
        return f"the URI with its query string is {size} characters; the limit is {MAX_URI_CHARS}"
    return None


def response_size(status: int | str, headers: dict[str, str], body: str = "") -> int:
    """Bytes of a generated response on the wire: status line, every header, the body."""
    size = len(f"HTTP/1.1 {status} \r\n\r\n")
    size += sum(len(k.encode()) + len(str(v).encode()) + 4 for k, v in headers.items())
    return size + len(body.encode())


def response_size_problem(size: int) -> str | None:
    if size > MAX_GENERATED_RESPONSE_BYTES:
        return (
            f"the generated response is {size} bytes with the headers the edge adds; "
            f"viewer triggers allow {MAX_GENERATED_RESPONSE_BYTES}"
        )
    return None
