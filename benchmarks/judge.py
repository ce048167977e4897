"""How often each judge rolls back a healthy canary, and how soon it catches a bad one.

Thousands of simulated rollouts per scenario (fixed seed). The project's judge runs as a
deployed rollout does, through ``orchestrator.analysis.replay`` (the Analyze task's own
step: dispersion, judge, limits, warm-up, ``decide``, extensions), with the stable fleet's
last hour as preflight would read it. The judges peers use see the very same counts:

- ``absolute-threshold`` (Flagger / Argo Rollouts): the canary's rate over the last
  interval against a fixed limit at 1.5x the normal rate, rolled back at the first breach
  (Argo's default ``failureLimit: 0``); no baseline.
- ``z-test-per-interval``: a two-proportion z test on each interval's counts at 95%, one
  sided, with no correction for testing again every interval.
- ``mann-whitney`` (Kayenta): the per-interval rates of the stage so far, canary against
  baseline, Mann-Whitney U at 98% confidence (Kayenta's default), two sided, failing on
  the bad side.

Traffic: each fleet's rate in each minute is the scenario's rate times an independent
lognormal factor of log-sd ``s`` (mean 1; ``s`` = 0 is ideal binomial counts), as real
fleets vary with cache state, hosts, clients and retries. A warm-up scenario runs the
canary at 3x for the first two minutes of each stage. The rollout: stages 5% / 25% / 50%,
ten 1-minute looks each unless the scenario's bake says otherwise. Peers look during each
stage's bake (after the same ``initial_delay``); the project's judge may extend an
inconclusive bake, and a stage that ends without a verdict counts as a rollback.

The ``split-*`` scenarios draw requests viewer by viewer (``VIEWER_MIX``: sticky viewers,
heavy-tailed requests per viewer), so the canary's share per minute varies well beyond
binomial, and ask how often the served-split check pauses the rollout: an edge serving the
weight, and one serving twice it. No peer checks the split, so they have no row there.
"""

from __future__ import annotations

import math
import os
import random
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from orchestrator.analysis.counts import Counts
from orchestrator.analysis.forecast import forecast, plan_with_bake
from orchestrator.analysis.replay import Window, replay
from orchestrator.analysis.sequential import z_quantile
from orchestrator.models import RolloutPlan
from orchestrator.models.analysis import SPLIT_VIEWERS, Direction, Noise

SEED = 20240607
ROLLOUTS = int(os.environ.get("EDGESHIFT_BENCH_ROLLOUTS", "2000"))
# Comma-separated scenario names to run (default: all), for iterating on a few.
ONLY = tuple(n for n in os.environ.get("EDGESHIFT_BENCH_SCENARIOS", "").split(",") if n)
STAGES = (5.0, 25.0, 50.0)
LOOKS = 10
PER_MINUTE = 20_000
HISTORY_MINUTES = 60
ABSOLUTE_LIMIT = 1.5  # x the normal rate
Z_95 = z_quantile(0.95)
Z_98_TWO_SIDED = z_quantile(0.99)


@dataclass(frozen=True)
class Scenario:
    name: str
    baseline_rate: float
    canary_rate: float
    direction: Direction = Direction.LOWER
    per_minute: int = PER_MINUTE
    noise: float = 0.0  # log-sd of each fleet's per-minute rate factor
    warm_up: float = 1.0  # the canary's rate factor in the first two minutes of a stage
    initial_delay: int = 0
    bake_from_forecast: bool = False  # bake each stage as the feasibility forecast says
    segments: int = 0  # browser values declared and drawn (SEGMENT_MIX), 0: none
    broken_share: float = 0.0  # traffic share of a browser where the canary always fails
    declared: bool = True  # the plan declares the browser segment (False: totals only)
    viewers: bool = False  # requests come from sticky viewers (VIEWER_MIX), not one by one
    served: float = 1.0  # the canary's served share over its weight (2: the edge serves 2x)
    persistent: bool = False  # the same viewers all stage long, not new ones every minute
    by_viewers: bool = False  # the plan counts viewers for the split (analysis.split.viewers)

    @property
    def healthy(self) -> bool:
        """Should be promoted: as good as the baseline, or worse by less than half the
        tolerance (1.2x of a 1.5x tolerance), which no team wants rolled back."""
        if self.broken_share or self.served != 1.0:
            return False
        return self.canary_rate <= self.baseline_rate * 1.2 + 1e-12 and (
            self.direction is Direction.LOWER or self.canary_rate == self.baseline_rate
        )

    @property
    def normal_rate(self) -> float:  # what a peer's fixed threshold is set against
        return self.baseline_rate


