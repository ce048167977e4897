"""CloudFront origin-request trigger: send a cache miss to its variant's origin.

Only origin-facing triggers may change the origin, so viewer-request records the variant in a
header and this trigger acts on it: a custom origin (domain, port, protocol, path) or an S3
one, with the Host header set to the new origin's domain. The rule is the one viewer-request
chose, named in its rule header (``rules.chosen``): the URI may have been rewritten into
another rule's paths, so it is never used to find the rule again.
"""

from __future__ import annotations

import time
from typing import Any

from edge import actions, config, events, rules
from edge.log import warn

TRIGGER = "origin-request"


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
    found = rules.chosen(request, cfg, cache, now)
    if found is None:
        return None
    origin: dict[str, Any] | None = (found[1].get("actions") or {}).get("set_origin")
    return origin


def custom_origin(origin: dict[str, Any]) -> dict[str, Any]:
    """CloudFront's custom-origin object for a custom ``set_origin`` action."""
    custom: dict[str, Any] = actions.origin_object({**origin, "kind": "custom"})["custom"]
    return custom
