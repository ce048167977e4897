"""``rollout dashboard``: a local web UI over the REST API, served on 127.0.0.1."""

from __future__ import annotations

from .server import DashboardServer
from .upstream import MissingCredentials, Upstream, region_of, sigv4_signer

__all__ = ["DashboardServer", "MissingCredentials", "Upstream", "region_of", "sigv4_signer"]