def _error(name: str, ratio: float, **kwargs: Any) -> Scenario:
    return Scenario(name, 0.01, 0.01 * ratio, **kwargs)


SCENARIOS = (
    _error("healthy", 1.0),
    _error("healthy-s0.1", 1.0, noise=0.1),
    _error("healthy-s0.2", 1.0, noise=0.2),
    _error("healthy-200k", 1.0, per_minute=200_000),
    _error("healthy-200k-s0.1", 1.0, per_minute=200_000, noise=0.1),
    _error("healthy-200k-s0.2", 1.0, per_minute=200_000, noise=0.2),
    _error("within-tolerance-1.1x", 1.1),
    _error("within-tolerance-1.1x-200k", 1.1, per_minute=200_000),
    _error("within-tolerance-1.2x", 1.2),
    _error("within-tolerance-1.2x-200k", 1.2, per_minute=200_000),
    _error("warm-up-3x-2m", 1.0, warm_up=3.0, initial_delay=120),
    _error("warm-up-3x-2m-no-delay", 1.0, warm_up=3.0),
    _error("regression-2x", 2.0),
    _error("regression-2x-s0.2", 2.0, noise=0.2),
    _error("regression-1.5x", 1.5),
    Scenario("conversion-drop-10pct", 0.05, 0.045, Direction.HIGHER),
    Scenario("healthy-conversion", 0.05, 0.05, Direction.HIGHER),
    Scenario(
        "healthy-conversion-forecast-bake", 0.05, 0.05, Direction.HIGHER, bake_from_forecast=True
    ),
    _error("segments-healthy-20", 1.0, segments=20, noise=0.1),
    _error("segment-broken-0.5pct", 1.0, segments=20, noise=0.1, broken_share=0.005),
    _error("segment-broken-0.1pct", 1.0, segments=20, noise=0.1, broken_share=0.001),
    _error(
        "segment-broken-0.1pct-undeclared",
        1.0,
        segments=20,
        noise=0.1,
        broken_share=0.001,
        declared=False,
    ),
    _error("split-correct-viewers", 1.0, viewers=True),
    _error("split-served-2x-viewers", 1.0, viewers=True, served=2.0),
    # Harsher: heavy viewers (NAT gateways, crawlers) that stay on their variant for the
    # whole stage, a clustering no period-to-period spread shows.
    _error("split-correct-viewers-persistent", 1.0, viewers=True, persistent=True),
    _error("split-served-2x-viewers-persistent", 1.0, viewers=True, served=2.0, persistent=True),
    # The same world, with the plan counting the viewers each variant served in a minute
    # (analysis.split.viewers) instead of requests: a heavy client is one viewer.
    _error(
        "split-correct-viewers-persistent-counted",
        1.0,
        viewers=True,
        persistent=True,
        by_viewers=True,
    ),
    _error(
        "split-served-2x-viewers-persistent-counted",
        1.0,
        viewers=True,
        served=2.0,
        persistent=True,
        by_viewers=True,
    ),
    _error("split-correct-viewers-counted", 1.0, viewers=True, by_viewers=True),
    _error("split-served-2x-viewers-counted", 1.0, viewers=True, served=2.0, by_viewers=True),
    # A tenth of the traffic, the same viewers all stage: few viewers, each counted again
    # every minute, in requests and in viewers.
    _error(
        "split-correct-viewers-persistent-2k", 1.0, per_minute=2_000, viewers=True, persistent=True
    ),
    _error(
        "split-correct-viewers-persistent-counted-2k",
        1.0,
        per_minute=2_000,
        viewers=True,
        persistent=True,
        by_viewers=True,
    ),
    _error(
        "split-served-2x-viewers-persistent-counted-2k",
        1.0,
        per_minute=2_000,
        viewers=True,
        served=2.0,
        persistent=True,
        by_viewers=True,
    ),
    _error("low-traffic", 1.0, per_minute=2_000),
    _error("low-traffic-regression-2x", 2.0, per_minute=2_000),
    Scenario("zero-error-baseline", 0.0, 0.005),
)
JUDGES = ("edgeshift", "absolute-threshold", "z-test-per-interval", "mann-whitney")


