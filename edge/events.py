"""Reading the Lambda@Edge event envelope without trusting it.

Each handler acts only on its own trigger: a viewer-request function attached as an
origin-request trigger by mistake would rewrite URIs twice, and a viewer-response function
attached as origin-response would get its Set-Cookie cached. An event with no ``eventType``
is accepted (tests and hand-made events often leave it out).
"""

from __future__ import annotations

from typing import Any

from edge.log import warn


def cf_record(event: Any) -> Any:
    """``Records[0].cf`` of a CloudFront event; raises on anything else."""
    return event["Records"][0]["cf"]


def part_of(event: Any, part: str, trigger: str) -> Any:
    """The ``request`` or ``response`` of the event, or None when there is none."""
    try:
        return cf_record(event)[part]
    except Exception:  # not a CloudFront event: there is nothing to change
        warn(f"{trigger} got an event without a {part}")
        return None


def is_trigger(event: Any, trigger: str) -> bool:
    """False when the event says it comes from another trigger than ``trigger``."""
    try:
        kind = cf_record(event).get("config", {}).get("eventType")
    except Exception:
        return False
    if kind is None or kind == trigger:
        return True
    warn(f"{trigger} handler invoked for another trigger", event_type=str(kind)[:64])
    return False
