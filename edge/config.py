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
        "endpoint_url",
        "regions",
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
        timeout_seconds: float = 0.5,
    ) -> None:
        self.table = table
        self.regions = regions
        self.ttl_seconds = ttl_seconds
        self.variant_header = variant_header
        self.endpoint_url = endpoint_url
        self.timeout_seconds = timeout_seconds

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
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
    endpoint = raw.get("endpoint_url")
    if endpoint is not None and not isinstance(endpoint, str):
        raise ConfigError("endpoint_url must be a string or null")
    return EdgeConfig(
        table=_text(raw, "table", defaults.table),
        regions=tuple(regions),
        ttl_seconds=_seconds(raw, "ttl_seconds", defaults.ttl_seconds),
        variant_header=_text(raw, "variant_header", defaults.variant_header).lower(),
        endpoint_url=endpoint or None,
        timeout_seconds=_seconds(raw, "timeout_seconds", defaults.timeout_seconds),
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


def _seconds(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    # bool is an int subclass; "true seconds" is a typo, not a duration.
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"{key} must be a non-negative number")
    return float(value)