def plan_for(scenario: Scenario) -> RolloutPlan:
    lower = scenario.direction is Direction.LOWER
    metric = {
        "name": "error-rate" if lower else "conversion",
        "numerator": "Errors" if lower else "Conversions",
        "denominator": "Requests",
        "direction": scenario.direction.value,
        # An error rate may pass up to 1.5x the baseline's; a conversion only 5% lower.
        "tolerance": {"relative": 0.5, "absolute": 0.001} if lower else {"relative": 0.05},
        "min_samples": 500,
    }
    plan = RolloutPlan.model_validate(
        {
            "target": {"host": "bench.example.com"},
            "stable": {"name": "stable", "version": "v1"},
            "canary": {"name": "canary", "version": "v2"},
            "stages": [{"weight": w, "bake": "10m", "interval": "1m"} for w in STAGES],
            "analysis": {
                "namespace": "Bench",
                "dimensions": {"Variant": "{variant}"},
                "metrics": [metric],
                "initial_delay": scenario.initial_delay,
                "segments": [{"by": "browser"}] if scenario.segments and scenario.declared else [],
                **({"split": {"viewers": "Viewers"}} if scenario.by_viewers else {}),
            },
        }
    )
    if scenario.bake_from_forecast:
        plan = forecast_bakes(plan, scenario)
    return plan


def forecast_of(plan: RolloutPlan, scenario: Scenario) -> list[Any]:
    name = plan.analysis.judged_metrics()[0].name
    noise = {name: Noise(kappa=scenario.noise**2, df=HISTORY_MINUTES - 1)}
    return forecast(plan, scenario.per_minute, {name: scenario.baseline_rate}, noise)


def forecast_bakes(plan: RolloutPlan, scenario: Scenario) -> RolloutPlan:
    for stage in forecast_of(plan, scenario):
        if stage.recommended_bake:
            plan = plan_with_bake(plan, stage.stage, stage.recommended_bake)
    return RolloutPlan.model_validate(plan.model_dump())


def binomial(rng: random.Random, n: int, p: float) -> int:
    """Exact inversion for small means, a normal approximation for large ones."""
    if p <= 0 or n <= 0:
        return 0
    if p >= 1:
        return n
    if p > 0.5:
        return n - binomial(rng, n, 1 - p)
    mean = n * p
    if mean > 60:
        return min(n, max(0, round(rng.gauss(mean, math.sqrt(mean * (1 - p))))))
    u, k = rng.random(), 0
    probability = (1 - p) ** n
    cumulative = probability
    ratio = p / (1 - p)
    while u > cumulative and k < n:
        probability *= (n - k) / (k + 1) * ratio
        k += 1
        cumulative += probability
    return k


class Traffic:
    """One rollout's counts, drawn once per (stage, look) and shared by every judge."""

    def __init__(self, scenario: Scenario, plan: RolloutPlan, rng: random.Random) -> None:
        self.scenario, self.plan, self.rng = scenario, plan, rng
        self.metric = plan.analysis.judged_metrics()[0].name
        self.drawn: dict[tuple[int, int], tuple[Counts, Counts]] = {}

    def _rate(self, rate: float) -> float:
        s = self.scenario.noise
        return rate * math.exp(self.rng.gauss(0, s) - s * s / 2) if s else rate

    def pair(self, stage: int, look: int) -> tuple[Counts, Counts]:
        if (stage, look) not in self.drawn:
            weight = self.plan.stages[stage].weight
            minutes = self.plan.stages[stage].interval / 60
            canary_n = round(self.scenario.per_minute * minutes * weight / 100)
            baseline_n = round(self.scenario.per_minute * minutes) - canary_n
            factor = self.scenario.warm_up if look < 2 else 1.0
            canary_rate = min(1.0, self._rate(self.scenario.canary_rate) * factor)
            self.drawn[stage, look] = (
                Counts(binomial(self.rng, canary_n, canary_rate), canary_n),
                Counts(
                    binomial(self.rng, baseline_n, self._rate(self.scenario.baseline_rate)),
                    baseline_n,
                ),
            )
        return self.drawn[stage, look]

    def source(self, window: Window) -> dict[str, dict[str, tuple[int, int]]]:
        canary, baseline = self.pair(window.stage, window.look)
        return {
            self.metric: {
                "canary": (canary.errors, canary.total),
                "baseline": (baseline.errors, baseline.total),
            }
        }

    def history(self) -> list[dict[str, tuple[int, int]]]:
        n = self.scenario.per_minute
        return [
            {self.metric: (binomial(self.rng, n, self._rate(self.scenario.baseline_rate)), n)}
            for _ in range(HISTORY_MINUTES)
        ]


