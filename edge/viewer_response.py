"""CloudFront viewer-response trigger: Cache-Control override, sticky cookie, debug header.

It sees the request as viewer-request left it (variant header, rule header, minted sticky
id), so it acts on the rule viewer-request chose, as origin-request does. CloudFront does
not run it for responses generated in viewer-request (those carry the same headers already)
nor when the origin answered 400 or more. It only ever edits response headers.
"""

from __future__ import annotations

import time
from typing import Any

from edge import actions, cloudfront, config, events, rules, validate
from edge.log import warn

TRIGGER = "viewer-response"


def handler(event: dict[str, Any], context: object) -> Any:
    """Return the response with the rule's headers added, or unchanged."""
    response = events.part_of(event, "response", TRIGGER)
    try:
        if not events.is_trigger(event, TRIGGER):
            return response
        request = events.cf_record(event)["request"]
        extra = decide(request, config.load(), rules.default_cache(), time.monotonic())
        if extra:
            headers = response["headers"]
            for name, values in extra.items():
                if name == "set-cookie":  # the origin's own cookies stay
                    headers.setdefault(name, []).extend(values)
                else:
                    headers[name] = values
    except Exception as exc:  # nothing may reach CloudFront as an error
        warn("viewer-response passed through", error=repr(exc))
    return response


def decide(
    request: dict[str, Any], cfg: config.EdgeConfig, cache: rules.RuleCache, now: float
) -> dict[str, list[dict[str, str]]]:
    """Response headers to set for the request's rule and variant ({} when none apply)."""
    found = rules.chosen(request, cfg, cache, now)
    if found is None:
        return {}
    rule, variant = found
    minted = actions.first_header(request["headers"], cfg.sticky_header) or None
    segment = actions.first_header(request["headers"], cfg.segment_header)
    extra = validate.generated_extra(rule, variant, minted, cfg.debug_header, segment)
    return {
        name: [{"key": actions.display_name(name), "value": value}]
        for name, value in extra.items()
        if cloudfront.header_value_problem(value) is None
    }
