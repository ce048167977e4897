"""The checks a route rule must pass, written once for the edge and the orchestrator.

The edge runs ``rule_problem`` on every item it reads (a rule that fails covers its paths with
a pass-through, i.e. stable); ``orchestrator/models/route.py`` calls the same functions when a
route is written and refuses the route with the message, which names the field. Each check
answers "why not", as a string, or None: the edge never raises on a bad item.
"""

from __future__ import annotations

import re
from typing import Any

from edge import cloudfront
from edge.assign import DEFAULT_MAX_AGE, sticky_cookie
from edge.cloudfront import TOKEN

__all__ = ["DEFAULT_MAX_AGE", "rule_problem", "sticky_cookie"]

FULL_WEIGHT = 10_000  # basis points
DEFAULT_RULE = "default"
EXACT = "exact:"
PREFIX = "prefix:"
MAX_VARIANTS = 8
MAX_TEMPLATE_CHARS = 2048
MAX_SET_HEADERS = 20
MAX_RESPOND_HEADERS = 20
REDIRECT_STATUSES = {
    301: "Moved Permanently",
    302: "Found",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
}
BASE_FIELDS = frozenset({"uri", "version", "variant", "host"})
QUERY_FIELDS = BASE_FIELDS | {"querystring"}
ACTION_NAMES = frozenset(
    {"set_uri", "set_querystring", "set_headers", "set_origin", "redirect", "respond"}
)
# The edge's own headers (variant, sticky key, host, rule, force token): a route may neither
# set them nor read them into a template.
RESERVED_PREFIX = "x-edgeshift-"
# A template that copies these into a URI, a header or a Location leaks the viewer's
# credentials to wherever that goes.
SECRET_HEADERS = frozenset({"cookie", "authorization", "proxy-authorization"})
# What the edge adds to a generated response beyond the rule's own headers, budgeted at the
# longest it can be (see ``generated_extra``).
DEBUG_HEADER_BUDGET = 64
STICKY_ID_CHARS = 32
# The longest segment label: "browser=" + 32, ";device=" + 7, ";country=" + 2.
SEGMENT_CHARS = 66

# Flag-driven assignment (``edge.flags``): a rule's variant from a LaunchDarkly flag.
FLAG_PROVIDERS = frozenset({"launchdarkly"})
ASSIGNMENT_FIELDS = frozenset({"provider", "flag", "context", "variations", "fallback"})
CONTEXT_FIELDS = frozenset({"kind", "key_from", "when_missing"})
KEY_SOURCES = ("cookie", "header")
WHEN_MISSING = ("fallback", "ip_ua")
MAX_VARIATIONS = 64
_FLAG_KEY = re.compile(r"^[A-Za-z0-9._-]{1,256}$")
_CONTEXT_KIND = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

_PATH_RULE = re.compile(r"^(default|(exact|prefix):/[\x21-\x7e]{0,1024})$")
_VARIANT_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
_VERSION = re.compile(r"^[A-Za-z0-9._-]{0,128}$")
_ANY_FIELD = re.compile(r"\{([^{}]*)\}")
# An absolute Location names its scheme and host literally: no field before the path.
_ABSOLUTE = re.compile(
    r"^https?://[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
    r"(:[0-9]{1,5})?([/?#]|$)"
)


def path_rule_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not _PATH_RULE.match(value):
        return "path_rule: must be 'default', 'exact:/path' or 'prefix:/path' (printable ASCII)"
    return None


def variant_name_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not _VARIANT_NAME.match(value):
        return "must be lowercase letters, digits, '-' or '_', starting with a letter"
    return None


def header_name_problem(name: Any, trigger: str = cloudfront.VIEWER_REQUEST) -> str | None:
    """Why a rule may not set header ``name`` in ``trigger``, or None."""
    problem = cloudfront.header_problem(name, trigger)
    if problem is None and name.lower().startswith(RESERVED_PREFIX):
        problem = f"is reserved for the edge ({RESERVED_PREFIX}*)"
    return None if problem is None else f"{name!r} {problem}"