# Browser shares of the traffic and their own error rates relative to the scenario's:
# a few large families, a long tail; old browsers fail more. Scaled to sum to 1.
SEGMENT_MIX = (
    ("chrome-131", 0.30, 0.8),
    ("safari-18", 0.16, 0.9),
    ("chrome-130", 0.09, 0.8),
    ("edge-131", 0.08, 0.9),
    ("safari-17", 0.07, 1.1),
    ("samsung-26", 0.05, 1.3),
    ("firefox-133", 0.045, 1.0),
    ("chrome-129", 0.035, 1.0),
    ("safari-16", 0.03, 1.5),
    ("firefox-132", 0.025, 1.0),
    ("opera-114", 0.02, 1.2),
    ("edge-130", 0.018, 1.0),
    ("chrome-109", 0.015, 2.0),
    ("samsung-25", 0.012, 1.4),
    ("safari-15", 0.01, 2.0),
    ("firefox-115", 0.008, 1.8),
    ("yandex-24", 0.006, 1.5),
    ("ucbrowser-15", 0.005, 3.0),
    ("other", 0.004, 3.0),
    ("ie-11", 0.003, 4.0),
)
SEGMENT_NOISE = 0.2  # log-sd of each browser's rate per fleet and minute, beside the fleet's
BROKEN = "broken-1"


def segment_mix(scenario: Scenario) -> list[tuple[str, float, float]]:
    """(value, share, rate) of each browser; a broken one takes ``broken_share``. The
    rates are scaled so that the traffic's rate is the scenario's."""
    mix = SEGMENT_MIX[: scenario.segments]
    total = sum(share for _, share, _ in mix)
    rest = 1 - scenario.broken_share
    rows = [(name, share / total * rest, factor) for name, share, factor in mix]
    mean = sum(share * factor for _, share, factor in rows) / rest
    rows = [(name, share, factor / mean) for name, share, factor in rows]
    if scenario.broken_share:
        rows.append((BROKEN, scenario.broken_share, 1.0))
    return rows


