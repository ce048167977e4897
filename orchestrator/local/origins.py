"""Demo origins: HTTP servers of releases, failing a configurable share of requests.

An origin serves the release its path names (``/releases/v3/app.js`` is release v3, the
edge's ``set_uri`` writes it), so the local stack serves whatever ``vN`` a plan rolls out,
also after promotions moved the route on; ``version`` names what other paths serve.

A share can be set per variant the edge chose (``variant_errors={"canary": 0.08}``), so a
canary fails at its rate whatever its release, and for one segment as well
(``segment_errors={"browser=ie-11": 1.0}``): the origin reads the segment header the edge
sent, the way a release that breaks one browser fails only the requests from it.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler
from typing import Any

from .loopback import LoopbackServer

VARIANT_HEADER = "x-edgeshift-variant"
SEGMENT_HEADER = "x-edgeshift-segment"
_RELEASE_PATH = re.compile(r"^/releases/([A-Za-z0-9._-]{1,64})/")


class DemoOrigin(LoopbackServer):
    """Serves ``/releases/<version>/...``; echoes the variant and segment headers the edge
    set, the way an application tags its logs and metrics with the variant it served."""

    def __init__(
        self,
        version: str,
        error_rate: float,
        *,
        seed: int = 0,
        port: int = 0,
        segment_errors: Mapping[str, float] | None = None,
        variant_errors: Mapping[str, float] | None = None,
    ) -> None:
        rates = {"error_rate": error_rate, **(segment_errors or {}), **(variant_errors or {})}
        for name, rate in rates.items():
            if not 0 <= rate <= 1:
                raise ValueError(f"{name} must be within 0..1, got {rate}")
        for key in segment_errors or {}:
            dimension, sep, value = key.partition("=")
            if not sep or not dimension or not value or ";" in key:
                raise ValueError(f"segment_errors keys look like 'browser=ie-11', got {key!r}")
        self.version = version
        self.error_rate = error_rate
        self.segment_errors = dict(segment_errors or {})
        self.variant_errors = dict(variant_errors or {})
        self._random = random.Random(seed)
        self._random_lock = threading.Lock()
        super().__init__(self._handler_class(), port)

    def release_of(self, path: str) -> str:
        """The release a path names (``/releases/<version>/...``), else the origin's own."""
        match = _RELEASE_PATH.match(path)
        return match.group(1) if match else self.version

    def error_rate_for(self, segment: str | None, variant: str | None = None) -> float:
        """The highest rate of any segment part the request has, else the rate of the
        variant the edge chose, else the origin's own."""
        rate = self.variant_errors.get(variant or "", self.error_rate)
        if segment and self.segment_errors:
            for part in segment.split(";"):
                rate = max(rate, self.segment_errors.get(part, 0.0))
        return rate

    def fails(self, segment: str | None = None, variant: str | None = None) -> bool:
        rate = self.error_rate_for(segment, variant)
        with self._random_lock:
            return self._random.random() < rate

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def do_GET(self) -> None:
                segment = self.headers.get(SEGMENT_HEADER)
                failed = origin.fails(segment, self.headers.get(VARIANT_HEADER))
                release = origin.release_of(self.path)
                body = (
                    b"release failed\n" if failed else f"release {release}: {self.path}\n".encode()
                )
                self.send_response(500 if failed else 200)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(body)))
                self.send_header("x-release", release)
                for name in (VARIANT_HEADER, SEGMENT_HEADER):
                    value = self.headers.get(name)
                    if value:
                        self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
