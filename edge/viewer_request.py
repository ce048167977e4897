"""CloudFront viewer-request trigger: assign the viewer a variant and apply its viewer actions.

The variant lands in a request header that is part of the cache key, so each variant has its
own cache entries and the origin-request trigger can switch origins on a miss. It also labels the
viewer's segment (``edge.segments``) in the segment header for the origin. Viewer actions
are ``set_uri``, ``set_querystring``, ``set_headers``, ``redirect`` and ``respond`` (the last
two answer without the origin). viewer-request also names the rule it chose, as
``<revision>:<path_rule>`` in the rule header, so origin-request and viewer-response act on
that rule. Whatever goes wrong, the viewer gets the request CloudFront sent, which means stable.
"""

from __future__ import annotations

import time
from typing import Any

from edge import actions, assign, cloudfront, config, events, rules, segments, validate
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
        decision = decide(request, cfg, rules.default_cache(), time.monotonic(), time.time())
        if decision is not None:
            if decision.response is not None:
                return decision.response
            decision.apply(request)
    except Exception as exc:  # nothing may reach CloudFront as an error
        warn("viewer-request passed through", error=repr(exc))
    return request


def strip_internal(request: dict[str, Any], cfg: config.EdgeConfig) -> None:
    """Drop a viewer's copies of the edge's own headers (variant, sticky id, host, rule).

    A pass-through must not let anyone pick the canary, plant a cookie or name a rule for
    the later triggers; ``decide`` does this first, whatever it decides.
    """
    headers = request.get("headers")
    if isinstance(headers, dict):
        for own in cfg.internal_headers():
            headers.pop(own, None)


def decide(
    request: dict[str, Any],
    cfg: config.EdgeConfig,
    cache: rules.RuleCache,
    now: float,
    wall: float | None = None,
    flag_cache: Any = None,
) -> Decision | None:
    """Work out what to do with a request; None means pass through (stable).

    A rule with an ``assignment`` takes its variant from a flag (``edge.flags``), read
    through ``flag_cache`` (by default the container's); other rules from their weights.

    Only the viewer's copies of the edge's own headers are removed from ``request`` here;
    everything else is left for ``Decision.apply``. Anything CloudFront would reject (a URI
    too long, a Location leaving the host, a response over 40 KB) is not produced: the
    request passes through and a line is logged.
    """
    strip_internal(request, cfg)
    headers, uri = request.get("headers"), request.get("uri")
    if not isinstance(headers, dict) or not isinstance(uri, str):
        return None
    querystring = request.get("querystring") or ""
    if not isinstance(querystring, str):
        return None
    host = rules.normalize_host(actions.first_header(headers, "host"))
    if not host:
        return None
    rule = cache.matcher_for(host, now).match(uri)
    if rule is None:
        return None
    key, minted = assign.sticky_key(request, rule.get("stickiness"))
    # Only viewer-request sees the viewer's User-Agent: CloudFront sends the origin (and
    # origin-request) "Amazon CloudFront" unless the cache key holds User-Agent.
    segment = segments.label(actions.first_header(headers, "user-agent"))
    variant = _forced(request, rule, cfg, host, time.time() if wall is None else wall)
    if variant is None and rule.get("assignment") is not None:
        from edge import flags  # flag-routed rules only: weighted rules never load it

        variant = flags.choose(rule, request, flag_cache or flags.default_cache(), now, segment)
    elif variant is None:
        variant = assign.choose_variant(rule["variants"], assign.bucket_of(rule["salt"], key))
    if variant is None:
        return None
    decision = Decision(uri, querystring)
    decision.headers[cfg.variant_header] = variant["name"]
    decision.headers[cfg.host_header] = host
    decision.headers[cfg.rule_header] = rules.rule_marker(rule)
    decision.headers[cfg.segment_header] = segment
    if minted is not None:
        decision.headers[cfg.sticky_header] = minted
    acts = variant.get("actions") or {}
    fields = rules.template_fields(uri=uri, variant=variant, host=host, querystring=querystring)
    hidden = cfg.own_headers()
    if acts.get("redirect") is not None or acts.get("respond") is not None:
        decision.response = _generated(acts, fields, headers, rule, variant, minted, cfg, segment)
        return decision if decision.response is not None else _refused(rule, "response")
    if acts.get("set_uri") is not None:
        decision.uri = actions.render(
            acts["set_uri"], fields=fields, headers=headers, quote_values=True, hidden=hidden
        )
    if acts.get("set_querystring") is not None:
        decision.querystring = actions.render(
            acts["set_querystring"],
            fields=fields,
            headers=headers,
            quote_values=True,
            hidden=hidden,
        ).strip("&")
    if (decision.uri, decision.querystring) != (uri, querystring):
        problem = cloudfront.uri_problem(decision.uri, decision.querystring)
        if problem is not None:
            return _refused(rule, problem)
    for name, template in (acts.get("set_headers") or {}).items():
        value = actions.render(template, fields=fields, headers=headers, hidden=hidden)
        if cloudfront.header_value_problem(value) is not None:
            return _refused(rule, f"set_headers {name!r} rendered a control character")
        decision.headers[name.lower()] = value
    return decision


def _refused(rule: rules.Rule, problem: str) -> Decision | None:
    warn("rule not applied: passed through", path_rule=rule["path_rule"], problem=problem)
    return None


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
    segment: str,
) -> dict[str, Any] | None:
    """The redirect or respond answer, or None when it would not be safe or valid."""
    extra = validate.generated_extra(rule, variant, minted, cfg.debug_header, segment)
    redirect = acts.get("redirect")
    if redirect is not None:
        location = actions.render(
            redirect["location"],
            fields=fields,
            headers=headers,
            quote_values=True,
            hidden=cfg.own_headers(),
        )
        query = fields["querystring"]
        if (
            redirect.get("keep_querystring", True)
            and query
            and "{querystring}" not in (redirect["location"])
        ):
            location += ("&" if "?" in location else "?") + query
        if validate.rendered_location_problem(location) is not None:
            return None
        status = redirect.get("status", 302)
        response_headers = {"location": location, **extra}
        description, body = validate.REDIRECT_STATUSES[status], ""
    else:
        respond = acts["respond"]
        response_headers = {"content-type": respond.get("content_type") or "text/plain"}
        response_headers.update({k.lower(): v for k, v in (respond.get("headers") or {}).items()})
        response_headers.update(extra)
        status, body = respond.get("status", 200), respond.get("body", "")
        description = str(status)
    size = cloudfront.response_size(status, response_headers, body)
    if cloudfront.response_size_problem(size) is not None:
        return None
    return actions.generated_response(
        status, description, response_headers, body if redirect is None else None
    )


debug_value = validate.debug_value
