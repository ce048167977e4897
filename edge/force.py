"""Forced variants for QA: a signed token in a header or cookie picks the variant.

Off unless both the edge config holds ``force_secret`` and the rule says ``allow_forced``.
A token is ``<variant>.<expires unix seconds>.<hex HMAC-SHA256>`` over the host, the variant
and the expiry, so a viewer cannot mint one, a token for one host does not work on another,
and a leaked token stops working when it expires. ``sign`` is what QA tooling calls.
"""

from __future__ import annotations

import hashlib
import hmac

# A token valid for longer than a day is a standing backdoor, not a QA session.
MAX_LIFETIME_SECONDS = 86_400


def sign(secret: str, host: str, variant: str, expires: int) -> str:
    """The token forcing ``variant`` on ``host`` until ``expires`` (unix seconds)."""
    return f"{variant}.{expires}.{_mac(secret, host, variant, expires)}"


def verify(secret: str, host: str, token: str, now: float) -> str | None:
    """The variant ``token`` forces on ``host`` at ``now``, or None if it is not valid."""
    variant, _, rest = token.rpartition(".")
    variant, _, expires_text = variant.rpartition(".")
    if not variant or not expires_text.isdigit() or len(expires_text) > 12:
        return None
    expires = int(expires_text)
    if not now < expires <= now + MAX_LIFETIME_SECONDS:
        return None
    # Bytes, not str: compare_digest rejects non-ASCII str, and a token is viewer input.
    if not hmac.compare_digest(rest.encode(), _mac(secret, host, variant, expires).encode()):
        return None
    return variant


def _mac(secret: str, host: str, variant: str, expires: int) -> str:
    message = f"edgeshift-force\n{host}\n{variant}\n{expires}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
