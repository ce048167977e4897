"""Synthetic per-variant counts for workflow tests and benchmarks, without HTTP traffic.

Every tick it reads the host's route, splits ``rate`` requests per second by the live
weights and publishes ``Requests`` and ``Errors`` to CloudWatch, with each variant's error
rate given by a function of the canary's weight (so a regression can start mid-rollout).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orchestrator.store import Store

from .traffic import NAMESPACE, count_data

ErrorRate = Callable[[int], float]  # canary weight in basis points -> error rate


def constant(rate: float) -> ErrorRate:
    return lambda weight: rate


@dataclass
class MetricsFeeder:
    store: Store
    cloudwatch: Any
    host: str
    canary_errors: ErrorRate
    stable_errors: ErrorRate = field(default_factory=lambda: constant(0.005))
    rate: float = 4000.0
    tick: float = 0.5
    max_seconds: float = 120.0
    seed: int = 11
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> MetricsFeeder:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        rng = random.Random(self.seed)
        deadline = time.monotonic() + self.max_seconds
        while not self._stop.wait(self.tick) and time.monotonic() < deadline:
            route = self.store.get_route(self.host)
            if route is None:
                continue
            weights = route.weights()
            canary_weight = weights.get("canary", 0)
            data = []
            for variant, weight in weights.items():
                total = round(self.rate * self.tick * weight / 10_000)
                if total == 0:
                    continue
                errors_of = self.canary_errors if variant == "canary" else self.stable_errors
                p = errors_of(canary_weight)
                errors = sum(1 for _ in range(total) if rng.random() < p)
                data.extend(count_data(self.host, variant, total, errors, time.time()))
            if data:
                self.cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=data)
