"""Route rules: validation, matching, and the per-container cache with a TTL.

The cache is the only thing standing between CloudFront's request rate and the routes table,
so it reads each host at most once per TTL, keeps serving the last good rules while the table
is unreachable, and remembers hosts that have no rules at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from edge import actions, log
from edge.actions import TOKEN

Rule = dict[str, Any]
QueryFn = Callable[[str], list[dict[str, Any]]]

DEFAULT_RULE = "default"
EXACT = "exact:"
PREFIX = "prefix:"
FULL_WEIGHT = 10_000  # basis points


class Matcher:
    """A host's rules indexed for matching: exact paths by dict, prefixes by length.

    Built once per cache refresh, so a request costs one dict lookup per distinct prefix
    length instead of a scan and a slice per rule.
    """

    __slots__ = ("default", "exact", "lengths", "prefixes", "rules")

    def __init__(self, rules: list[Rule]) -> None:
        self.rules = rules
        self.default: Rule | None = None
        self.exact: dict[str, Rule] = {}
        self.prefixes: dict[str, Rule] = {}
        for rule in rules:
            path_rule = rule["path_rule"]
            if path_rule == DEFAULT_RULE:
                self.default = rule
            elif path_rule.startswith(EXACT):
                self.exact.setdefault(path_rule[len(EXACT) :], rule)
            else:
                self.prefixes.setdefault(path_rule[len(PREFIX) :], rule)
        self.lengths = sorted({len(prefix) for prefix in self.prefixes}, reverse=True)

    def match(self, uri: str) -> Rule | None:
        """Exact beats the longest prefix, which beats ``default``."""
        rule = self.exact.get(uri)
        if rule is not None:
            return rule
        size = len(uri)
        for length in self.lengths:
            if length <= size:
                rule = self.prefixes.get(uri[:length])
                if rule is not None:
                    return rule
        return self.default


def match(rules: list[Rule] | Matcher, uri: str) -> Rule | None:
    """Pick the rule for ``uri``: exact beats the longest prefix, which beats ``default``."""
    return as_matcher(rules).match(uri)


def as_matcher(rules: list[Rule] | Matcher) -> Matcher:
    return rules if isinstance(rules, Matcher) else Matcher(rules)


def find_variant(rule: Rule, name: str) -> dict[str, Any] | None:
    """The variant of ``rule`` called ``name``, if the rule still has one."""
    for variant in rule["variants"]:
        if variant["name"] == name:
            return variant  # type: ignore[no-any-return]
    return None


def template_fields(
    *, uri: str, variant: dict[str, Any], host: str, querystring: str = ""
) -> dict[str, str]:
    """The values of a template's named fields for one request and variant."""
    return {
        "uri": uri,
        "version": variant.get("version", ""),
        "variant": variant["name"],
        "host": host,
        "querystring": querystring,
    }


def render_uri(
    template: str,
    *,
    uri: str,
    variant: dict[str, Any],
    host: str,
    headers: dict[str, Any] | None = None,
) -> str:
    """Fill a ``set_uri`` template (see ``edge.actions`` for the fields).

    One regex pass rather than ``str.format``: a stray brace in a template must not raise,
    and format's attribute access (``{uri.__class__}``) has no business at the edge.
    """
    return actions.render(
        template,
        fields=template_fields(uri=uri, variant=variant, host=host),
        headers=headers or {},
        quote_values=True,
    )


def find_rule(
    candidates: list[Rule] | Matcher,
    uri: str,
    name: str,
    host: str,
    headers: dict[str, Any] | None = None,
) -> tuple[Rule, dict[str, Any]] | None:
    """The rule viewer-request matched and its variant ``name``, given the rewritten ``uri``.

    Origin-request and viewer-response see the request after viewer-request rewrote it, so
    the rule is found by undoing the rewrite: the edge keeps no state between triggers.
    """
    candidates = as_matcher(candidates)
    for rule in candidates.rules:
        variant = find_variant(rule, name)
        template = (variant.get("actions") or {}).get("set_uri") if variant else None
        if (
            variant is not None
            and template is not None
            and _rewrote(template, rule, variant, candidates, uri, host, headers)
        ):
            return rule, variant
    # No rewrite explains the URI: viewer-request left it as it was.
    matched = match(candidates, uri)
    if matched is None:
        return None
    found = find_variant(matched, name)
    return (matched, found) if found is not None else None


