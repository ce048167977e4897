"""CloudFront origin-request trigger: send a cache miss to its variant's origin.

Only origin-facing triggers may change the origin, so viewer-request records the variant in a
header and this trigger acts on it: a custom origin (domain, port, protocol, path) or an S3
one, with the Host header set to the new origin's domain. The rule is the one viewer-request
chose, named in its rule header (``rules.chosen``): the URI may have been rewritten into
another rule's paths, so it is never used to find the rule again. It also fills the viewer's
country into the segment header, from the ``CloudFront-Viewer-Country`` CloudFront adds.
"""

from __future__ import annotations

import time
from typing import Any

from edge import actions, config, events, rules, segments
from edge.log import warn

TRIGGER = "origin-request"
COUNTRY_HEADER = "cloudfront-viewer-country"


def handler(event: dict[str, Any], context: object) -> Any:
    """Return the request pointed at the variant's origin, or unchanged."""
    request = events.part_of(event, "request", TRIGGER)
    try:
        if not events.is_trigger(event, TRIGGER):
            return request
        cfg = config.load()
        origin = decide(request, cfg, rules.default_cache(), time.monotonic())
        segment = located_segment(request, cfg)
        new_origin = actions.origin_object(origin) if origin is not None else None
        # The assignments below cannot fail once everything is computed: all or nothing.
        if segment is not None:
            request["headers"][cfg.segment_header] = [
                {"key": actions.display_name(cfg.segment_header), "value": segment}
            ]
        if origin is not None:
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


def located_segment(request: Any, cfg: config.EdgeConfig) -> str | None:
    """The segment viewer-request labelled, with the viewer's country filled in; None when
    there is no label or no country to add.

    CloudFront adds ``CloudFront-Viewer-Country`` after the viewer-request event (when the
    origin request policy names it), so this is the first trigger that can trust it.
    """
    headers = request.get("headers") if isinstance(request, dict) else None
    segment = actions.first_header(headers, cfg.segment_header)
    country = actions.first_header(headers, COUNTRY_HEADER)
    if not segment or not country or not segments.is_valid(segment):
        return None
    return segments.with_country(segment, country)


def custom_origin(origin: dict[str, Any]) -> dict[str, Any]:
    """CloudFront's custom-origin object for a custom ``set_origin`` action."""
    custom: dict[str, Any] = actions.origin_object({**origin, "kind": "custom"})["custom"]
    return custom
