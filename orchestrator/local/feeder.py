"""Synthetic per-variant counts for workflow tests and benchmarks, without HTTP traffic.

Every tick it reads the host's route, splits ``rate`` requests per second by the live
weights and publishes ``Requests`` and ``Errors`` to CloudWatch, with each variant's error
rate given by a function of the canary's weight (so a regression can start mid-rollout).

With a segment mix (``segments``: shares of segment labels, e.g. ``traffic.segment_mix()``)
the requests are also spread over segments and published per segment dimension, as the
traffic generator does; ``segment_canary_errors`` gives the canary a different error rate
for one segment value (``{"browser=ie-11": constant(1.0)}``), the way a release breaks one
browser. Without a mix only the totals are published, exactly as before.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.store import Store

from .traffic import Tally, count_data, put_counts, tally_data

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
    segments: Sequence[tuple[float, str]] | None = None
    segment_canary_errors: Mapping[str, ErrorRate] = field(default_factory=dict)
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
            data = self.tick_data(route.weights(), rng, time.time())
            if data:
                put_counts(self.cloudwatch, data)

    def tick_data(
        self, weights: Mapping[str, int], rng: random.Random, at: float
    ) -> list[dict[str, Any]]:
        """One tick's MetricData for the live weights (totals, then segments if mixed)."""
        canary_weight = weights.get("canary", 0)
        if self.segments is None:
            data = []
            for variant, weight in weights.items():
                total = round(self.rate * self.tick * weight / 10_000)
                if total == 0:
                    continue
                errors_of = self.canary_errors if variant == "canary" else self.stable_errors
                p = errors_of(canary_weight)
                errors = sum(1 for _ in range(total) if rng.random() < p)
                data.extend(count_data(self.host, variant, total, errors, at))
            return data
        return tally_data(self.host, self.tick_tally(weights, rng), at)

    def tick_tally(self, weights: Mapping[str, int], rng: random.Random) -> Tally:
        """One tick's requests spread over the segment mix, errors drawn per segment."""
        assert self.segments is not None
        labels = [label for _, label in self.segments]
        shares = [share for share, _ in self.segments]
        canary_weight = weights.get("canary", 0)
        tally = Tally()
        for variant, weight in weights.items():
            total = round(self.rate * self.tick * weight / 10_000)
            if total == 0:
                continue
            base = self.canary_errors if variant == "canary" else self.stable_errors
            for label, n in Counter(rng.choices(labels, weights=shares, k=total)).items():
                p = base(canary_weight)
                if variant == "canary":
                    for part in label.split(";"):
                        if part in self.segment_canary_errors:
                            p = max(p, self.segment_canary_errors[part](canary_weight))
                errors = sum(1 for _ in range(n) if rng.random() < p)
                tally.requests[variant] += n
                tally.errors[variant] += errors
                tally.segment_requests[variant, label] += n
                tally.segment_errors[variant, label] += errors
        return tally
