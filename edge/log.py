"""One-line JSON log records to stdout, which Lambda@Edge ships to CloudWatch Logs.

The ``logging`` module would work too; a print keeps the edge free of handler setup and makes
every line greppable by ``"edgeshift"`` in the regional log groups. Client IPs never appear:
``client_ref`` replaces them with a keyed hash that is stable within a container (so one
viewer's lines can be correlated) and cannot be reversed by hashing all 2^32 IPv4 addresses.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os

# Per container, never written anywhere: a log reader cannot brute-force it back to an IP.
_KEY = os.urandom(16)


def warn(message: str, **fields: object) -> None:
    """Report a degraded decision (stale rules, pass-through) without ever raising."""
    _emit("warning", message, fields)


def info(message: str, **fields: object) -> None:
    """Report a notable, non-degraded event (a forced variant was honoured, say)."""
    _emit("info", message, fields)


def client_ref(client_ip: object) -> str:
    """A short keyed hash standing in for a client IP in log lines."""
    with contextlib.suppress(Exception):
        return hmac.new(_KEY, str(client_ip).encode(), hashlib.sha256).hexdigest()[:16]
    return "unknown"  # pragma: no cover


def _emit(level: str, message: str, fields: dict[str, object]) -> None:
    # A log line must never break a request.
    with contextlib.suppress(Exception):
        record = {"logger": "edgeshift.edge", "level": level, "message": message, **fields}
        print(json.dumps(record, default=str))