def chosen(
    request: dict[str, Any], variant_header: str, host_header: str, cache: RuleCache, now: float
) -> tuple[Rule, dict[str, Any]] | None:
    """The rule and variant viewer-request chose, found again by a later trigger from the
    variant header it set and the viewer's host it carried; None when it chose nothing."""
    headers, uri = request["headers"], request["uri"]
    if not isinstance(headers, dict) or not isinstance(uri, str):
        return None
    name = actions.first_header(headers, variant_header)
    if not name:
        return None
    # Past viewer-request, Host names the origin unless the distribution forwards the
    # viewer's; the carried header is the viewer's own.
    carried = actions.first_header(headers, host_header)
    host = normalize_host(carried or headers["host"][0]["value"])
    return find_rule(cache.matcher_for(host, now), uri, name, host, headers)


def original_uri(
    template: str,
    *,
    uri: str,
    variant: dict[str, Any],
    host: str,
    headers: dict[str, Any] | None = None,
) -> str | None:
    """Invert ``render_uri`` for a template holding ``{uri}`` once; None if it cannot."""
    head, sep, tail = template.partition("{uri}")
    if not sep or "{uri}" in tail:
        return None
    prefix = render_uri(head, uri="", variant=variant, host=host, headers=headers)
    suffix = render_uri(tail, uri="", variant=variant, host=host, headers=headers)
    if len(uri) < len(prefix) + len(suffix):
        return None
    if not uri.startswith(prefix) or not uri.endswith(suffix):
        return None
    original = uri[len(prefix) : len(uri) - len(suffix)]
    # CloudFront URIs always start with a slash; anything else was not produced by a rewrite.
    return original if original.startswith("/") else None


def _rewrote(
    template: str,
    rule: Rule,
    variant: dict[str, Any],
    candidates: Matcher,
    uri: str,
    host: str,
    headers: dict[str, Any] | None,
) -> bool:
    if "{uri}" not in template:
        # A fixed target (say, the new entry point) names its rule by the path alone.
        return render_uri(template, uri="", variant=variant, host=host, headers=headers) == uri
    original = original_uri(template, uri=uri, variant=variant, host=host, headers=headers)
    return original is not None and candidates.match(original) is rule


def normalize_host(value: str) -> str:
    """Lower-case a Host header and drop a port, so ``Demo.example.com:443`` finds its rules."""
    host = value.strip().lower()
    head, sep, port = host.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return head
    return host


def is_valid_rule(item: Any) -> bool:
    """True if ``item`` has everything the handlers read, with the right types and limits.

    Checked once per cache refresh so the per-request path can index without guarding. The
    orchestrator rejects all of this at write time; the edge checks again because an item
    can reach the table by other paths, and skipping a rule means serving stable.
    """
    try:
        return (
            isinstance(item, dict)
            and _valid_path_rule(item.get("path_rule"))
            and isinstance(item.get("salt"), str)
            and _valid_variants(item.get("variants"))
            and _valid_stickiness(item.get("stickiness"))
            and _valid_cache_control(item.get("cache_control"))
            and isinstance(item.get("allow_forced", False), bool)
        )
    except Exception:  # validation itself must not take the edge down
        return False


