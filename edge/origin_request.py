"""CloudFront origin-request trigger: send a cache miss to its variant's origin.

Only origin-facing triggers may change the origin, so viewer-request records the variant in a
header and this trigger acts on it. The URI may already be rewritten by viewer-request, so the
rule is found by undoing that rewrite before matching.
"""

from __future__ import annotations

import time
from typing import Any

from edge import config, rules
from edge.log import warn


def handler(event: dict[str, Any], context: object) -> Any:
    """Return the request pointed at the variant's origin, or unchanged."""
    request = _request_of(event)
    try:
        origin = decide(request, config.load(), rules.default_cache(), time.monotonic())
        if origin is not None:
            request["origin"] = {"custom": custom_origin(origin)}
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
    host = rules.normalize_host(headers["host"][0]["value"])
    found = find_rule(cache.rules_for(host, now), uri, name, host)
    if found is None:
        return None
    origin: dict[str, Any] | None = (found[1].get("actions") or {}).get("set_origin")
    return origin


def find_rule(
    candidates: list[rules.Rule], uri: str, name: str, host: str
) -> tuple[rules.Rule, dict[str, Any]] | None:
    """The rule viewer-request matched and its variant ``name``, given the rewritten ``uri``."""
    for rule in candidates:
        variant = rules.find_variant(rule, name)
        template = (variant.get("actions") or {}).get("set_uri") if variant else None
        if (
            variant is not None
            and template is not None
            and _rewrote(template, rule, variant, candidates, uri, host)
        ):
            return rule, variant
    # No rewrite explains the URI: viewer-request left it as it was.
    matched = rules.match(candidates, uri)
    if matched is None:
        return None
    found = rules.find_variant(matched, name)
    return (matched, found) if found is not None else None


def original_uri(template: str, *, uri: str, variant: dict[str, Any], host: str) -> str | None:
    """Invert ``render_uri`` for a template holding ``{uri}`` once; None if it cannot."""
    head, sep, tail = template.partition("{uri}")
    if not sep or "{uri}" in tail:
        return None
    prefix = rules.render_uri(head, uri="", variant=variant, host=host)
    suffix = rules.render_uri(tail, uri="", variant=variant, host=host)
    if len(uri) < len(prefix) + len(suffix):
        return None
    if not uri.startswith(prefix) or not uri.endswith(suffix):
        return None
    original = uri[len(prefix) : len(uri) - len(suffix)]
    # CloudFront URIs always start with a slash; anything else was not produced by a rewrite.
    return original if original.startswith("/") else None


def _rewrote(
    template: str,
    rule: rules.Rule,
    variant: dict[str, Any],
    candidates: list[rules.Rule],
    uri: str,
    host: str,
) -> bool:
    if "{uri}" not in template:
        # A fixed target (say, the new entry point) names its rule by the path alone.
        return rules.render_uri(template, uri="", variant=variant, host=host) == uri
    original = original_uri(template, uri=uri, variant=variant, host=host)
    return original is not None and rules.match(candidates, original) is rule


def custom_origin(origin: dict[str, Any]) -> dict[str, Any]:
    """CloudFront's custom-origin object for a ``set_origin`` action."""
    return {
        "domainName": origin["domain"],
        "port": origin["port"],
        "protocol": origin["protocol"],
        "path": origin.get("path", ""),
        "sslProtocols": ["TLSv1.2"],
        "readTimeout": 30,
        "keepaliveTimeout": 5,
        "customHeaders": {},
    }


def _request_of(event: Any) -> Any:
    try:
        return event["Records"][0]["cf"]["request"]
    except Exception:  # not a CloudFront event: there is nothing to change
        warn("origin-request got an event without a request")
        return None
