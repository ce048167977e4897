"""Sticky, salted, monotonic assignment of viewers to variants.

A viewer's bucket depends only on the rollout's salt and the viewer's key, so the same viewer
lands in the same bucket on every request and in every edge container. Ranges are cumulative
with the canary first, so raising its weight only ever adds buckets to it.
"""

from __future__ import annotations

import hashlib
import os
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


# How long a minted sticky id lasts when the rule does not say: longer than any rollout.
DEFAULT_MAX_AGE = 30 * 86_400
# A sticky id the edge mints is 32 hex digits; a viewer's cookie longer than this is not ours.
MAX_KEY_CHARS = 128


def sticky_key(
    request: dict[str, Any], stickiness: dict[str, Any] | None
) -> tuple[str, str | None]:
    """The viewer's assignment key for a rule's stickiness, and the cookie value to set.

    The second item is None unless a sticky id was just minted.

    ``ip_ua`` (the default) needs nothing from the viewer. ``header`` falls back to
    ``ip_ua`` when the header is missing. ``cookie`` mints a random id when the viewer has
    none; viewer-response then sets it, so the next request carries it.
    """
    kind = (stickiness or {}).get("key", "ip_ua")
    if kind == "header":
        values = request.get("headers", {}).get(stickiness["name"].lower())  # type: ignore[index]
        if values and isinstance(values[0].get("value"), str) and values[0]["value"]:
            return "h:" + values[0]["value"][:MAX_KEY_CHARS], None
    elif kind == "cookie":
        found = cookie_value(request.get("headers", {}), stickiness["name"])  # type: ignore[index]
        if found and len(found) <= MAX_KEY_CHARS:
            return "c:" + found, None
        minted = os.urandom(16).hex()
        return "c:" + minted, minted
    return viewer_key(request), None


def cookie_value(headers: Any, name: str) -> str | None:
    """The value of cookie ``name`` across every Cookie header, tolerating odd syntax."""
    values = headers.get("cookie") if isinstance(headers, dict) else None
    if not isinstance(values, list):
        return None
    for entry in values:
        text = entry.get("value") if isinstance(entry, dict) else None
        if not isinstance(text, str):
            continue
        for pair in text.split(";"):
            key, sep, value = pair.partition("=")
            if sep and key.strip() == name:
                return value.strip().strip('"') or None
    return None


def sticky_cookie(name: str, value: str, max_age: int) -> str:
    """The Set-Cookie value for a minted sticky id: HTTPS only, first-party navigations."""
    return f"{name}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax"
