"""Demo origins: one HTTP server per release, failing a configurable share of requests."""

from __future__ import annotations

import random
import threading
from http.server import BaseHTTPRequestHandler
from typing import Any

from .loopback import LoopbackServer

VARIANT_HEADER = "x-edgeshift-variant"


class DemoOrigin(LoopbackServer):
    """Serves ``/releases/<version>/...``; echoes the variant header the edge set, the way
    an application tags its logs and metrics with the variant it served."""

    def __init__(self, version: str, error_rate: float, *, seed: int = 0, port: int = 0) -> None:
        if not 0 <= error_rate <= 1:
            raise ValueError(f"error_rate must be within 0..1, got {error_rate}")
        self.version = version
        self.error_rate = error_rate
        self._random = random.Random(seed)
        self._random_lock = threading.Lock()
        super().__init__(self._handler_class(), port)

    def fails(self) -> bool:
        with self._random_lock:
            return self._random.random() < self.error_rate

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        origin = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def do_GET(self) -> None:
                failed = origin.fails()
                body = (
                    b"release failed\n"
                    if failed
                    else f"release {origin.version}: {self.path}\n".encode()
                )
                self.send_response(500 if failed else 200)
                self.send_header("content-type", "text/plain")
                self.send_header("content-length", str(len(body)))
                self.send_header("x-release", origin.version)
                variant = self.headers.get(VARIANT_HEADER)
                if variant:
                    self.send_header(VARIANT_HEADER, variant)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