class SegmentTraffic(Traffic):
    """Counts per browser, drawn per fleet and minute with each browser's own noise; the
    totals are their sums, so the peers see exactly what the segments add up to."""

    def __init__(self, scenario: Scenario, plan: RolloutPlan, rng: random.Random) -> None:
        super().__init__(scenario, plan, rng)
        self.mix = segment_mix(scenario)
        self.cut: dict[tuple[int, int], dict[str, tuple[Counts, Counts]]] = {}

    def _segment_rate(self, rate: float) -> float:
        return rate * math.exp(self.rng.gauss(0, SEGMENT_NOISE) - SEGMENT_NOISE**2 / 2)

    def _draw(self, n: int, rate: float, name: str, canary: bool) -> Counts:
        size = max(0, n)
        if canary and name == BROKEN:
            return Counts(size, size)
        return Counts(binomial(self.rng, size, min(1.0, self._segment_rate(rate))), size)

    def pair(self, stage: int, look: int) -> tuple[Counts, Counts]:
        if (stage, look) not in self.drawn:
            weight = self.plan.stages[stage].weight
            minutes = self.plan.stages[stage].interval / 60
            fleet = (self._rate(1.0), self._rate(1.0))  # each fleet's factor this minute
            cut: dict[str, tuple[Counts, Counts]] = {}
            for name, share, factor in self.mix:
                requests = _poisson(self.rng, self.scenario.per_minute * minutes * share)
                canary_n = binomial(self.rng, requests, weight / 100)
                rate = self.scenario.baseline_rate * factor
                cut[name] = (
                    self._draw(canary_n, rate * fleet[0], name, True),
                    self._draw(requests - canary_n, rate * fleet[1], name, False),
                )
            self.cut[stage, look] = cut
            self.drawn[stage, look] = (
                sum((c for c, _ in cut.values()), Counts(0, 0)),
                sum((b for _, b in cut.values()), Counts(0, 0)),
            )
        return self.drawn[stage, look]

    def history(self) -> list[dict[str, tuple[int, int]]]:
        """The stable fleet's last hour drawn the same way, browser by browser: the noise
        preflight measures includes theirs."""
        rows = []
        for _ in range(HISTORY_MINUTES):
            fleet, errors, total = self._rate(1.0), 0, 0
            for name, share, factor in self.mix:
                requests = _poisson(self.rng, self.scenario.per_minute * share)
                rate = self.scenario.baseline_rate * factor * fleet
                drawn = self._draw(requests, rate, name, False)
                errors, total = errors + drawn.errors, total + drawn.total
            rows.append({self.metric: (errors, total)})
        return rows

    def source(self, window: Window) -> dict[str, dict[str, Any]]:
        counts: dict[str, dict[str, Any]] = dict(super().source(window))
        cut = self.cut[window.stage, window.look]
        counts[self.metric] = counts[self.metric] | {
            "segments": {
                f"browser={name}": {
                    "canary": (c.errors, c.total),
                    "baseline": (b.errors, b.total),
                }
                for name, (c, b) in cut.items()
                if c.total or b.total
            }
        }
        return counts


# Viewers (one IP + User-Agent, sticky to one variant) by how many requests each makes in a
# minute, and the share of all requests their class makes: a heavy tail, where a few
# viewers (crawlers, NAT gateways, API clients) make a twentieth of the traffic. A viewer's
# own requests are Poisson around its class's rate; viewers come and go from minute to
# minute. The canary's request count in a minute then varies about 25 times as much as
# binomial (sum of share x (rate + 1)), as does the stable fleet's total.
VIEWER_MIX = ((1, 0.35), (4, 0.30), (16, 0.20), (64, 0.10), (256, 0.05))


