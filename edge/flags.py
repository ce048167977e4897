"""Flag-driven assignment: a rule's variant from a LaunchDarkly flag's evaluation for the viewer.

A rule with an ``assignment`` (checked by ``edge.validate.assignment_problem``) names a flag,
the context to evaluate it for (its kind, and where the key comes from: a cookie, a header,
or client IP + User-Agent), which variant each flag value selects, and a ``fallback``.

Flag data sits in the routes table beside the routes, under the partition ``FLAGS_PARTITION``
(no host can be called that: hosts hold no ':'), one item per flag (``flag:<key>``) and per
segment (``segment:<key>``), each holding the SDK's own JSON for it in ``data``. It is read
through the same DynamoDB client, deadline and cache as routes (``edge.rules.RuleCache``):
at most once per TTL, stale data served while the table is unreachable, for at most
``max_stale_seconds``. The evaluation itself is LaunchDarkly's server SDK (``edge.flag_sdk``),
imported on the first flag-routed request only: rules without flags never load it.

This module is stdlib-only and never raises: no flag data, data past its stale bound, an
unknown flag, a value ``variations`` does not map, the SDK missing from the bundle or an
evaluation error all serve the rule's ``fallback`` variant and log a line (at most one per
flag and reason every ``LOG_EVERY_SECONDS``, so an outage does not log every request).
"""

from __future__ import annotations

import hashlib
import json
import threading
from typing import Any

from edge import actions, assign, log
from edge.rules import Matcher, RuleCache, find_variant

FLAGS_PARTITION = "edgeshift:flags"
FLAG_PREFIX = "flag:"
SEGMENT_PREFIX = "segment:"
LOG_EVERY_SECONDS = 10.0

__all__ = ["FLAGS_PARTITION", "FlagCache", "Snapshot", "choose", "context_key", "value_key"]


def value_key(value: Any) -> str:
    """A flag value as a ``variations`` key: strings as they are, anything else as JSON
    (``true``, ``false``, ``3``), so a boolean flag's keys are ``"true"`` and ``"false"``."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


class Snapshot(Matcher):
    """One read of the flag partition: each flag's and segment's SDK JSON, by key.

    A ``Matcher`` with no rules, so ``RuleCache`` caches it like a host's rules (same TTL,
    stale and back-off rules). ``digest`` tells the evaluator whether it already holds it.
    """

    __slots__ = ("digest", "flags", "problems", "segments")

    def __init__(self, items: list[Any], digest: str | None = None) -> None:
        super().__init__([])
        self.flags: dict[str, dict[str, Any]] = {}
        self.segments: dict[str, dict[str, Any]] = {}
        self.problems: list[str] = []
        for item in items:
            name = item.get("path_rule") if isinstance(item, dict) else None
            data = decoded_data(item.get("data")) if isinstance(name, str) else None
            if name is None or data is None:
                self.problems.append(str(name)[:200])
                continue
            if name.startswith(FLAG_PREFIX):
                self.flags[name[len(FLAG_PREFIX) :]] = data
            elif name.startswith(SEGMENT_PREFIX):
                self.segments[name[len(SEGMENT_PREFIX) :]] = data
        self.digest = digest_of(items) if digest is None else digest


def digest_of(items: list[Any]) -> str:
    """The items' own text, hashed: the cache and the evaluator decode only on a change."""
    digest = hashlib.sha256()
    for item in items:
        if isinstance(item, dict):
            digest.update(f"{item.get('path_rule')!r}\0{item.get('data')!r}\0".encode())
    return digest.hexdigest()


def decoded_data(raw: Any) -> dict[str, Any] | None:
    """An item's ``data`` as its JSON object, or None if it is not one."""
    try:
        data = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


class FlagCache(RuleCache):
    """The flag partition, cached exactly like a host's routes.

    Without ``query`` it reads the routes table, and with ``deadline_seconds`` that read
    gets only what is left of the request's table deadline (counted from the ``now`` the
    request passed in): a request that read its routes and then its flags waits on the
    table at most one deadline in all, as it would for routes alone.
    """

    def __init__(
        self, query: Any = None, *, deadline_seconds: float | None = None, **kwargs: Any
    ) -> None:
        self._deadline_seconds = deadline_seconds
        self._started = threading.local()
        self._last: Snapshot | None = None
        super().__init__(query or self._read_table, hosts=(FLAGS_PARTITION,), **kwargs)

    def _refresh(self, host: str, entry: Any, now: float) -> Matcher:
        self._started.at = now
        return super()._refresh(host, entry, now)

    def _read_table(self, partition: str) -> list[dict[str, Any]]:
        from edge import dynamo

        deadline = None
        if self._deadline_seconds is not None:
            deadline = getattr(self._started, "at", 0.0) + self._deadline_seconds
        return dynamo.query_host(partition, deadline=deadline)

    def _build(self, host: str, items: list[Any]) -> Matcher:
        # Most reads find what the last one did: keep its snapshot rather than decode the
        # partition's JSON again every TTL.
        digest = digest_of(items)
        if self._last is not None and self._last.digest == digest:
            return self._last
        snapshot = Snapshot(items, digest)
        if snapshot.problems:
            log.warn("unreadable flag items ignored", items=snapshot.problems[:10])
        self._last = snapshot
        return snapshot

    def snapshot(self, now: float) -> Snapshot | None:
        """The flag data to evaluate with, or None (never read, or stale past the bound)."""
        found = self.matcher_for(FLAGS_PARTITION, now)
        return found if isinstance(found, Snapshot) else None


