"""Route rules: matching, the rule a request carries, and the per-container cache.

The cache is the only thing standing between CloudFront's request rate and the routes table,
so it reads each host at most once per TTL, keeps serving the last good rules while the table
is unreachable or slow, and remembers hosts that have no rules at all. A failed read backs off
from the moment it failed; during a back-off, and while another request of this container is
reading the host, requests are answered from what is cached (or stable) without waiting.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from edge import actions, log, validate
from edge.validate import DEFAULT_RULE, EXACT, FULL_WEIGHT, PREFIX

Rule = dict[str, Any]
QueryFn = Callable[[str], list[dict[str, Any]]]

__all__ = [
    "DEFAULT_RULE",
    "EXACT",
    "FULL_WEIGHT",
    "PREFIX",
    "Matcher",
    "RuleCache",
    "chosen",
    "default_cache",
    "is_valid_rule",
    "match",
    "rule_marker",
]
# Stands in for a malformed rule in the index: its paths pass through (stable).
_BROKEN: Rule = {"path_rule": "", "broken": True}


class Matcher:
    """A host's rules indexed for matching: exact paths by dict, prefixes by length.

    Built once per cache refresh, so a request costs one dict lookup per distinct prefix
    length. A malformed rule keeps its place (``broken``): the paths it covers pass through
    instead of falling to the next, less specific rule.
    """

    __slots__ = ("by_key", "default", "exact", "lengths", "prefixes", "rules")

    def __init__(self, rules: list[Rule], broken: tuple[str, ...] = ()) -> None:
        self.rules = rules
        self.default: Rule | None = None
        self.exact: dict[str, Rule] = {}
        self.prefixes: dict[str, Rule] = {}
        self.by_key: dict[str, Rule] = {}
        for path_rule in broken:
            self._index(path_rule, _BROKEN)
        for rule in rules:
            self._index(rule["path_rule"], rule)
            self.by_key.setdefault(rule["path_rule"], rule)
        self.lengths = sorted({len(prefix) for prefix in self.prefixes}, reverse=True)

    def _index(self, path_rule: str, rule: Rule) -> None:
        if path_rule == DEFAULT_RULE:
            self.default = self.default or rule
        elif path_rule.startswith(EXACT):
            self.exact.setdefault(path_rule[len(EXACT) :], rule)
        else:
            self.prefixes.setdefault(path_rule[len(PREFIX) :], rule)

    def match(self, uri: str) -> Rule | None:
        """Exact beats the longest prefix, which beats ``default``; None passes through."""
        rule = self.exact.get(uri)
        if rule is None:
            size = len(uri)
            for length in self.lengths:
                if length <= size:
                    rule = self.prefixes.get(uri[:length])
                    if rule is not None:
                        break
            else:
                rule = self.default
        return None if rule is _BROKEN else rule


_EMPTY = Matcher([])


def match(rules: list[Rule] | Matcher, uri: str) -> Rule | None:
    """Pick the rule for ``uri``: exact beats the longest prefix, which beats ``default``."""
    return (rules if isinstance(rules, Matcher) else Matcher(rules)).match(uri)


def is_valid_rule(item: Any) -> bool:
    """True if the edge can serve ``item`` (``edge.validate.rule_problem`` finds nothing)."""
    return validate.rule_problem(item) is None


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
    """Fill a ``set_uri`` template (see ``edge.actions`` for the fields)."""
    return actions.render(
        template,
        fields=template_fields(uri=uri, variant=variant, host=host),
        headers=headers or {},
        quote_values=True,
    )


def rule_marker(rule: Rule) -> str:
    """The rule header's value: ``<revision>:<path_rule>`` (path rules hold no spaces)."""
    return f"{rule.get('revision', 0)}:{rule['path_rule']}"


def chosen(
    request: Any, cfg: Any, cache: RuleCache, now: float
) -> tuple[Rule, dict[str, Any]] | None:
    """The rule and variant viewer-request chose, for a later trigger; None if it chose none.

    Viewer-request names the rule in ``cfg.rule_header`` and the variant in
    ``cfg.variant_header``; the rule is looked up by that key and never re-derived from the
    URI, which viewer-request may have rewritten into another rule's paths. A rule whose
    revision moved on since keeps the variant by name (the viewer's cohort is the same).
    """
    headers = request.get("headers") if isinstance(request, dict) else None
    if not isinstance(headers, dict):
        return None
    name = actions.first_header(headers, cfg.variant_header)
    revision, sep, key = actions.first_header(headers, cfg.rule_header).partition(":")
    if not name or not sep or not revision.isdigit():
        return None
    # Past viewer-request, Host names the origin unless the distribution forwards the
    # viewer's; the carried header is the viewer's own.
    host = actions.first_header(headers, cfg.host_header) or actions.first_header(headers, "host")
    rule = cache.matcher_for(normalize_host(host), now).by_key.get(key)
    variant = find_variant(rule, name) if rule is not None else None
    return (rule, variant) if rule is not None and variant is not None else None


def normalize_host(value: str) -> str:
    """Lower-case a Host header and drop a port, so ``Demo.example.com:443`` finds its rules."""
    host = value.strip().lower()
    head, sep, port = host.rpartition(":")
    if sep and port.isdigit() and "]" not in port:
        return head
    return host


class _Entry:
    __slots__ = ("expires_at", "fetched_at", "matcher")

    def __init__(self, matcher: Matcher, expires_at: float, fetched_at: float) -> None:
        self.matcher = matcher
        self.expires_at = expires_at
        self.fetched_at = fetched_at  # when the table last answered for this host


