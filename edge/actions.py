"""Variant actions: the edge-side check of each action's shape and the code that applies them.

The orchestrator validates actions when a route is written (``orchestrator/models/route.py``,
with the same limits; a test keeps the two lists equal). The edge checks them again when it
reads a route, because an item can reach the table by other paths, and a rule with an action
the edge cannot apply safely is skipped rather than half-applied.

Templates (``set_uri``, ``set_querystring``, ``set_headers`` values, ``redirect.location``)
name fields in braces: ``{uri}``, ``{version}``, ``{variant}``, ``{host}``,
``{header:<name>}`` (the first value of a request header, "" if absent) and, in
``set_querystring`` and ``redirect.location`` only, ``{querystring}``. Substitution is one
pass, so a value that itself contains ``{uri}`` is never expanded again.
"""

from __future__ import annotations

import re
from typing import Any

REDIRECT_STATUSES = {
    301: "Moved Permanently",
    302: "Found",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
}
# Lambda@Edge limit for a response generated in a viewer trigger, headers and body together.
MAX_VIEWER_RESPONSE_BYTES = 40 * 1024
MAX_TEMPLATE_CHARS = 2048
MAX_SET_HEADERS = 20
BASE_FIELDS = frozenset({"uri", "version", "variant", "host"})
QUERY_FIELDS = BASE_FIELDS | {"querystring"}
# Adding any of these makes CloudFront answer 502 (Lambda@Edge "disallowed headers").
DISALLOWED_HEADERS = frozenset(
    {"connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization"}
    | {"proxy-connection", "trailer", "upgrade", "x-cache", "x-real-ip"}
)
DISALLOWED_PREFIXES = ("proxy-", "x-accel-", "x-amz-cf-", "x-amzn-", "x-edge-")
# Read-only in viewer-request, where set_headers runs.
READ_ONLY_HEADERS = frozenset({"content-length", "host", "transfer-encoding", "via"})
# The edge's own headers (variant, sticky key, force token): a route must not forge them.
RESERVED_PREFIX = "x-edgeshift-"
TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
ACTION_NAMES = frozenset(
    {"set_uri", "set_querystring", "set_headers", "set_origin", "redirect", "respond"}
)

_FIELD = re.compile(r"\{([a-z]+)(?::([A-Za-z0-9_-]+))?\}")
_ANY_FIELD = re.compile(r"\{([^{}]*)\}")
_HEADER_VALUE_FORBIDDEN = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


def header_problem(name: str, *, request: bool = True) -> str | None:
    """Why ``name`` cannot be set on a viewer request (or a generated response), or None."""
    lowered = name.lower()
    if not TOKEN.match(name):
        return "is not a valid header name"
    if lowered in DISALLOWED_HEADERS or lowered.startswith(DISALLOWED_PREFIXES):
        return "is a header CloudFront does not let Lambda@Edge set"
    if request and lowered in READ_ONLY_HEADERS:
        return "is read-only in viewer-request"
    if lowered.startswith(RESERVED_PREFIX):
        return f"is reserved for the edge ({RESERVED_PREFIX}*)"
    return None


def template_problem(template: str, allowed: frozenset[str]) -> str | None:
    """Why ``template`` cannot be rendered, or None: every ``{...}`` must name a known field."""
    for found in _ANY_FIELD.finditer(template):
        name, sep, header = found.group(1).partition(":")
        if sep and name == "header" and TOKEN.match(header or "?"):
            continue
        if not sep and name in allowed:
            continue
        known = ", ".join(f"{{{f}}}" for f in sorted(allowed))
        return f"unknown template field {found.group(0)} (known: {known}, {{header:<name>}})"
    return None


def render(
    template: str,
    *,
    fields: dict[str, str],
    headers: dict[str, Any],
    quote_values: bool = False,
) -> str:
    """Fill ``template`` in one pass; unknown or malformed ``{...}`` are left as they are.

    ``quote_values`` percent-encodes header values, which come from the viewer, before they
    go into a URI or query string.
    """

    def value(found: re.Match[str]) -> str:
        name, header = found.group(1), found.group(2)
        if header is not None:
            if name != "header":
                return found.group(0)
            text = first_header(headers, header.lower())
            return _quote(text) if quote_values else text
        return fields.get(name, found.group(0))

    return _FIELD.sub(value, template)


def first_header(headers: Any, name: str) -> str:
    """The first value of header ``name`` in CloudFront's shape, or "" if there is none."""
    values = headers.get(name) if isinstance(headers, dict) else None
    if isinstance(values, list) and values and isinstance(values[0], dict):
        text = values[0].get("value")
        if isinstance(text, str):
            return text
    return ""


_DISPLAY: dict[str, str] = {}


def display_name(name: str) -> str:
    """CloudFront's display form of a header name: ``x-a-b`` -> ``X-A-B`` (memoized)."""
    shown = _DISPLAY.get(name)
    if shown is None:
        shown = "-".join(part[:1].upper() + part[1:] for part in name.split("-"))
        if len(_DISPLAY) < 256:  # route-defined names only; viewer input never lands here
            _DISPLAY[name] = shown
    return shown