def context_key(request: dict[str, Any], context: dict[str, Any]) -> str | None:
    """The viewer's context key as the rule's ``key_from`` says; None when the viewer lacks
    it and the rule says ``when_missing: fallback``."""
    key_from = context["key_from"]
    headers = request.get("headers")
    if key_from != "ip_ua":
        source, _, name = key_from.partition(":")
        if source == "cookie":
            found = assign.cookie_value(headers, name)
        else:
            found = actions.first_header(headers, name.lower())
        if isinstance(found, str) and 0 < len(found) <= assign.MAX_KEY_CHARS:
            return found
        if context.get("when_missing", "fallback") != "ip_ua":
            return None
    # As assign.viewer_key, but for any request shape.
    return f"{request.get('clientIp') or ''}|{actions.first_header(headers, 'user-agent')}"


def attributes_of(segment: str) -> dict[str, str]:
    """The viewer's browser and device (``edge.segments``) as context attributes, so a
    flag's rules can target them."""
    found: dict[str, str] = {}
    for part in segment.split(";"):
        name, sep, value = part.partition("=")
        if sep and name in ("browser", "device"):
            found[name] = value
    return found


_last_logged: dict[tuple[str, str], float] = {}


def _fallback(
    rule: dict[str, Any], flag: str, reason: str, now: float, **fields: object
) -> dict[str, Any] | None:
    mark = (flag, reason)
    if now >= _last_logged.get(mark, float("-inf")) + LOG_EVERY_SECONDS:
        _last_logged[mark] = now
        log.warn(
            "flag-routed rule served its fallback",
            flag=flag,
            reason=reason,
            path_rule=rule.get("path_rule"),
            **fields,
        )
    return find_variant(rule, rule["assignment"]["fallback"])


def choose(
    rule: dict[str, Any], request: dict[str, Any], cache: FlagCache, now: float, segment: str = ""
) -> dict[str, Any] | None:
    """The variant the rule's flag selects for this viewer, or its fallback variant."""
    assignment = rule["assignment"]
    flag = assignment["flag"]
    try:
        key = context_key(request, assignment["context"])
        if key is None:  # the rule's own choice for viewers without the key: no log line
            return find_variant(rule, assignment["fallback"])
        snapshot = cache.snapshot(now)
        if snapshot is None:
            return _fallback(rule, flag, "no flag data (never read, or stale past the bound)", now)
        if flag not in snapshot.flags:
            return _fallback(rule, flag, "flag not in the flag data", now)
        from edge import flag_sdk  # the SDK: only flag-routed requests pay for it

        value, error = flag_sdk.evaluate(
            snapshot, flag, assignment["context"].get("kind", "user"), key, attributes_of(segment)
        )
    except Exception as exc:  # ImportError in the stdlib bundle, or anything else
        return _fallback(rule, flag, "evaluation failed", now, error=repr(exc)[:300])
    if error is not None:
        return _fallback(rule, flag, "evaluation error", now, error=error)
    name = assignment["variations"].get(value_key(value))
    variant = find_variant(rule, name) if name is not None else None
    if variant is None:
        return _fallback(rule, flag, "flag value not in variations", now, value=value_key(value))
    return variant


_default: FlagCache | None = None
_default_lock = threading.Lock()


def default_cache() -> FlagCache:
    """The container-wide flag cache, reading the routes table like ``rules.default_cache``."""
    global _default
    if _default is not None:  # every flag-routed request asks: no lock once it exists
        return _default
    with _default_lock:
        if _default is None:
            from edge import config

            cfg = config.load()
            _default = FlagCache(
                ttl_seconds=cfg.ttl_seconds,
                max_stale_seconds=cfg.max_stale_seconds,
                deadline_seconds=cfg.deadline_seconds,
            )
        return _default


def reset_default_cache() -> None:
    """Forget the cached flag data (tests, or the local stack after reconfiguring)."""
    global _default
    _default = None
