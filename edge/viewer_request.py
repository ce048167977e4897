"""CloudFront viewer-request trigger: assign the viewer a variant and rewrite the URI.

The variant lands in a request header that is part of the cache key, so each variant has its
own cache entries and the origin-request trigger can switch origins on a miss. Whatever goes
wrong, the viewer gets the request CloudFront sent, which means stable.
"""

from __future__ import annotations

import time
from typing import Any

from edge import assign, config, rules
from edge.log import warn


def handler(event: dict[str, Any], context: object) -> Any:
    """Return the request with the variant header (and maybe a new URI), or unchanged."""
    request = _request_of(event)
    try:
        cfg = config.load()
        # The variant header is ours: a viewer's own copy must never reach origin-request,
        # or a pass-through would let anyone pick the canary.
        request["headers"].pop(cfg.variant_header, None)
        decision = decide(request, cfg, rules.default_cache(), time.monotonic())
        if decision is not None:
            header, value, uri = decision
            # Every lookup above can fail; these two assignments cannot, so a request is
            # either fully rewritten or untouched.
            request["uri"] = uri
            request["headers"][header] = [{"key": header_key(header), "value": value}]
    except Exception as exc:  # nothing may reach CloudFront as an error
        warn("viewer-request passed through", error=repr(exc))
    return request


def decide(
    request: dict[str, Any], cfg: config.EdgeConfig, cache: rules.RuleCache, now: float
) -> tuple[str, str, str] | None:
    """Work out (header name, variant name, new uri) for a request without touching it."""
    headers = request["headers"]
    uri = request["uri"]
    if not isinstance(headers, dict) or not isinstance(uri, str):
        return None
    host = rules.normalize_host(headers["host"][0]["value"])
    rule = rules.match(cache.rules_for(host, now), uri)
    if rule is None:
        return None
    variant = assign.choose_variant(
        rule["variants"], assign.bucket_of(rule["salt"], assign.viewer_key(request))
    )
    if variant is None:
        return None
    template = (variant.get("actions") or {}).get("set_uri")
    if template is not None:
        uri = rules.render_uri(template, uri=uri, variant=variant, host=host)
        if not uri.startswith("/"):
            raise ValueError(f"set_uri produced {uri!r}, which CloudFront rejects")
    return cfg.variant_header, variant["name"], uri


def header_key(name: str) -> str:
    """CloudFront's display form of a header name: ``x-a-b`` -> ``X-A-B``."""
    return "-".join(part[:1].upper() + part[1:] for part in name.split("-"))


def _request_of(event: Any) -> Any:
    try:
        return event["Records"][0]["cf"]["request"]
    except Exception:  # not a CloudFront event: there is nothing to change
        warn("viewer-request got an event without a request")
        return None