class ViewerTraffic(Traffic):
    """Requests drawn viewer by viewer: each viewer of a minute is on the canary with the
    served share (``weight x served``), all its requests with it. ``persistent`` scenarios
    keep a stage's viewers, and their variants, for the whole stage. ``by_viewers``
    scenarios also count each variant's viewers of a minute (those that made a request in
    it), as a distinct count or sessions metric would."""

    def __init__(self, scenario: Scenario, plan: RolloutPlan, rng: random.Random) -> None:
        super().__init__(scenario, plan, rng)
        self.viewers: dict[int, list[tuple[int, int, int]]] = {}  # stage: (rate, on, off)
        self.counted: dict[tuple[int, int], tuple[int, int]] = {}  # (stage, look): viewers
        self._fresh: list[tuple[int, int, int]] = []  # the last minute's viewers drawn

    def _population(self, served: float) -> list[tuple[int, int, int]]:
        rows = []
        for rate, share in VIEWER_MIX:
            viewers = _poisson(self.rng, self.scenario.per_minute * share / rate)
            on_canary = binomial(self.rng, viewers, served)
            rows.append((rate, on_canary, viewers - on_canary))
        return rows

    def _requests(self, served: float, stage: int | None = None) -> tuple[int, int]:
        rows = self._rows(served, stage)
        canary = sum(_poisson(self.rng, on * rate) for rate, on, _ in rows)
        stable = sum(_poisson(self.rng, off * rate) for rate, _, off in rows)
        return canary, stable

    def _rows(self, served: float, stage: int | None) -> list[tuple[int, int, int]]:
        if stage is not None and self.scenario.persistent:
            return self.viewers.setdefault(stage, self._population(served))
        self._fresh = self._population(served)
        return self._fresh

    def _seen(self, rows: list[tuple[int, int, int]]) -> tuple[int, int]:
        """(canary, stable) viewers that made a request this minute: a viewer of rate r
        makes none with chance exp(-r)."""
        seen = [1 - math.exp(-rate) for rate, _, _ in rows]
        canary = sum(binomial(self.rng, on, p) for (_, on, _), p in zip(rows, seen, strict=True))
        stable = sum(binomial(self.rng, off, p) for (_, _, off), p in zip(rows, seen, strict=True))
        return canary, stable

    def source(self, window: Window) -> dict[str, dict[str, tuple[int, int]]]:
        counts = dict(super().source(window))
        if self.scenario.by_viewers:
            canary, stable = self.counted[window.stage, window.look]
            counts[SPLIT_VIEWERS] = {"canary": (0, canary), "baseline": (0, stable)}
        return counts

    def pair(self, stage: int, look: int) -> tuple[Counts, Counts]:
        if (stage, look) not in self.drawn:
            weight = self.plan.stages[stage].weight / 100
            served = min(1.0, weight * self.scenario.served)
            canary_n, baseline_n = self._requests(served, stage)
            if self.scenario.by_viewers:  # other scenarios keep their random stream
                rows = self.viewers[stage] if self.scenario.persistent else self._fresh
                self.counted[stage, look] = self._seen(rows)
            self.drawn[stage, look] = (
                Counts(
                    binomial(self.rng, canary_n, self._rate(self.scenario.canary_rate)), canary_n
                ),
                Counts(
                    binomial(self.rng, baseline_n, self._rate(self.scenario.baseline_rate)),
                    baseline_n,
                ),
            )
        return self.drawn[stage, look]

    def history(self) -> list[dict[str, tuple[int, int]]]:
        rows = []
        for _ in range(HISTORY_MINUTES):
            _, n = self._requests(0.0)
            row = {self.metric: (binomial(self.rng, n, self._rate(self.scenario.baseline_rate)), n)}
            if self.scenario.by_viewers:
                row[SPLIT_VIEWERS] = (0, self._seen(self._fresh)[1])
            rows.append(row)
        return rows


def _poisson(rng: random.Random, mean: float) -> int:
    """Requests of one browser in one minute: Poisson, normal beyond small means."""
    if mean > 60:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, k, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        k += 1
        product *= rng.random()
    return k


@dataclass
class Result:
    rolled_back: bool = False
    first_stage: bool = False  # rolled back before any later stage got traffic
    look: int | None = None  # looks from the start of the rollout until a fail verdict
    promoted: bool = False
    looks: int = 0  # looks from the start of the rollout until promotion or rollback
    reasons: list[str] = field(default_factory=list)
    split_look: int | None = None  # looks from the start until a split_mismatch pause


PeerJudge = Callable[[list[tuple[Counts, Counts]], Scenario], bool]
_PEERS: dict[str, PeerJudge] = {}


def simulate(scenario: Scenario, plan: RolloutPlan, rng: random.Random) -> dict[str, Result]:
    """One rollout; every judge sees the same counts. Returns each judge's result."""
    kind = SegmentTraffic if scenario.segments else ViewerTraffic if scenario.viewers else Traffic
    traffic = kind(scenario, plan, rng)
    history = traffic.history()
    results = {name: Result() for name in JUDGES}
    ours = results["edgeshift"]
    replayed = replay(plan, traffic.source, history=history)
    ours.looks = replayed.looks
    ours.promoted = replayed.outcome == "PROMOTED"
    ours.rolled_back = not ours.promoted
    ours.first_stage = ours.rolled_back and replayed.stage == 0
    failed = replayed.verdicts[-1]["outcome"] == "fail" if replayed.verdicts else False
    ours.look = replayed.looks if ours.rolled_back and failed else None
    if replayed.outcome == "PAUSED" and replayed.reason.startswith("split_mismatch:"):
        ours.split_look = replayed.looks
    for name, peer in _PEERS.items():
        if scenario.viewers:  # no peer checks the split these scenarios are about
            break
        result = results[name]
        for index, stage in enumerate(plan.stages):
            skip = plan.analysis.initial_delay // stage.interval
            intervals: list[tuple[Counts, Counts]] = []
            for look in range(stage.looks()):
                result.looks += 1
                if look < skip:
                    continue
                intervals.append(traffic.pair(index, look))
                if peer(intervals, scenario):
                    result.rolled_back, result.look = True, result.looks
                    result.first_stage = index == 0
                    break
            if result.rolled_back:
                break
        result.promoted = not result.rolled_back
    return results


