"""One-line JSON warnings to stdout, which Lambda@Edge ships to CloudWatch Logs.

The ``logging`` module would work too; a print keeps the edge free of handler setup and makes
every line greppable by ``"edgeshift"`` in the regional log groups.
"""

from __future__ import annotations

import contextlib
import json


def warn(message: str, **fields: object) -> None:
    """Report a degraded decision (stale rules, pass-through) without ever raising."""
    # A log line must never break a request.
    with contextlib.suppress(Exception):
        print(json.dumps({"logger": "edgeshift.edge", "message": message, **fields}, default=str))