def _valid_path_rule(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if value == DEFAULT_RULE:
        return True
    for kind in (EXACT, PREFIX):
        if value.startswith(kind) and value[len(kind) :].startswith("/"):
            return True
    return False


def _valid_variants(variants: Any) -> bool:
    if not isinstance(variants, list) or len(variants) < 2:
        return False
    if not all(_valid_variant(v) for v in variants):
        return False
    names = {v["name"] for v in variants}
    # Weights that do not cover every bucket would leave some viewers unassigned.
    return len(names) == len(variants) and sum(v["weight"] for v in variants) == FULL_WEIGHT


def _valid_variant(variant: Any) -> bool:
    if not isinstance(variant, dict) or not isinstance(variant.get("name"), str):
        return False
    weight = variant.get("weight")
    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
        return False
    if not isinstance(variant.get("version", ""), str):
        return False
    return actions.valid_actions(variant.get("actions") or {})


def _valid_stickiness(value: Any) -> bool:
    if value is None:
        return True
    if not isinstance(value, dict):
        return False
    key, name, max_age = value.get("key", "ip_ua"), value.get("name"), value.get("max_age", 0)
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        return False
    if key == "ip_ua":
        return True
    return key in ("cookie", "header") and isinstance(name, str) and bool(TOKEN.match(name))


def _valid_cache_control(value: Any) -> bool:
    return value is None or (
        isinstance(value, str) and 0 < len(value) <= 256 and value.isprintable()
    )


class _Entry:
    __slots__ = ("expires_at", "fetched_at", "matcher", "rules")

    def __init__(self, rules: list[Rule], expires_at: float, fetched_at: float) -> None:
        self.rules = rules
        self.matcher = Matcher(rules)
        self.expires_at = expires_at
        self.fetched_at = fetched_at  # when the table last answered for this host


class RuleCache:
    """Valid rules per host, read through ``query`` at most once per host per TTL.

    ``query`` is injected (powertools-style) so tests count calls and production passes the
    DynamoDB reader. ``now`` is passed in, from ``time.monotonic()``, for the same reason.
    """

    def __init__(
        self,
        query: QueryFn,
        *,
        ttl_seconds: float,
        retry_seconds: float = 1.0,
        max_stale_seconds: float = 300.0,
        max_hosts: int = 1024,
    ) -> None:
        self._query = query
        self._ttl = ttl_seconds
        self._max_stale = max_stale_seconds
        # After a failure, wait this long before asking the table again: an outage must not
        # turn every viewer request into a timed-out table read.
        self._retry = min(retry_seconds, ttl_seconds) if ttl_seconds > 0 else retry_seconds
        self._max_hosts = max_hosts
        self._entries: dict[str, _Entry] = {}
        self._refresh_lock = threading.Lock()

    def rules_for(self, host: str, now: float) -> list[Rule]:
        """The host's valid rules: cached, refreshed, stale on failure, or [] if none."""
        entry = self._entries.get(host)
        if entry is not None and now < entry.expires_at:
            return entry.rules
        # With stale rules in hand, let one caller refresh while the others keep serving them.
        if not self._refresh_lock.acquire(blocking=entry is None):
            return entry.rules if entry is not None else []
        try:
            entry = self._entries.get(host)
            if entry is not None and now < entry.expires_at:
                return entry.rules  # another thread refreshed while this one waited
            return self._refresh(host, entry, now)
        finally:
            self._refresh_lock.release()

    def matcher_for(self, host: str, now: float) -> Matcher:
        """``rules_for`` indexed for matching (see ``Matcher``)."""
        found = self.rules_for(host, now)
        entry = self._entries.get(host)
        return entry.matcher if entry is not None and entry.rules is found else Matcher(found)

    def _refresh(self, host: str, entry: _Entry | None, now: float) -> list[Rule]:
        try:
            items = self._query(host)
            fresh = [item for item in items if is_valid_rule(item)]
        except Exception as exc:  # any failure means "keep what we have, for a while"
            age = now - entry.fetched_at if entry is not None else None
            stale_ok = age is not None and age <= self._max_stale
            log.warn(
                "route query failed",
                host=host,
                error=repr(exc),
                serving="stale" if stale_ok else "stable",
                stale_age_seconds=None if age is None else round(age, 3),
            )
            if entry is not None and stale_ok:
                entry.expires_at = now + self._retry
                return entry.rules
            # Too old (or never read): everyone gets stable until the table answers again.
            fetched_at = entry.fetched_at if entry is not None else now - self._max_stale - 1
            self._store(host, _Entry([], now + self._retry, fetched_at))
            return []
        if len(fresh) != len(items):
            log.warn("ignored malformed route items", host=host, dropped=len(items) - len(fresh))
        self._store(host, _Entry(fresh, now + self._ttl, now))
        return fresh

    def _store(self, host: str, entry: _Entry) -> None:
        if host not in self._entries and len(self._entries) >= self._max_hosts:
            # CloudFront only sends a distribution's own hosts, so this is a guard against
            # surprises: forget hosts without rules first, then everything.
            self._entries = {h: e for h, e in self._entries.items() if e.rules}
            if len(self._entries) >= self._max_hosts:
                self._entries = {}
        self._entries[host] = entry


_default: RuleCache | None = None


def default_cache() -> RuleCache:
    """The container-wide cache shared by the handlers, reading the configured table."""
    global _default
    if _default is None:
        from edge import config

        cfg = config.load()
        _default = RuleCache(
            _query_table, ttl_seconds=cfg.ttl_seconds, max_stale_seconds=cfg.max_stale_seconds
        )
    return _default


def reset_default_cache() -> None:
    """Forget every cached host (tests, or the local stack after reconfiguring)."""
    global _default
    _default = None


def _query_table(host: str) -> list[dict[str, Any]]:
    # Imported on the first cache miss: http.client and ssl are most of the cold-start cost.
    from edge import dynamo

    return dynamo.query_host(host)
