"""Edge configuration, bundled with the function as ``config.json``.

Lambda@Edge cannot have environment variables, so the deployment writes the table name, its
replica regions and the distribution's hosts into the zip. ``EDGESHIFT_EDGE_CONFIG``
overrides the path for local runs and tests only: CloudFront never sets it.
"""

from __future__ import annotations

import json
import os
from typing import Any

ENV_PATH = "EDGESHIFT_EDGE_CONFIG"
# The debug header's name is budgeted at this length when a generated response is sized.
MAX_HEADER_NAME_CHARS = 64
_BUNDLED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.json")


class ConfigError(Exception):
    """The configuration file is unreadable or holds a value of the wrong type."""


class EdgeConfig:
    """What the edge needs to find the routes table; immutable after load."""

    __slots__ = (
        "deadline_seconds",
        "debug_header",
        "endpoint_url",
        "force_cookie",
        "force_header",
        "force_secret",
        "host_header",
        "hosts",
        "max_hosts",
        "max_stale_seconds",
        "regions",
        "rule_header",
        "segment_header",
        "sticky_header",
        "table",
        "ttl_seconds",
        "variant_header",
    )

    def __init__(
        self,
        *,
        table: str = "edgeshift-routes",
        regions: tuple[str, ...] = ("us-east-1",),
        ttl_seconds: float = 5.0,
        variant_header: str = "x-edgeshift-variant",
        endpoint_url: str | None = None,
        deadline_seconds: float = 0.25,
        max_stale_seconds: float = 300.0,
        sticky_header: str = "x-edgeshift-sticky-key",
        host_header: str = "x-edgeshift-host",
        debug_header: str | None = None,
        force_header: str = "x-edgeshift-force",
        force_cookie: str = "edgeshift-force",
        force_secret: str | None = None,
        rule_header: str = "x-edgeshift-rule",
        hosts: tuple[str, ...] | None = None,
        max_hosts: int = 1024,
        segment_header: str = "x-edgeshift-segment",
    ) -> None:
        self.table = table
        self.regions = regions
        self.ttl_seconds = ttl_seconds
        self.variant_header = variant_header
        self.endpoint_url = endpoint_url
        # One budget per request for all table work: connect, TLS, every read, every page and
        # every retry. Far under the viewer trigger's 5 s; past it the edge serves cached
        # rules or stable.
        self.deadline_seconds = deadline_seconds
        # Past this age a table outage stops serving stale rules: everyone gets stable.
        self.max_stale_seconds = max_stale_seconds
        # Carries a freshly minted sticky id from viewer-request to viewer-response.
        self.sticky_header = sticky_header
        # Carries the viewer's host to origin-request, where Host is the origin's unless the
        # distribution forwards it; the origin request policy must forward this header.
        self.host_header = host_header
        # None turns the debug response header off (production default).
        self.debug_header = debug_header
        self.force_header = force_header
        self.force_cookie = force_cookie
        # None turns forced variants off everywhere, whatever a rule says.
        self.force_secret = force_secret
        # Carries "<revision>:<path_rule>" of the rule viewer-request chose, so the later
        # triggers use that rule instead of guessing it from the (rewritten) URI.
        self.rule_header = rule_header
        # The only hosts whose rules are read (the stack writes edgeshift:hosts); any other
        # Host passes through without a table read. None: every host is looked up, and hosts
        # without rules are remembered in a bounded cache of max_hosts entries.
        self.hosts = hosts
        self.max_hosts = max_hosts
        # Carries the viewer's segment (browser, device, country: ``edge.segments``) to the
        # origin, so applications can tag their metrics with it; the origin request policy
        # must forward it. Not part of the cache key.
        self.segment_header = segment_header

    def internal_headers(self) -> tuple[str, ...]:
        """Headers viewer-request sets for the later triggers; a viewer's copy is dropped."""
        return (
            self.variant_header,
            self.sticky_header,
            self.host_header,
            self.rule_header,
            self.segment_header,
        )

    def own_headers(self) -> frozenset[str]:
        """Every header the edge reads or writes itself; templates may not read them."""
        extra = (self.force_header, self.debug_header or self.variant_header)
        return frozenset(self.internal_headers() + extra)

    def __repr__(self) -> str:
        shown = {name: getattr(self, name) for name in self.__slots__}
        if self.force_secret:
            shown["force_secret"] = "***"  # the secret must never reach a log line
        fields = ", ".join(f"{name}={value!r}" for name, value in shown.items())
        return f"EdgeConfig({fields})"


