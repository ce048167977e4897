"""CloudFront origin-request trigger: send a cache miss to its variant's origin.

Only origin-facing triggers may change the origin, so viewer-request records the variant in a
header and this trigger acts on it: a custom origin (domain, port, protocol, path) or an S3
one, with the Host header set to the new origin's domain. The URI may already be rewritten by
viewer-request, so the rule is found by undoing that rewrite (``rules.find_rule``).
"""

from __future__ import annotations

import time
from typing import Any

from edge import actions, config, events, rules
from edge.log import warn

TRIGGER = "origin-request"
# Kept here for callers of the first version; the logic lives in rules.
find_rule = rules.find_rule
original_uri = rules.original_uri


def handler(event: dict[str, Any], context: object) -> Any:
    """Return the request pointed at the variant's origin, or unchanged."""
    request = events.part_of(event, "request", TRIGGER)
    try:
        if not events.is_trigger(event, TRIGGER):
            return request
        origin = decide(request, config.load(), rules.default_cache(), time.monotonic())
        if origin is not None:
            new_origin = actions.origin_object(origin)
            # Both assignments below cannot fail once new_origin exists: all or nothing.
            request["origin"] = new_origin
            request["headers"]["host"] = [{"key": "Host", "value": origin["domain"]}]
    except Exception as exc:  # nothing may reach CloudFront as an error
        warn("origin-request passed through", error=repr(exc))
    return request


def decide(
    request: dict[str, Any], cfg: config.EdgeConfig, cache: rules.RuleCache, now: float
) -> dict[str, Any] | None:
    """The ``set_origin`` action of the request's variant, if it has one."""
    headers = request["headers"]
    uri = request["uri"]
    if not isinstance(headers, dict) or not isinstance(uri, str):
        return None
    marked = headers.get(cfg.variant_header)
    if not marked:
        return None
    name = marked[0]["value"]
    # In origin-request, Host names the origin unless the distribution forwards the viewer's.
    carried = headers.get(cfg.host_header) or headers["host"]
    host = rules.normalize_host(carried[0]["value"])
    found = rules.find_rule(cache.matcher_for(host, now), uri, name, host, headers)
    if found is None:
        return None
    origin: dict[str, Any] | None = (found[1].get("actions") or {}).get("set_origin")
    return origin


def custom_origin(origin: dict[str, Any]) -> dict[str, Any]:
    """CloudFront's custom-origin object for a custom ``set_origin`` action."""
    custom: dict[str, Any] = actions.origin_object({**origin, "kind": "custom"})["custom"]
    return custom
