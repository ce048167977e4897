"""An independent check of what each trigger hands back, by CloudFront's documented rules.

Written from AWS's pages, not from ``edge/cloudfront.py``, so a rule the edge forgets is
caught here: "Restrictions on all edge functions" (disallowed and read-only headers per event
type, query strings, URI) and "Quotas on Lambda@Edge" (generated response size).
"""

from __future__ import annotations

import json
import re
from typing import Any

DISALLOWED = {
    "connection", "expect", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "trailer", "upgrade", "x-accel-buffering", "x-accel-charset",
    "x-accel-limit-rate", "x-accel-redirect", "x-amzn-auth", "x-amzn-cf-billing",
    "x-amzn-cf-id", "x-amzn-cf-xff", "x-amzn-errortype", "x-amzn-fle-profile",
    "x-amzn-header-count", "x-amzn-header-order", "x-amzn-lambda-integration-tag",
    "x-amzn-requestid", "x-cache", "x-forwarded-proto", "x-real-ip",
}  # fmt: skip
DISALLOWED_PATTERNS = ("x-amz-cf-", "x-edge-")
READ_ONLY = {
    "viewer-request": {"content-length", "host", "transfer-encoding", "via"},
    "origin-request": {
        "accept-encoding", "content-length", "if-modified-since", "if-none-match", "if-range",
        "if-unmodified-since", "transfer-encoding", "via",
    },
    "viewer-response": {"warning", "via"},
}  # fmt: skip
MAX_GENERATED = 40 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _disallowed(name: str) -> bool:
    return name in DISALLOWED or name.startswith(DISALLOWED_PATTERNS)


def _header_problems(
    before: dict[str, Any], after: Any, trigger: str, check_read_only: bool = True
) -> list[str]:
    problems = []
    if not isinstance(after, dict):
        return [f"{trigger}: headers are not an object"]
    for name, values in after.items():
        if before.get(name) == values:
            continue  # untouched: whatever the viewer sent is CloudFront's business
        if name != name.lower():
            problems.append(f"{trigger}: header key {name!r} is not lower-case")
        if _disallowed(name):
            problems.append(f"{trigger}: added disallowed header {name}")
        if check_read_only and name in READ_ONLY[trigger]:
            problems.append(f"{trigger}: changed read-only header {name}")
        if not isinstance(values, list) or not values:
            problems.append(f"{trigger}: header {name} is not a list of values")
            continue
        for entry in values:
            value = entry.get("value") if isinstance(entry, dict) else None
            if not isinstance(value, str) or _CONTROL.search(value.replace("\t", "")):
                problems.append(f"{trigger}: header {name} has a bad value {value!r}"[:200])
            key = entry.get("key") if isinstance(entry, dict) else None
            if key is not None and (not isinstance(key, str) or key.lower() != name):
                problems.append(f"{trigger}: header {name} has key {key!r}")
    if check_read_only:
        for name in READ_ONLY[trigger]:
            if name in before and after.get(name) != before[name]:
                problems.append(f"{trigger}: removed or changed read-only header {name}")
    return problems


def _uri_problems(request: dict[str, Any]) -> list[str]:
    uri, query = request.get("uri"), request.get("querystring", "")
    problems = []
    if not isinstance(uri, str) or not uri.startswith("/"):
        problems.append(f"uri {uri!r} does not start with '/'"[:200])
    if not isinstance(query, str) or re.search(r"[\x00-\x20\x7f#]", query or ""):
        problems.append("query string holds spaces, controls or '#'")
    sized = isinstance(uri, str) and isinstance(query, str)
    if sized and len(uri) + (len(query) + 1 if query else 0) >= 8192:
        problems.append("URI with query string is 8,192 characters or more")
    return problems


def _location_problems(location: str, literal_hosts: set[str]) -> list[str]:
    if location.startswith("//") or location.startswith("/\\") or _CONTROL.search(location):
        return [f"redirect to another host: {location!r}"[:200]]
    if location.startswith("/"):
        return []
    found = re.match(r"^https?://([^/?#]*)", location)
    if not found or found.group(1) not in literal_hosts:
        return [f"redirect to a host no rule names: {location!r}"[:200]]
    return []


def generated_problems(response: dict[str, Any], literal_hosts: set[str]) -> list[str]:
    """A response a viewer-request function returned instead of the request."""
    problems = []
    status = response.get("status")
    if not isinstance(status, str) or not status.isdigit() or not 200 <= int(status) <= 599:
        problems.append(f"generated: bad status {status!r}")
    headers = response.get("headers", {})
    problems += _header_problems({}, headers, "viewer-request", check_read_only=False)
    for name in ("content-length", "transfer-encoding", "via"):
        if name in headers:
            problems.append(f"generated: sets {name}")
    body = response.get("body", "")
    size = len(json.dumps(body)) - 2 if body else 0
    size = max(size, len(body.encode()))
    for name, values in headers.items():
        size += sum(len(name) + len(v["value"].encode()) + 4 for v in values)
    if size > MAX_GENERATED:
        problems.append(f"generated: {size} bytes, over {MAX_GENERATED}")
    if status in ("301", "302", "303", "307", "308"):
        (location,) = headers.get("location", [{"value": ""}])
        problems += _location_problems(location["value"], literal_hosts)
    return problems


def viewer_request_problems(
    before: dict[str, Any], after: Any, literal_hosts: set[str]
) -> list[str]:
    """Everything wrong with viewer-request's result for the request ``before``."""
    if isinstance(after, dict) and "status" in after:
        return generated_problems(after, literal_hosts)
    if not isinstance(after, dict):
        return ["viewer-request returned neither a request nor a response"]
    return _header_problems(before["headers"], after.get("headers"), "viewer-request") + (
        _uri_problems(after) if (after.get("uri"), after.get("querystring")) != (
            before.get("uri"), before.get("querystring")) else []
    )  # fmt: skip


def origin_request_problems(before: dict[str, Any], after: Any) -> list[str]:
    if not isinstance(after, dict):
        return ["origin-request returned no request"]
    problems = _header_problems(before["headers"], after.get("headers"), "origin-request")
    origin = after.get("origin")
    if origin != before.get("origin"):
        if not isinstance(origin, dict) or len(origin) != 1 or set(origin) - {"custom", "s3"}:
            return [*problems, f"origin-request: malformed origin {origin!r}"[:200]]
        ((kind, spec),) = origin.items()
        need = {
            "custom": {"domainName", "port", "protocol", "path", "sslProtocols",
                       "readTimeout", "keepaliveTimeout", "customHeaders"},
            "s3": {"domainName", "path", "authMethod", "region", "customHeaders"},
        }[kind]  # fmt: skip
        if set(spec) != need:
            problems.append(f"origin-request: {kind} origin has {sorted(spec)}")
        path = spec.get("path", "")
        if path and (not path.startswith("/") or path.endswith("/")):
            problems.append(f"origin-request: origin path {path!r}")
        host = after["headers"].get("host", [{}])[0].get("value")
        if host != spec.get("domainName"):
            problems.append("origin-request: Host does not name the new origin")
    return problems


def viewer_response_problems(before: dict[str, Any], after: Any) -> list[str]:
    if not isinstance(after, dict):
        return ["viewer-response returned no response"]
    problems = _header_problems(before["headers"], after.get("headers"), "viewer-response")
    if after.get("status") != before.get("status"):
        problems.append("viewer-response: changed the status (not allowed)")
    return problems