def _bad(scenario: Scenario, counts: Counts) -> Counts:
    if scenario.direction is Direction.LOWER:
        return counts
    return Counts(counts.total - counts.errors, counts.total)


def _absolute(intervals: list[tuple[Counts, Counts]], scenario: Scenario) -> bool:
    canary = intervals[-1][0]
    limit = scenario.normal_rate * ABSOLUTE_LIMIT
    if scenario.direction is Direction.HIGHER:
        return canary.rate < scenario.normal_rate / ABSOLUTE_LIMIT
    return canary.rate > max(limit, 0.001)  # a zero normal rate still needs some limit


def _z_per_interval(intervals: list[tuple[Counts, Counts]], scenario: Scenario) -> bool:
    canary, baseline = (_bad(scenario, c) for c in intervals[-1])
    pooled = (canary.errors + baseline.errors) / (canary.total + baseline.total)
    variance = pooled * (1 - pooled) * (1 / canary.total + 1 / baseline.total)
    return variance > 0 and (canary.rate - baseline.rate) / math.sqrt(variance) > Z_95


def _mann_whitney(intervals: list[tuple[Counts, Counts]], scenario: Scenario) -> bool:
    canary = [_bad(scenario, c).rate for c, _ in intervals]
    baseline = [_bad(scenario, b).rate for _, b in intervals]
    n, m = len(canary), len(baseline)
    if n < 3:
        return False
    ranked = sorted([(v, 0) for v in canary] + [(v, 1) for v in baseline])
    ranks, ties, i = [0.0] * len(ranked), 0.0, 0
    while i < len(ranked):
        j = i
        while j + 1 < len(ranked) and ranked[j + 1][0] == ranked[i][0]:
            j += 1
        for k in range(i, j + 1):
            ranks[k] = (i + j) / 2 + 1
        size = j - i + 1
        ties += size**3 - size
        i = j + 1
    rank_sum = sum(r for r, (_, arm) in zip(ranks, ranked, strict=True) if arm == 0)
    u = rank_sum - n * (n + 1) / 2
    total = n + m
    variance = n * m / 12 * ((total + 1) - ties / (total * (total - 1)))
    return variance > 0 and (u - n * m / 2) / math.sqrt(variance) > Z_98_TWO_SIDED


_PEERS.update(
    {
        "absolute-threshold": _absolute,
        "z-test-per-interval": _z_per_interval,
        "mann-whitney": _mann_whitney,
    }
)


def run(rollouts: int = ROLLOUTS, names: tuple[str, ...] = ONLY) -> Iterator[dict[str, object]]:
    for scenario in SCENARIOS:
        if names and scenario.name not in names:
            continue
        plan = plan_for(scenario)
        rng = random.Random(f"{SEED}:{scenario.name}")
        outcomes = [simulate(scenario, plan, rng) for _ in range(rollouts)]
        if scenario.viewers:
            # No peer checks the split the edge serves: only edgeshift has a row to give.
            yield _split_record(scenario, [outcome["edgeshift"] for outcome in outcomes])
            continue
        for name in JUDGES:
            results = [outcome[name] for outcome in outcomes]
            yield _record(name, scenario, plan, results)
        yield _forecast_record(scenario, plan)
    if not names or LIMIT_ROW in names:
        yield _request_share_limit(rollouts)


LIMIT_ROW = "split-persistent-best-threshold"


