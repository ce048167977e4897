"""Sticky, salted, monotonic assignment of viewers to variants.

A viewer's bucket depends only on the rollout's salt and the viewer's key, so the same viewer
lands in the same bucket on every request and in every edge container. Ranges are cumulative
with the canary first, so raising its weight only ever adds buckets to it.
"""

from __future__ import annotations

import hashlib
from typing import Any

BUCKETS = 10_000  # weights are basis points


def bucket_of(salt: str, key: str) -> int:
    """Map a viewer key to a bucket in [0, 10000), reshuffled by each rollout's salt."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def choose_variant(variants: Any, bucket: int) -> dict[str, Any] | None:
    """Return the variant whose cumulative weight range holds ``bucket``, or None.

    None means the weights do not cover the bucket or the list is malformed; either way the
    caller serves stable by passing the request through.
    """
    if not isinstance(variants, list):
        return None
    upper = 0
    for variant in variants:
        weight = variant.get("weight") if isinstance(variant, dict) else None
        # bool is an int subclass, and True basis points is a bug upstream, not a weight.
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 0:
            return None
        upper += weight
        if bucket < upper:
            chosen: dict[str, Any] = variant
            return chosen
    return None


def viewer_key(request: dict[str, Any]) -> str:
    """Identify a viewer without a cookie: client IP and User-Agent, as Plaid did."""
    client_ip = request.get("clientIp") or ""
    agent = ""
    values = request.get("headers", {}).get("user-agent")
    if values:
        agent = values[0].get("value") or ""
    return f"{client_ip}|{agent}"