class RuleCache:
    """Rules per host, read through ``query`` at most once per host per TTL.

    ``query`` is injected (powertools-style) so tests count calls and production passes the
    DynamoDB reader, which gives up at the configured deadline. ``now`` is passed in, from
    ``time.monotonic()``; ``clock`` measures how long a read took, so a back-off starts when
    the failure ended. ``hosts``, when given, are the only hosts ever read; otherwise at most
    ``max_hosts`` hosts are remembered, least recently read first out, hosts without rules
    before hosts with rules.
    """

    def __init__(
        self,
        query: QueryFn,
        *,
        ttl_seconds: float,
        retry_seconds: float = 1.0,
        max_stale_seconds: float = 300.0,
        max_hosts: int = 1024,
        hosts: tuple[str, ...] | frozenset[str] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._query = query
        self._ttl = ttl_seconds
        self._max_stale = max_stale_seconds
        # After a failure, wait this long before asking the table again: an outage must not
        # turn every viewer request into a wait on the table.
        self._retry = min(retry_seconds, ttl_seconds) if ttl_seconds > 0 else retry_seconds
        self._max_hosts = max(1, max_hosts)
        self._hosts = None if hosts is None else frozenset(hosts)
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._reading: set[str] = set()
        self._lock = threading.Lock()

    def matcher_for(self, host: str, now: float) -> Matcher:
        """The host's rules indexed for matching: cached, refreshed, stale, or empty."""
        entry = self._entries.get(host)
        if entry is not None and now < entry.expires_at:
            return entry.matcher
        if self._hosts is not None and host not in self._hosts:
            return _EMPTY  # not one of the distribution's hosts: no table read, ever
        with self._lock:
            if host in self._reading:  # another request is reading it: do not wait
                return entry.matcher if entry is not None else _EMPTY
            self._reading.add(host)
        try:
            return self._refresh(host, entry, now)
        finally:
            with self._lock:
                self._reading.discard(host)

    def rules_for(self, host: str, now: float) -> list[Rule]:
        """The host's valid rules (``matcher_for(...).rules``)."""
        return self.matcher_for(host, now).rules

    def _refresh(self, host: str, entry: _Entry | None, now: float) -> Matcher:
        started = self._clock()
        try:
            items = self._query(host)
            if not isinstance(items, list):
                raise TypeError(f"query returned {type(items).__name__}, not a list")
        except Exception as exc:  # any failure means "keep what we have, for a while"
            ended = now + max(0.0, self._clock() - started)
            return self._failed(host, entry, ended, exc)
        ended = now + max(0.0, self._clock() - started)
        matcher = self._build(host, items)
        self._store(host, _Entry(matcher, ended + self._ttl, ended))
        return matcher

    def _build(self, host: str, items: list[Any]) -> Matcher:
        """Index what the table returned; ``edge.flags`` builds its flag snapshot here."""
        return _index(host, items)

    def _failed(self, host: str, entry: _Entry | None, ended: float, exc: Exception) -> Matcher:
        age = ended - entry.fetched_at if entry is not None else None
        stale_ok = age is not None and age <= self._max_stale
        log.warn(
            "route query failed",
            host=host,
            error=repr(exc)[:300],
            serving="stale" if stale_ok else "stable",
            stale_age_seconds=None if age is None else round(age, 3),
        )
        if entry is not None and stale_ok:
            entry.expires_at = ended + self._retry
            return entry.matcher
        # Too old (or never read): everyone gets stable until the table answers again.
        fetched_at = entry.fetched_at if entry is not None else ended - self._max_stale - 1
        self._store(host, _Entry(_EMPTY, ended + self._retry, fetched_at))
        return _EMPTY

    def _store(self, host: str, entry: _Entry) -> None:
        with self._lock:
            self._entries[host] = entry
            self._entries.move_to_end(host)
            while len(self._entries) > self._max_hosts:
                self._evict_one()

    def _evict_one(self) -> None:
        # Hosts without rules go first (oldest first), so a flood of unknown hosts cannot
        # push out the hosts that are really being served.
        for name, old in self._entries.items():
            if not old.matcher.rules:
                del self._entries[name]
                return
        self._entries.popitem(last=False)


def _index(host: str, items: list[Any]) -> Matcher:
    valid: list[Rule] = []
    broken: list[str] = []
    for item in items:
        problem = validate.rule_problem(item)
        if problem is None:
            valid.append(item)
            continue
        path_rule = item.get("path_rule") if isinstance(item, dict) else None
        covers = validate.path_rule_problem(path_rule) is None
        if covers:
            broken.append(path_rule)  # type: ignore[arg-type]
        log.warn(
            "malformed route rule: its paths pass through (stable)"
            if covers
            else "malformed route item without a usable path_rule: ignored",
            host=host,
            path_rule=str(path_rule)[:200],
            problem=problem[:300],
        )
    return Matcher(valid, tuple(broken))


_default: RuleCache | None = None


def default_cache() -> RuleCache:
    """The container-wide cache shared by the handlers, reading the configured table."""
    global _default
    if _default is None:
        from edge import config

        cfg = config.load()
        _default = RuleCache(
            _query_table,
            ttl_seconds=cfg.ttl_seconds,
            max_stale_seconds=cfg.max_stale_seconds,
            max_hosts=cfg.max_hosts,
            hosts=cfg.hosts,
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