def generated_response(
    status: int, description: str, headers: dict[str, str], body: str | None = None
) -> dict[str, Any]:
    """A response in the shape a request trigger returns to answer without the origin."""
    response: dict[str, Any] = {
        "status": str(status),
        "statusDescription": description,
        "headers": {k.lower(): [{"key": display_name(k), "value": v}] for k, v in headers.items()},
    }
    if body is not None:
        response["body"] = body
        response["bodyEncoding"] = "text"
    return response


def respond_size(respond: dict[str, Any]) -> int:
    """Bytes of a ``respond`` action as CloudFront counts them: body plus headers."""
    headers = respond.get("headers") or {}
    size = len(str(respond.get("body", "")).encode())
    size += sum(len(k.encode()) + len(str(v).encode()) + 4 for k, v in headers.items())
    return size + len(str(respond.get("content_type", "")).encode()) + len("content-type: \r\n")


def origin_object(origin: dict[str, Any]) -> dict[str, Any]:
    """CloudFront's ``request.origin`` object for a ``set_origin`` action, custom or S3."""
    if origin.get("kind", "custom") == "s3":
        return {
            "s3": {
                "domainName": origin["domain"],
                "path": origin.get("path", ""),
                "authMethod": origin.get("auth_method") or "none",
                "region": origin.get("region") or "",
                "customHeaders": {},
            }
        }
    return {
        "custom": {
            "domainName": origin["domain"],
            "port": origin["port"],
            "protocol": origin["protocol"],
            "path": origin.get("path", ""),
            "sslProtocols": ["TLSv1.2"],
            "readTimeout": 30,
            "keepaliveTimeout": 5,
            "customHeaders": {},
        }
    }


def valid_actions(actions: Any) -> bool:
    """True if every action in ``actions`` is known and well-formed (see module docstring)."""
    if not isinstance(actions, dict) or not ACTION_NAMES.issuperset(actions):
        return False
    present = [name for name, value in actions.items() if value is not None]
    terminal = [name for name in present if name in ("redirect", "respond")]
    # A redirect or a synthetic response ends the request: nothing else could apply.
    if terminal and len(present) > 1:
        return False
    checks = (
        ("set_uri", _valid_set_uri),
        ("set_querystring", _valid_querystring),
        ("set_headers", _valid_set_headers),
        ("set_origin", valid_origin),
        ("redirect", _valid_redirect),
        ("respond", _valid_respond),
    )
    return all(actions.get(name) is None or check(actions[name]) for name, check in checks)


def valid_origin(origin: Any) -> bool:
    """True for a custom origin (domain, port, protocol, path) or an S3 one (kind "s3")."""
    if not isinstance(origin, dict):
        return False
    domain, path = origin.get("domain"), origin.get("path", "")
    if not isinstance(domain, str) or not domain or ":" in domain:
        return False
    # CloudFront rejects an origin path that lacks a leading slash or ends with one.
    if not isinstance(path, str) or not (path == "" or (path[0] == "/" and path[-1] != "/")):
        return False
    kind = origin.get("kind", "custom")
    if kind == "s3":
        auth = origin.get("auth_method") or "none"
        region = origin.get("region")
        return auth in ("none", "origin-access-identity") and (
            auth == "none" or (isinstance(region, str) and bool(region))
        )
    port = origin.get("port")
    return (
        kind == "custom"
        and not isinstance(port, bool)
        and isinstance(port, int)
        and 0 < port < 65536
        and origin.get("protocol") in ("http", "https")
    )


def _quote(text: str) -> str:
    from urllib.parse import quote  # only templates naming a header pay for this import

    return quote(text, safe="-._~")


def _valid_template(value: Any, allowed: frozenset[str]) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_TEMPLATE_CHARS
        and template_problem(value, allowed) is None
    )


def _valid_set_uri(value: Any) -> bool:
    return _valid_template(value, BASE_FIELDS) and value.startswith("/")


def _valid_querystring(value: Any) -> bool:
    return value == "" or (_valid_template(value, QUERY_FIELDS) and not value.startswith("?"))


def _valid_set_headers(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and len(value) <= MAX_SET_HEADERS
        and all(
            isinstance(name, str)
            and header_problem(name) is None
            and _valid_template(text, BASE_FIELDS)
            and not _HEADER_VALUE_FORBIDDEN.search(text)
            for name, text in value.items()
        )
    )


def _valid_redirect(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    status, location = value.get("status", 302), value.get("location")
    return (
        not isinstance(status, bool)
        and status in REDIRECT_STATUSES
        and isinstance(location, str)
        and _valid_template(location, QUERY_FIELDS)
        and location.startswith(("/", "https://", "http://"))
        and isinstance(value.get("keep_querystring", True), bool)
    )


def _valid_respond(value: Any) -> bool:
    if not isinstance(value, dict):
        return False
    status, body = value.get("status", 200), value.get("body", "")
    headers = value.get("headers") or {}
    return (
        not isinstance(status, bool)
        and isinstance(status, int)
        and 200 <= status <= 599
        and isinstance(body, str)
        and isinstance(value.get("content_type", ""), str)
        and isinstance(headers, dict)
        and all(
            isinstance(k, str) and header_problem(k, request=False) is None and isinstance(v, str)
            for k, v in headers.items()
        )
        and respond_size(value) <= MAX_VIEWER_RESPONSE_BYTES
    )
