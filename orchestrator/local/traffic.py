"""A bounded population of simulated viewers, and per-variant counts published to CloudWatch.

Each viewer is an (IP, User-Agent) pair, so the edge's sticky hash sees distinct users.
Counts are what the viewers saw, keyed by the variant the origin says it served; they go
to CloudWatch as high-resolution ``Requests`` and ``Errors`` sums every second, and, when a
local Datadog endpoint runs, to it as ``edgeshift.demo.requests`` / ``edgeshift.demo.errors``
tagged ``host`` and ``variant``.
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from .datadog import PointStore
from .loopback import LOOPBACK
from .origins import VARIANT_HEADER

NAMESPACE = "EdgeShift/Demo"
DATADOG_REQUESTS = "edgeshift.demo.requests"
DATADOG_ERRORS = "edgeshift.demo.errors"
USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/131.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 Version/18.1",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
)
UNASSIGNED = "unassigned"


def population(size: int) -> list[tuple[str, str]]:
    """Viewers from 198.18.0.0/15, the range reserved for benchmarks: never a real client."""
    return [
        (f"198.{18 + i // 65536}.{i // 256 % 256}.{i % 256}", USER_AGENTS[i % 4])
        for i in range(size)
    ]


@dataclass
class Tally:
    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, variant: str, failed: bool) -> None:
        with self.lock:
            self.requests[variant] += 1
            if failed:
                self.errors[variant] += 1

    def take(self) -> tuple[Counter[str], Counter[str]]:
        with self.lock:
            taken = (self.requests.copy(), self.errors.copy())
            self.requests.clear()
            self.errors.clear()
            return taken


@dataclass
class TrafficGenerator:
    """Sends at most ``max_requests`` within ``max_seconds``, at about ``rate`` per second."""

    edge_port: int
    host: str
    cloudwatch: Any
    users: int = 2000
    rate: float = 400.0
    workers: int = 4
    max_requests: int = 200_000
    max_seconds: float = 120.0
    path: str = "/app.js"
    seed: int = 7
    datadog: PointStore | None = None
    totals: Tally = field(default_factory=Tally)
    _pending: Tally = field(default_factory=Tally)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _sent: int = 0
    _sent_lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> TrafficGenerator:
        viewers = population(self.users)
        deadline = time.monotonic() + self.max_seconds
        for worker in range(self.workers):
            rng = random.Random(self.seed * 1000 + worker)
            thread = threading.Thread(
                target=self._drive, args=(viewers, rng, deadline), daemon=True
            )
            self._threads.append(thread)
        self._threads.append(threading.Thread(target=self._publish_loop, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._flush()

    def _claim(self) -> bool:
        with self._sent_lock:
            if self._sent >= self.max_requests:
                return False
            self._sent += 1
            return True

    def _drive(self, viewers: list[tuple[str, str]], rng: random.Random, deadline: float) -> None:
        pause = self.workers / self.rate
        connection = http.client.HTTPConnection(LOOPBACK, self.edge_port, timeout=10)
        while not self._stop.is_set() and time.monotonic() < deadline and self._claim():
            started = time.monotonic()
            ip, agent = rng.choice(viewers)
            variant, failed = self._request(connection, ip, agent)
            self.totals.add(variant, failed)
            self._pending.add(variant, failed)
            time.sleep(max(0.0, pause - (time.monotonic() - started)))
        connection.close()

    def _request(
        self, connection: http.client.HTTPConnection, ip: str, agent: str
    ) -> tuple[str, bool]:
        headers = {"Host": self.host, "User-Agent": agent, "X-Forwarded-For": ip}
        try:
            connection.request("GET", self.path, headers=headers)
            response = connection.getresponse()
            response.read()
            return response.getheader(VARIANT_HEADER) or UNASSIGNED, response.status >= 500
        except (OSError, http.client.HTTPException):
            connection.close()  # reconnects on the next request
            return UNASSIGNED, True

    def _publish_loop(self) -> None:
        while not self._stop.wait(1.0):
            self._flush()

    def _flush(self) -> None:
        requests, errors = self._pending.take()
        if not requests:
            return
        now = time.time()
        data = []
        for variant, count in requests.items():
            if self.datadog is not None:
                tags = {"host": self.host, "variant": variant}
                self.datadog.add(DATADOG_REQUESTS, tags, int(now), float(count))
                self.datadog.add(DATADOG_ERRORS, tags, int(now), float(errors[variant]))
            data.extend(count_data(self.host, variant, count, errors[variant], now))
        self.cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)


def count_data(host: str, variant: str, total: int, errors: int, at: float) -> list[dict[str, Any]]:
    """CloudWatch MetricData for one variant's request and error counts (1 s resolution)."""
    dimensions = [{"Name": "Host", "Value": host}, {"Name": "Variant", "Value": variant}]
    return [
        {
            "MetricName": name,
            "Dimensions": dimensions,
            "Timestamp": at,
            "Value": float(value),
            "Unit": "Count",
            "StorageResolution": 1,
        }
        for name, value in (("Requests", total), ("Errors", errors))
    ]
