"""Route rules: validation, matching, and the per-container cache with a TTL.

The cache is the only thing standing between CloudFront's request rate and the routes table,
so it reads each host at most once per TTL, keeps serving the last good rules while the table
is unreachable, and remembers hosts that have no rules at all.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from edge import log

Rule = dict[str, Any]
QueryFn = Callable[[str], list[dict[str, Any]]]

DEFAULT_RULE = "default"
EXACT = "exact:"
PREFIX = "prefix:"
_ORIGIN_PROTOCOLS = ("http", "https")


def match(rules: list[Rule], uri: str) -> Rule | None:
    """Pick the rule for ``uri``: exact beats the longest prefix, which beats ``default``."""
    best_prefix: Rule | None = None
    best_length = -1
    default: Rule | None = None
    for rule in rules:
        path_rule = rule["path_rule"]
        if path_rule == DEFAULT_RULE:
            default = rule
        elif path_rule.startswith(EXACT):
            if path_rule[len(EXACT) :] == uri:
                return rule
        elif uri.startswith(path_rule[len(PREFIX) :]) and len(path_rule) > best_length:
            best_prefix, best_length = rule, len(path_rule)
    return best_prefix or default


def find_variant(rule: Rule, name: str) -> dict[str, Any] | None:
    """The variant of ``rule`` called ``name``, if the rule still has one."""
    for variant in rule["variants"]:
        if variant["name"] == name:
            return variant  # type: ignore[no-any-return]
    return None


def render_uri(template: str, *, uri: str, variant: dict[str, Any], host: str) -> str:
    """Fill a ``set_uri`` template.

    Plain replacement rather than ``str.format``: a stray brace in a template must not raise,
    and format's attribute access (``{uri.__class__}``) has no business at the edge.
    """
    return (
        template.replace("{variant}", variant["name"])
        .replace("{version}", variant.get("version", ""))
        .replace("{host}", host)
        .replace("{uri}", uri)
    )


def normalize_host(value: str) -> str:
    """Lower-case a Host header and drop a port, so ``Demo.example.com:443`` finds its rules."""
    host = value.strip().lower()
    head, sep, port = host.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return head
    return host


def is_valid_rule(item: Any) -> bool:
    """True if ``item`` has everything the handlers read, with the right types.

    Checked once per cache refresh so the per-request path can index without guarding.
    """
    try:
        return (
            isinstance(item, dict)
            and _valid_path_rule(item.get("path_rule"))
            and isinstance(item.get("salt"), str)
            and isinstance(item.get("variants"), list)
            and bool(item["variants"])
            and all(_valid_variant(v) for v in item["variants"])
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


def _valid_variant(variant: Any) -> bool:
    if not isinstance(variant, dict) or not isinstance(variant.get("name"), str):
        return False
    weight = variant.get("weight")
    if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
        return False
    if not isinstance(variant.get("version", ""), str):
        return False
    actions = variant.get("actions") or {}
    if not isinstance(actions, dict):
        return False
    set_uri = actions.get("set_uri")
    if set_uri is not None and not isinstance(set_uri, str):
        return False
    set_origin = actions.get("set_origin")
    return set_origin is None or _valid_origin(set_origin)


def _valid_origin(origin: Any) -> bool:
    if not isinstance(origin, dict):
        return False
    port = origin.get("port")
    path = origin.get("path", "")
    return (
        isinstance(origin.get("domain"), str)
        and bool(origin["domain"])
        and not isinstance(port, bool)
        and isinstance(port, int)
        and 0 < port < 65536
        and origin.get("protocol") in _ORIGIN_PROTOCOLS
        # CloudFront rejects an origin path that lacks a leading slash or ends with one.
        and isinstance(path, str)
        and (path == "" or (path.startswith("/") and not path.endswith("/")))
    )


class _Entry:
    __slots__ = ("expires_at", "rules")

    def __init__(self, rules: list[Rule], expires_at: float) -> None:
        self.rules = rules
        self.expires_at = expires_at


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
        max_hosts: int = 1024,
    ) -> None:
        self._query = query
        self._ttl = ttl_seconds
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

    def _refresh(self, host: str, entry: _Entry | None, now: float) -> list[Rule]:
        try:
            items = self._query(host)
            fresh = [item for item in items if is_valid_rule(item)]
        except Exception as exc:  # any failure means "keep what we have"
            log.warn("route query failed", host=host, error=repr(exc), stale=entry is not None)
            if entry is not None:
                entry.expires_at = now + self._retry
                return entry.rules
            self._store(host, _Entry([], now + self._retry))
            return []
        if len(fresh) != len(items):
            log.warn("ignored malformed route items", host=host, dropped=len(items) - len(fresh))
        self._store(host, _Entry(fresh, now + self._ttl))
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

        _default = RuleCache(_query_table, ttl_seconds=config.load().ttl_seconds)
    return _default


def reset_default_cache() -> None:
    """Forget every cached host (tests, or the local stack after reconfiguring)."""
    global _default
    _default = None


def _query_table(host: str) -> list[dict[str, Any]]:
    # Imported on the first cache miss: http.client and ssl are most of the cold-start cost.
    from edge import dynamo

    return dynamo.query_host(host)
