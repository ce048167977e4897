"""CloudFront viewer-request trigger: assign the viewer a variant and apply its viewer actions.

The variant lands in a request header that is part of the cache key, so each variant has its
own cache entries and the origin-request trigger can switch origins on a miss. Viewer actions
are ``set_uri``, ``set_querystring``, ``set_headers``, ``redirect`` and ``respond`` (the last
two answer without the origin). Whatever goes wrong, the viewer gets the request CloudFront
sent, which means stable.
"""

from __future__ import annotations

import time
from typing import Any

from edge import actions, assign, config, events, rules
from edge.log import client_ref, info, warn

TRIGGER = "viewer-request"
header_key = actions.display_name  # kept for callers of the first version


class Decision:
    """What viewer-request does to one request, computed before anything is touched."""

    __slots__ = ("headers", "querystring", "response", "uri")

    def __init__(self, uri: str, querystring: Any) -> None:
        self.uri = uri
        self.querystring = querystring
        self.headers: dict[str, str] = {}
        self.response: dict[str, Any] | None = None

    def apply(self, request: dict[str, Any]) -> None:
        """Rewrite ``request``; plain assignments, so it is all or nothing."""
        request["uri"] = self.uri
        request["querystring"] = self.querystring
        for name, value in self.headers.items():
            request["headers"][name] = [{"key": actions.display_name(name), "value": value}]


def handler(event: dict[str, Any], context: object) -> Any:
    """Return the rewritten request, a generated response, or the request unchanged."""
    request = events.part_of(event, "request", TRIGGER)
    try:
        if not events.is_trigger(event, TRIGGER):
            return request
        cfg = config.load()
        # The edge's own headers: a viewer's copy must never reach the later triggers, or a
        # pass-through would let anyone pick the canary or plant a cookie.
        for own in (cfg.variant_header, cfg.sticky_header, cfg.host_header):
            request["headers"].pop(own, None)
        decision = decide(request, cfg, rules.default_cache(), time.monotonic(), time.time())
        if decision is not None:
            if decision.response is not None:
                return decision.response
            decision.apply(request)
    except Exception as exc:  # nothing may reach CloudFront as an error
        warn("viewer-request passed through", error=repr(exc))
    return request


def decide(
    request: dict[str, Any],
    cfg: config.EdgeConfig,
    cache: rules.RuleCache,
    now: float,
    wall: float | None = None,
) -> Decision | None:
    """Work out what to do with a request without touching it; None means pass through."""
    headers, uri = request["headers"], request["uri"]
    if not isinstance(headers, dict) or not isinstance(uri, str):
        return None
    querystring = request.get("querystring") or ""
    host = rules.normalize_host(headers["host"][0]["value"])
    rule = cache.matcher_for(host, now).match(uri)
    if rule is None:
        return None
    key, minted = assign.sticky_key(request, rule.get("stickiness"))
    variant = _forced(request, rule, cfg, host, time.time() if wall is None else wall)
    if variant is None:
        variant = assign.choose_variant(rule["variants"], assign.bucket_of(rule["salt"], key))
    if variant is None:
        return None
    decision = Decision(uri, querystring)
    decision.headers[cfg.variant_header] = variant["name"]
    decision.headers[cfg.host_header] = host
    if minted is not None:
        decision.headers[cfg.sticky_header] = minted
    acts = variant.get("actions") or {}
    fields = rules.template_fields(uri=uri, variant=variant, host=host, querystring=querystring)
    if acts.get("redirect") is not None or acts.get("respond") is not None:
        decision.response = _generated(acts, fields, headers, rule, variant, minted, cfg)
        return decision
    if acts.get("set_uri") is not None:
        decision.uri = actions.render(
            acts["set_uri"], fields=fields, headers=headers, quote_values=True
        )
        if not decision.uri.startswith("/"):
            raise ValueError(f"set_uri produced {decision.uri[:64]!r}, which CloudFront rejects")
    if acts.get("set_querystring") is not None:
        decision.querystring = actions.render(
            acts["set_querystring"], fields=fields, headers=headers, quote_values=True
        ).strip("&")
    for name, template in (acts.get("set_headers") or {}).items():
        decision.headers[name.lower()] = actions.render(template, fields=fields, headers=headers)
    return decision


def _forced(
    request: dict[str, Any],
    rule: rules.Rule,
    cfg: config.EdgeConfig,
    host: str,
    wall: float,
) -> dict[str, Any] | None:
    if not cfg.force_secret or rule.get("allow_forced") is not True:
        return None
    headers = request["headers"]
    token = actions.first_header(headers, cfg.force_header) or assign.cookie_value(
        headers, cfg.force_cookie
    )
    if not token:
        return None
    from edge import force  # only QA requests on rules that allow forcing pay for this

    name = force.verify(cfg.force_secret, host, token, wall)
    variant = rules.find_variant(rule, name) if name is not None else None
    client = client_ref(request.get("clientIp"))
    if variant is None:
        warn("forced variant rejected", host=host, path_rule=rule["path_rule"], client=client)
        return None
    info("forced variant", host=host, path_rule=rule["path_rule"], variant=name, client=client)
    return variant


def _generated(
    acts: dict[str, Any],
    fields: dict[str, str],
    headers: dict[str, Any],
    rule: rules.Rule,
    variant: dict[str, Any],
    minted: str | None,
    cfg: config.EdgeConfig,
) -> dict[str, Any]:
    # CloudFront skips viewer-response for generated responses, so what it would have added
    # (cookie, Cache-Control, debug header) goes in here.
    extra: dict[str, str] = {}
    if rule.get("cache_control"):
        extra["cache-control"] = rule["cache_control"]
    if minted is not None:
        stickiness = rule["stickiness"]
        extra["set-cookie"] = assign.sticky_cookie(
            stickiness["name"], minted, stickiness.get("max_age") or assign.DEFAULT_MAX_AGE
        )
    if cfg.debug_header:
        extra[cfg.debug_header] = debug_value(rule, variant)
    redirect = acts.get("redirect")
    if redirect is not None:
        location = actions.render(
            redirect["location"], fields=fields, headers=headers, quote_values=True
        )
        query = fields["querystring"]
        if (
            redirect.get("keep_querystring", True)
            and query
            and "{querystring}" not in (redirect["location"])
        ):
            location += ("&" if "?" in location else "?") + query
        status = redirect.get("status", 302)
        return actions.generated_response(
            status, actions.REDIRECT_STATUSES[status], {"location": location, **extra}
        )
    respond = acts["respond"]
    response_headers = {"content-type": respond.get("content_type") or "text/plain"}
    response_headers.update({k.lower(): v for k, v in (respond.get("headers") or {}).items()})
    response_headers.update(extra)
    status = respond.get("status", 200)
    return actions.generated_response(
        status, str(status), response_headers, respond.get("body", "")
    )


def debug_value(rule: rules.Rule, variant: dict[str, Any]) -> str:
    """What the debug header says: enough to tell which rule and cohort served a response."""
    return (
        f"variant={variant['name']}; version={variant.get('version', '')}; "
        f"rule={rule['path_rule']}; rollout={rule.get('rollout_id', '')}; "
        f"revision={rule.get('revision', '')}"
    )