def _request_share_limit(rollouts: int, looks: int = 3) -> dict[str, object]:
    """What any test of the request share could do in the ``-persistent`` world, knowing
    the truth: the stage-1 share after ``looks`` looks of rollouts serving the weight and
    twice it, and the threshold that flags 0.5% of the right ones. The counted viewers'
    share beside it, by the same rule."""
    correct, doubled = (
        next(s for s in SCENARIOS if s.name == f"split-{kind}-viewers-persistent-counted")
        for kind in ("correct", "served-2x")
    )
    rng = random.Random(f"{SEED}:{LIMIT_ROW}")
    shares: dict[str, dict[str, list[float]]] = {"requests": {}, "viewers": {}}
    for scenario in (correct, doubled):
        plan = plan_for(scenario)
        for unit in shares:
            shares[unit][scenario.name] = []
        for _ in range(rollouts):
            traffic = ViewerTraffic(scenario, plan, rng)
            pairs = [traffic.pair(0, look) for look in range(looks)]
            seen = [traffic.counted[0, look] for look in range(looks)]
            for unit, canary, total in (
                (
                    "requests",
                    sum(c.total for c, _ in pairs),
                    sum(c.total + b.total for c, b in pairs),
                ),
                ("viewers", sum(c for c, _ in seen), sum(c + b for c, b in seen)),
            ):
                shares[unit][scenario.name].append(canary / total)
    record: dict[str, object] = {"judge": "best-threshold", "scenario": LIMIT_ROW, "looks": looks}
    for unit, by_scenario in shares.items():
        right = sorted(by_scenario[correct.name])
        threshold = right[min(len(right) - 1, math.ceil(0.995 * len(right)))]
        caught = sum(x > threshold for x in by_scenario[doubled.name]) / rollouts
        record[f"{unit}_threshold_flagging_0.5pct_of_right_splits"] = round(threshold, 5)
        record[f"{unit}_twice_the_weight_caught_rate"] = round(caught, 4)
    record["rollouts"] = rollouts
    return record


def _split_record(scenario: Scenario, results: list[Result]) -> dict[str, object]:
    """How often the served-split check paused the rollout, and how soon."""
    looks = [r.split_look for r in results if r.split_look is not None]
    return {
        "judge": "edgeshift",
        "scenario": scenario.name,
        "served_over_weight": scenario.served,
        "split_flagged_rate": round(len(looks) / len(results), 4),
        "split_flagged_within_3_looks_rate": round(sum(n <= 3 for n in looks) / len(results), 4),
        "median_looks_to_split_flag": statistics.median(looks) if looks else None,
        "promoted_rate": round(sum(r.promoted for r in results) / len(results), 4),
        "peers": "none checks the served split",
        "per_minute": scenario.per_minute,
        "rollouts": len(results),
    }


def _forecast_record(scenario: Scenario, plan: RolloutPlan) -> dict[str, object]:
    stages = forecast_of(plan, scenario)
    return {
        "judge": "forecast",
        "scenario": scenario.name,
        "feasible": all(stage.feasible for stage in stages),
        "bakes": [stage.bake for stage in plan.baked_stages()],
        "stages": [stage.message() for stage in stages],
    }


def _record(
    name: str, scenario: Scenario, plan: RolloutPlan, results: list[Result]
) -> dict[str, object]:
    """Every judge is scored on what happens to the release: a rollback for any reason
    (a fail verdict, or a stage that ended without a verdict) counts as a rollback.
    ``fail_verdict_rate`` shows the part decided by a fail verdict."""
    failed = [r for r in results if r.rolled_back and r.look is not None]
    looks = [r.look for r in failed if r.look is not None]
    promoted = sum(r.promoted for r in results) / len(results)
    rolled_back = round(1 - promoted, 4)
    record: dict[str, object] = {"judge": name, "scenario": scenario.name}
    if scenario.healthy:
        record["false_rollback_rate"] = rolled_back
    else:
        record["detection_rate"] = rolled_back
    record["first_stage_detection_rate"] = round(
        sum(r.first_stage for r in results) / len(results), 4
    )
    record["fail_verdict_rate"] = round(len(failed) / len(results), 4)
    record["median_intervals_to_detect"] = statistics.median(looks) if looks else None
    record["promoted_rate"] = round(promoted, 4)
    promotions = [r.looks for r in results if r.promoted]
    # What extending inconclusive bakes costs in time: peers always take the bakes' looks.
    record["median_looks_to_promote"] = statistics.median(promotions) if promotions else None
    record["noise_s"] = scenario.noise
    record["per_minute"] = scenario.per_minute
    record["rollouts"] = len(results)
    return record
