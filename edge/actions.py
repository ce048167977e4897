"""Variant actions: rendering templates and building what the triggers hand back.

Whether an action is well-formed is ``edge.validate``'s question (the orchestrator asks it
too, when a route is written); this module applies actions that passed it, and re-checks at
render time what only the request can decide (a Location that came out as ``//host``, a
header value with a line break, a URI CloudFront would reject).

Templates (``set_uri``, ``set_querystring``, ``set_headers`` values, ``redirect.location``)
name fields in braces: ``{uri}``, ``{version}``, ``{variant}``, ``{host}``,
``{header:<name>}`` (the first value of a request header, "" if absent) and, in
``set_querystring`` and ``redirect.location`` only, ``{querystring}``. Substitution is one
pass, so a value that itself contains ``{uri}`` is never expanded again. Cookie,
Authorization and the edge's own headers always render as "", whatever a rule says.
"""

from __future__ import annotations

import re
from typing import Any

from edge.cloudfront import MAX_GENERATED_RESPONSE_BYTES, TOKEN
from edge.validate import (
    ACTION_NAMES,
    BASE_FIELDS,
    QUERY_FIELDS,
    REDIRECT_STATUSES,
    RESERVED_PREFIX,
    SECRET_HEADERS,
    template_problem,
)

__all__ = [
    "ACTION_NAMES",
    "BASE_FIELDS",
    "QUERY_FIELDS",
    "REDIRECT_STATUSES",
    "TOKEN",
    "display_name",
    "first_header",
    "generated_response",
    "origin_object",
    "render",
    "template_problem",
]
MAX_VIEWER_RESPONSE_BYTES = MAX_GENERATED_RESPONSE_BYTES

_FIELD = re.compile(r"\{([a-z]+)(?::([A-Za-z0-9_-]+))?\}")


def render(
    template: str,
    *,
    fields: dict[str, str],
    headers: dict[str, Any],
    quote_values: bool = False,
    hidden: frozenset[str] = frozenset(),
) -> str:
    """Fill ``template`` in one pass; unknown or malformed ``{...}`` are left as they are.

    ``quote_values`` percent-encodes header values, which come from the viewer, before they
    go into a URI or query string. Secret headers, the edge's own and ``hidden`` render as "".
    """

    def value(found: re.Match[str]) -> str:
        name, header = found.group(1), found.group(2)
        if header is not None:
            if name != "header":
                return found.group(0)
            lowered = header.lower()
            if lowered in SECRET_HEADERS or lowered in hidden:
                return ""
            if lowered.startswith(RESERVED_PREFIX):
                return ""
            text = first_header(headers, lowered)
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


def _quote(text: str) -> str:
    from urllib.parse import quote  # only templates naming a header pay for this import

    return quote(text, safe="-._~")
