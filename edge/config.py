"""Edge configuration, bundled with the function as ``config.json``.

Lambda@Edge cannot have environment variables, so the deployment writes the table name and
replica regions into the zip. ``EDGESHIFT_EDGE_CONFIG`` overrides the path for local runs and
tests only: CloudFront never sets it.
"""

from __future__ import annotations

import json
import os
from typing import Any

ENV_PATH = "EDGESHIFT_EDGE_CONFIG"
_BUNDLED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config.json")


class ConfigError(Exception):
    """The configuration file is unreadable or holds a value of the wrong type."""


class EdgeConfig:
    """What the edge needs to find the routes table; immutable after load."""

    __slots__ = (
        "debug_header",
        "endpoint_url",
        "force_cookie",
        "force_header",
        "force_secret",
        "host_header",
        "max_stale_seconds",
        "regions",
        "sticky_header",
        "table",
        "timeout_seconds",
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
        timeout_seconds: float = 0.3,
        max_stale_seconds: float = 300.0,
        sticky_header: str = "x-edgeshift-sticky-key",
        host_header: str = "x-edgeshift-host",
        debug_header: str | None = None,
        force_header: str = "x-edgeshift-force",
        force_cookie: str = "edgeshift-force",
        force_secret: str | None = None,
    ) -> None:
        self.table = table
        self.regions = regions
        self.ttl_seconds = ttl_seconds
        self.variant_header = variant_header
        self.endpoint_url = endpoint_url
        self.timeout_seconds = timeout_seconds
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
    defaults = EdgeConfig()
    regions = raw.get("regions", list(defaults.regions))
    if (
        not isinstance(regions, list)
        or not regions
        or not all(isinstance(r, str) and r for r in regions)
    ):
        raise ConfigError("regions must be a non-empty list of region names")
    force = raw.get("force_secret")
    if force is not None and (not isinstance(force, str) or len(force) < 16):
        raise ConfigError("force_secret must be null or a string of at least 16 characters")
    return EdgeConfig(
        table=_text(raw, "table", defaults.table),
        regions=tuple(regions),
        ttl_seconds=_seconds(raw, "ttl_seconds", defaults.ttl_seconds),
        variant_header=_text(raw, "variant_header", defaults.variant_header).lower(),
        endpoint_url=_optional_text(raw, "endpoint_url"),
        timeout_seconds=_seconds(raw, "timeout_seconds", defaults.timeout_seconds),
        max_stale_seconds=_seconds(raw, "max_stale_seconds", defaults.max_stale_seconds),
        sticky_header=_text(raw, "sticky_header", defaults.sticky_header).lower(),
        host_header=_text(raw, "host_header", defaults.host_header).lower(),
        debug_header=(_optional_text(raw, "debug_header") or "").lower() or None,
        force_header=_text(raw, "force_header", defaults.force_header).lower(),
        force_cookie=_text(raw, "force_cookie", defaults.force_cookie),
        force_secret=force,
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