def template_problem(template: Any, allowed: frozenset[str] = BASE_FIELDS) -> str | None:
    """Why ``template`` cannot be rendered, or None: known fields, no secret headers."""
    if not isinstance(template, str) or not 0 < len(template) <= MAX_TEMPLATE_CHARS:
        return f"must be a string of 1 to {MAX_TEMPLATE_CHARS} characters"
    for found in _ANY_FIELD.finditer(template):
        name, sep, header = found.group(1).partition(":")
        if sep and name == "header" and TOKEN.match(header or "?"):
            lowered = header.lower()
            if lowered in SECRET_HEADERS or lowered.startswith(RESERVED_PREFIX):
                return (
                    f"{found.group(0)}: templates may not read Cookie, Authorization or "
                    f"the edge's own headers"
                )
            continue
        if not sep and name in allowed:
            continue
        known = ", ".join(f"{{{f}}}" for f in sorted(allowed))
        return f"unknown template field {found.group(0)} (known: {known}, {{header:<name>}})"
    return None


def location_problem(location: Any) -> str | None:
    """Why a redirect ``location`` template could send a viewer off-site, or None.

    A location is a path on the same host, starting with '/' and a literal path character
    (a field there could render '//host'), or an absolute URL whose scheme and host are
    written out. Backslashes are refused: browsers read '/\\\\host' as '//host'.
    """
    problem = template_problem(location, QUERY_FIELDS)
    if problem is not None:
        return problem
    if "\\" in location:
        return "cannot hold a backslash"
    if location.startswith("/"):
        if len(location) > 1 and location[1] in "/{":
            return "a same-host location must start with '/' and a literal path character"
        return None
    if _ABSOLUTE.match(location):
        return None
    return "must be a path ('/...') or a URL naming its scheme and host literally"


def rendered_location_problem(location: str) -> str | None:
    """Why a rendered Location is not safe to send, or None (checked on every render)."""
    if cloudfront.header_value_problem(location) is not None or " " in location:
        return "holds spaces or control characters"
    if "\t" in location:  # browsers drop tabs from URLs: '/\t/host' is '//host'
        return "holds a tab"
    if "\\" in location:
        return "holds a backslash"
    if location.startswith("/"):
        return "starts with '//'" if location.startswith("//") else None
    return None if _ABSOLUTE.match(location) else "is neither a path nor a literal URL"


def actions_problem(actions: Any) -> str | None:
    """Why a variant's ``actions`` cannot be applied, as "<action>: <why>", or None."""
    if not isinstance(actions, dict):
        return "must be an object"
    unknown = sorted(str(k) for k in actions if k not in ACTION_NAMES)
    if unknown:
        return f"{unknown[0]}: unknown action (known: {', '.join(sorted(ACTION_NAMES))})"
    present = [name for name, value in actions.items() if value is not None]
    terminal = [name for name in present if name in ("redirect", "respond")]
    if terminal and len(present) > 1:
        others = ", ".join(n for n in present if n != terminal[0])
        return f"{terminal[0]}: answers the request itself; remove {others}"
    for name in present:
        problem = _ACTION_CHECKS[name](actions[name])
        if problem is not None:
            return f"{name}: {problem}"
    return None


def set_uri_problem(value: Any) -> str | None:
    problem = template_problem(value, BASE_FIELDS)
    if problem is None and not value.startswith("/"):
        return "must start with '/'"
    return problem


def set_querystring_problem(value: Any) -> str | None:
    if value == "":
        return None
    problem = template_problem(value, QUERY_FIELDS)
    if problem is None and value.startswith("?"):
        return "leave out the leading '?'"
    return problem


def set_headers_problem(value: Any) -> str | None:
    if not isinstance(value, dict) or len(value) > MAX_SET_HEADERS:
        return f"must be an object of at most {MAX_SET_HEADERS} headers"
    for name, text in value.items():
        problem = header_name_problem(name) or template_problem(text)
        if problem is None and cloudfront.header_value_problem(text) is not None:
            problem = f"{name!r}: header values cannot hold control characters"
        if problem is not None:
            return problem
    return None