_cached: EdgeConfig | None = None


def load() -> EdgeConfig:
    """Return the configuration, reading the file only on the first call in a container."""
    global _cached
    if _cached is None:
        _cached = _read(os.environ.get(ENV_PATH) or _BUNDLED)
    return _cached


def reset() -> None:
    """Forget the cached configuration so the next ``load`` reads the file again (tests)."""
    global _cached
    _cached = None


def parse(raw: Any) -> EdgeConfig:
    """Build a config from decoded JSON, applying defaults for absent keys."""
    if not isinstance(raw, dict):
        raise ConfigError("config must be a JSON object")
    # A misspelt or renamed key would otherwise leave its default in force unnoticed (the
    # bundle build parses the config it writes, so this fails at synth, not at the edge).
    unknown = sorted(str(key) for key in raw if key not in EdgeConfig.__slots__)
    if unknown:
        known = ", ".join(EdgeConfig.__slots__)
        raise ConfigError(f"unknown key {unknown[0]!r} (known keys: {known})")
    defaults = EdgeConfig()
    regions = raw.get("regions", list(defaults.regions))
    if (
        not isinstance(regions, list)
        or not regions
        or not all(isinstance(r, str) and r for r in regions)
    ):
        raise ConfigError("regions must be a non-empty list of region names")
    hosts = raw.get("hosts")
    if hosts is not None and (
        not isinstance(hosts, list) or not all(isinstance(h, str) and h for h in hosts)
    ):
        raise ConfigError("hosts must be null or a list of host names")
    max_hosts = raw.get("max_hosts", defaults.max_hosts)
    if isinstance(max_hosts, bool) or not isinstance(max_hosts, int) or max_hosts < 1:
        raise ConfigError("max_hosts must be a positive integer")
    debug = (_optional_text(raw, "debug_header") or "").lower() or None
    if debug is not None and len(debug) > MAX_HEADER_NAME_CHARS:
        raise ConfigError(f"debug_header must be at most {MAX_HEADER_NAME_CHARS} characters")
    force = raw.get("force_secret")
    if force is not None and (not isinstance(force, str) or len(force) < 16):
        raise ConfigError("force_secret must be null or a string of at least 16 characters")
    return EdgeConfig(
        table=_text(raw, "table", defaults.table),
        regions=tuple(regions),
        ttl_seconds=_seconds(raw, "ttl_seconds", defaults.ttl_seconds),
        variant_header=_text(raw, "variant_header", defaults.variant_header).lower(),
        endpoint_url=_optional_text(raw, "endpoint_url"),
        deadline_seconds=_seconds(raw, "deadline_seconds", defaults.deadline_seconds),
        max_stale_seconds=_seconds(raw, "max_stale_seconds", defaults.max_stale_seconds),
        sticky_header=_text(raw, "sticky_header", defaults.sticky_header).lower(),
        host_header=_text(raw, "host_header", defaults.host_header).lower(),
        debug_header=debug,
        force_header=_text(raw, "force_header", defaults.force_header).lower(),
        force_cookie=_text(raw, "force_cookie", defaults.force_cookie),
        force_secret=force,
        rule_header=_text(raw, "rule_header", defaults.rule_header).lower(),
        hosts=None if hosts is None else tuple(h.strip().lower() for h in hosts),
        max_hosts=max_hosts,
        segment_header=_text(raw, "segment_header", defaults.segment_header).lower(),
    )


def _read(path: str) -> EdgeConfig:
    try:
        with open(path, encoding="utf-8") as handle:
            raw = json.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc
    return parse(raw)


def _text(raw: dict[str, Any], key: str, default: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a non-empty string")
    return value


def _optional_text(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise ConfigError(f"{key} must be a string or null")
    return value or None


def _seconds(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    # bool is an int subclass; "true seconds" is a typo, not a duration.
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{key} must be a non-negative number")
    return float(value)