def redirect_problem(value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be an object"
    status = value.get("status", 302)
    if isinstance(status, bool) or status not in REDIRECT_STATUSES:
        return f"status: must be one of {sorted(REDIRECT_STATUSES)}"
    if not isinstance(value.get("keep_querystring", True), bool):
        return "keep_querystring: must be true or false"
    problem = location_problem(value.get("location"))
    return None if problem is None else f"location: {problem}"


def respond_problem(value: Any) -> str | None:
    """The shape of a ``respond`` action; its size is checked with the rule (``rule_problem``)."""
    if not isinstance(value, dict):
        return "must be an object"
    status, body = value.get("status", 200), value.get("body", "")
    if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
        return "status: must be an HTTP status from 200 to 599"
    if not isinstance(body, str):
        return "body: must be a string"
    content_type = value.get("content_type", "")
    if not isinstance(content_type, str) or cloudfront.header_value_problem(content_type):
        return "content_type: must be a header value"
    headers = value.get("headers") or {}
    if not isinstance(headers, dict) or len(headers) > MAX_RESPOND_HEADERS:
        return f"headers: must be an object of at most {MAX_RESPOND_HEADERS} headers"
    for name, text in headers.items():
        problem = header_name_problem(name, cloudfront.GENERATED)
        if problem is None and cloudfront.header_value_problem(text) is not None:
            problem = f"{name!r}: header values must be strings without control characters"
        if problem is not None:
            return f"headers: {problem}"
    return None


def origin_problem(origin: Any) -> str | None:
    """A custom origin (domain, port, protocol, path) or an S3 one (kind "s3")."""
    if not isinstance(origin, dict):
        return "must be an object"
    domain, path = origin.get("domain"), origin.get("path", "")
    if not isinstance(domain, str) or not domain or ":" in domain or len(domain) > 253:
        return "domain: must be a host name without a port"
    # CloudFront rejects an origin path that lacks a leading slash or ends with one.
    if not isinstance(path, str) or not (path == "" or (path[0] == "/" and path[-1] != "/")):
        return "path: must be empty or start with '/' and not end with one"
    kind = origin.get("kind", "custom")
    if kind == "s3":
        auth = origin.get("auth_method") or "none"
        region = origin.get("region")
        if auth not in ("none", "origin-access-identity"):
            return "auth_method: must be 'none' or 'origin-access-identity'"
        if auth != "none" and not (isinstance(region, str) and region):
            return "region: required with auth_method 'origin-access-identity'"
        return None
    port = origin.get("port")
    if kind != "custom":
        return "kind: must be 'custom' or 's3'"
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        return "port: must be 1 to 65535"
    if origin.get("protocol") not in ("http", "https"):
        return "protocol: must be 'http' or 'https'"
    return None


_ACTION_CHECKS = {
    "set_uri": set_uri_problem,
    "set_querystring": set_querystring_problem,
    "set_headers": set_headers_problem,
    "set_origin": origin_problem,
    "redirect": redirect_problem,
    "respond": respond_problem,
}


def stickiness_problem(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        return "must be an object"
    key, name, max_age = value.get("key", "ip_ua"), value.get("name"), value.get("max_age", 0)
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        return "max_age: must be a non-negative integer"
    if key == "ip_ua":
        return None
    if key not in ("cookie", "header"):
        return "key: must be 'ip_ua', 'cookie' or 'header'"
    if not isinstance(name, str) or not TOKEN.match(name) or len(name) > 64:
        return f"name: the {key} to read must be a token of at most 64 characters"
    return None


def cache_control_problem(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= 256 or not value.isprintable():
        return "must be 1 to 256 printable characters"
    return None


def debug_value(rule: dict[str, Any], variant: dict[str, Any], segment: str = "") -> str:
    """What the debug header says: enough to tell which rule and cohort served a response,
    and the segment viewer-request labelled the viewer with (its country is ``xx`` there:
    CloudFront adds the viewer's country only after viewer-request, see ``edge.segments``)."""
    value = (
        f"variant={variant['name']}; version={variant.get('version', '')}; "
        f"rule={rule['path_rule']}; rollout={rule.get('rollout_id', '')}; "
        f"revision={rule.get('revision', '')}"
    )
    return f"{value}; segment={segment}" if segment else value


def generated_extra(
    rule: dict[str, Any],
    variant: dict[str, Any],
    minted: str | None,
    debug_header: str | None,
    segment: str = "",
) -> dict[str, str]:
    """The headers the edge adds to a response generated for ``rule`` and ``variant``.

    CloudFront skips viewer-response for generated responses, so what it would have added
    (Cache-Control, the sticky cookie, the debug header) goes in here.
    """
    extra: dict[str, str] = {}
    if rule.get("cache_control"):
        extra["cache-control"] = rule["cache_control"]
    stickiness = rule.get("stickiness") or {}
    if minted is not None and stickiness.get("key") == "cookie":
        max_age = stickiness.get("max_age") or DEFAULT_MAX_AGE
        extra["set-cookie"] = sticky_cookie(stickiness["name"], minted, max_age)
    if debug_header:
        extra[debug_header] = debug_value(rule, variant, segment)
    return extra


def respond_size(rule: dict[str, Any], variant: dict[str, Any]) -> int:
    """The largest a variant's ``respond`` answer can be, every header the edge adds counted.

    The sticky cookie and the debug header are counted at their longest, since whether they
    are sent depends on the viewer and on the edge's config.
    """
    respond = variant["actions"]["respond"]
    headers = {"content-type": respond.get("content_type") or "text/plain"}
    headers.update({str(k).lower(): v for k, v in (respond.get("headers") or {}).items()})
    longest = generated_extra(
        rule, variant, "0" * STICKY_ID_CHARS, "x" * DEBUG_HEADER_BUDGET, "x" * SEGMENT_CHARS
    )
    headers.update(longest)
    return cloudfront.response_size(respond.get("status", 200), headers, respond.get("body", ""))


def variants_problem(variants: Any) -> str | None:
    if not isinstance(variants, list) or not 2 <= len(variants) <= MAX_VARIANTS:
        return f"variants: must be a list of 2 to {MAX_VARIANTS} variants"
    for index, variant in enumerate(variants):
        problem = _variant_problem(variant)
        if problem is not None:
            return f"variants.{index}.{problem}"
    names = [v["name"] for v in variants]
    if len(set(names)) != len(names):
        return f"variants: variant names must be unique, got {names}"
    total = sum(v["weight"] for v in variants)
    if total != FULL_WEIGHT:
        # Weights that do not cover every bucket would leave some viewers unassigned.
        return f"variants: weights must sum to {FULL_WEIGHT} basis points, got {total}"
    return None


def _variant_problem(variant: Any) -> str | None:
    if not isinstance(variant, dict):
        return "variant: must be an object"
    problem = variant_name_problem(variant.get("name"))
    if problem is not None:
        return f"name: {problem}"
    weight = variant.get("weight")
    if isinstance(weight, bool) or not isinstance(weight, int) or not 0 <= weight <= FULL_WEIGHT:
        return f"weight: must be an integer from 0 to {FULL_WEIGHT} (basis points)"
    version = variant.get("version", "")
    if not isinstance(version, str) or not _VERSION.match(version):
        return "version: must be letters, digits, '.', '_' or '-' (at most 128)"
    problem = actions_problem(variant.get("actions") or {})
    return None if problem is None else f"actions.{problem}"


def rule_problem(item: Any) -> str | None:
    """Why the edge cannot serve ``item`` as it is, naming the field, or None if it can."""
    try:
        return _rule_problem(item)
    except Exception as exc:  # validation itself must not take the edge down
        return f"unreadable rule ({type(exc).__name__})"


def _rule_problem(item: Any) -> str | None:
    if not isinstance(item, dict):
        return "rule: must be an object"
    checks = (
        path_rule_problem(item.get("path_rule")),
        None if isinstance(item.get("salt"), str) else "salt: must be a string",
        _revision_problem(item.get("revision", 0)),
        variants_problem(item.get("variants")),
        _prefixed("stickiness", stickiness_problem(item.get("stickiness"))),
        _prefixed("cache_control", cache_control_problem(item.get("cache_control"))),
        None
        if isinstance(item.get("allow_forced", False), bool)
        else "allow_forced: must be true or false",
        _assignment_of(item),
    )
    for problem in checks:
        if problem is not None:
            return problem
    for index, variant in enumerate(item["variants"]):
        if (variant.get("actions") or {}).get("respond") is not None:
            size = cloudfront.response_size_problem(respond_size(item, variant))
            if size is not None:
                return f"variants.{index}.actions.respond: {size}"
    return None


def _assignment_of(item: dict[str, Any]) -> str | None:
    assignment = item.get("assignment")
    if assignment is None:
        return None
    variants = item.get("variants")
    names = (
        [v.get("name") for v in variants if isinstance(v, dict)]
        if isinstance(variants, list)
        else []
    )
    problem = assignment_problem(assignment, names)
    return None if problem is None else _nested("assignment", problem)


def _nested(field: str, problem: str) -> str:
    """``flag: why`` inside ``assignment`` is ``assignment.flag: why``, naming the path."""
    return f"{field}.{problem}" if problem.split(" ")[0].endswith(":") else f"{field}: {problem}"


def key_from_problem(value: Any) -> str | None:
    """Why ``key_from`` cannot name a viewer's context key, or None.

    ``ip_ua``, ``cookie:NAME`` or ``header:NAME``. Cookie and Authorization headers and the
    edge's own headers are refused: a context key is the viewer's identity, not a secret.
    """
    if value == "ip_ua":
        return None
    source, sep, name = value.partition(":") if isinstance(value, str) else ("", "", "")
    if not sep or source not in KEY_SOURCES:
        return "must be 'ip_ua', 'cookie:NAME' or 'header:NAME'"
    if not TOKEN.match(name or "?") or len(name) > 64:
        return f"the {source} name must be a token of at most 64 characters, got {name!r}"
    lowered = name.lower()
    if source == "header" and (lowered in SECRET_HEADERS or lowered.startswith(RESERVED_PREFIX)):
        return f"header {name!r}: Cookie, Authorization and the edge's own headers are not keys"
    return None


def flag_key_problem(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return "the flag key must not be empty"
    if not _FLAG_KEY.match(value):
        return f"{value!r} is not a flag key (letters, digits, '.', '_', '-'; at most 256)"
    return None


def flag_context_problem(value: Any) -> str | None:
    """The context a flag is evaluated for: its kind, where its key comes from, and what a
    viewer without that key gets (``fallback``, or ``ip_ua`` as the key)."""
    if not isinstance(value, dict):
        return "must be an object"
    unknown = sorted(str(k) for k in value if k not in CONTEXT_FIELDS)
    if unknown:
        return f"{unknown[0]}: unknown field (known: {', '.join(sorted(CONTEXT_FIELDS))})"
    kind = value.get("kind", "user")
    if not isinstance(kind, str) or not _CONTEXT_KIND.match(kind) or kind in ("kind", "multi"):
        return "kind: must be a LaunchDarkly context kind (letters, digits, '.', '_', '-')"
    if "key_from" not in value:
        return "key_from: required ('ip_ua', 'cookie:NAME' or 'header:NAME')"
    problem = key_from_problem(value["key_from"])
    if problem is not None:
        return f"key_from: {problem}"
    if value.get("when_missing", "fallback") not in WHEN_MISSING:
        return f"when_missing: must be one of {', '.join(WHEN_MISSING)}"
    return None


def assignment_problem(value: Any, variant_names: list[Any]) -> str | None:
    """Why a flag ``assignment`` cannot choose among ``variant_names``, as "<field>: <why>"."""
    if not isinstance(value, dict):
        return "must be an object"
    unknown = sorted(str(k) for k in value if k not in ASSIGNMENT_FIELDS)
    if unknown:
        return f"{unknown[0]}: unknown field (known: {', '.join(sorted(ASSIGNMENT_FIELDS))})"
    provider = value.get("provider")
    if not isinstance(provider, str) or provider not in FLAG_PROVIDERS:
        return f"provider: must be one of {', '.join(sorted(FLAG_PROVIDERS))}"
    problem = flag_key_problem(value.get("flag"))
    if problem is not None:
        return f"flag: {problem}"
    problem = flag_context_problem(value.get("context"))
    if problem is not None:
        return _nested("context", problem)
    known = ", ".join(str(n) for n in variant_names)
    variations = value.get("variations")
    if not isinstance(variations, dict) or not 1 <= len(variations) <= MAX_VARIATIONS:
        return f"variations: must map 1 to {MAX_VARIATIONS} flag values to variant names"
    for flag_value, name in variations.items():
        if not isinstance(flag_value, str) or not 0 < len(flag_value) <= 256:
            return "variations: each key is a flag value as a string, e.g. 'true'"
        if name not in variant_names:
            return f"variations.{flag_value}: unknown variant {name!r} (variants: {known})"
    fallback = value.get("fallback")
    if fallback not in variant_names:
        return f"fallback: unknown variant {fallback!r} (variants: {known})"
    return None


def _revision_problem(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return "revision: must be a non-negative integer"
    return None


def _prefixed(field: str, problem: str | None) -> str | None:
    return None if problem is None else f"{field}: {problem}"
