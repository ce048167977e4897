"""How often each judge rolls back a healthy canary, and how soon it catches a bad one.

Thousands of simulated rollouts per scenario (fixed seed), each judged by the project's
judge (the real ``judge_ratio`` with the looks and budgets a real plan gets from
``schedule.look_at``) and, on the very same simulated counts, by the judges peers use:

- ``absolute-threshold`` (Flagger / Argo Rollouts): the canary's rate over the last
  interval against a fixed limit at 1.5x the normal rate, rolled back at the first breach
  (Argo's default ``failureLimit: 0``); no baseline.
- ``z-test-per-interval``: a two-proportion z test on each interval's counts at 95%, one
  sided, with no correction for testing again every interval.
- ``mann-whitney`` (Kayenta): the per-interval rates of the stage so far, canary against
  baseline, Mann-Whitney U at 98% confidence (Kayenta's default), two sided, failing on
  the bad side.

The rollout: stages 5% / 25% / 50%, ten 1-minute looks each, 20,000 requests a minute
(2,000 in the low-traffic scenarios). An inconclusive stage of the project's judge is
extended by up to sixty more looks (the plan's default policy: six more bakes, at most an
hour) and, if still undecided, counts as a rollback, never as a pass. Every judge is scored
on what happens to the release, and ``median_looks_to_promote`` shows what the extensions
cost in time (peers always take the 30 looks of the bakes).
"""

from __future__ import annotations

import math
import random
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from orchestrator.analysis.counts import Counts
from orchestrator.analysis.judge import Outcome, judge_ratio
from orchestrator.analysis.schedule import look_at
from orchestrator.analysis.sequential import z_quantile
from orchestrator.models import RolloutPlan
from orchestrator.models.analysis import Direction, RatioMetric, Tolerance

SEED = 20240607
ROLLOUTS = 2000
STAGES = (5.0, 25.0, 50.0)
LOOKS = 10
PER_MINUTE = 20_000
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
    normal_rate: float = 0.01  # what a peer's fixed threshold is set against

    @property
    def healthy(self) -> bool:
        return self.baseline_rate == self.canary_rate


SCENARIOS = (
    Scenario("healthy", 0.01, 0.01),
    Scenario("regression-2x", 0.01, 0.02),
    Scenario("regression-1.5x", 0.01, 0.015),
    Scenario("conversion-drop-10pct", 0.05, 0.045, Direction.HIGHER, normal_rate=0.05),
    Scenario("low-traffic", 0.01, 0.01, per_minute=2_000),
    Scenario("low-traffic-regression-2x", 0.01, 0.02, per_minute=2_000),
    Scenario("zero-error-baseline", 0.0, 0.005, normal_rate=0.0),
)
JUDGES = ("edgeshift", "absolute-threshold", "z-test-per-interval", "mann-whitney")


def plan_for(scenario: Scenario) -> tuple[RolloutPlan, RatioMetric]:
    metric = RatioMetric(
        name="error-rate" if scenario.direction is Direction.LOWER else "conversion",
        numerator="Errors",
        denominator="Requests",
        direction=scenario.direction,
        # An error rate may pass up to 1.5x the baseline's; a conversion only 5% lower.
        tolerance=Tolerance(relative=0.5, absolute=0.001)
        if scenario.direction is Direction.LOWER
        else Tolerance(relative=0.05),
        min_samples=500,
    )
    plan = RolloutPlan.model_validate(
        {
            "target": {"host": "bench.example.com"},
            "stable": {"name": "stable", "version": "v1"},
            "canary": {"name": "canary", "version": "v2"},
            "stages": [{"weight": w, "bake": "10m", "interval": "1m"} for w in STAGES],
            "analysis": {"namespace": "Bench", "metrics": [metric.model_dump()]},
        }
    )
    return plan, metric


def binomial(rng: random.Random, n: int, p: float) -> int:
    """Exact inversion for small means, a normal approximation for large ones."""
    if p <= 0 or n <= 0:
        return 0
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


@dataclass
class Result:
    rolled_back: bool = False
    first_stage: bool = False  # rolled back within the first stage's bake
    look: int | None = None  # looks from the start of the rollout until rollback
    promoted: bool = False
    looks: int = 0  # looks from the start of the rollout until promotion or rollback


PeerJudge = Callable[[list[tuple[Counts, Counts]], Scenario], bool]


def simulate(scenario: Scenario, rng: random.Random) -> dict[str, Result]:
    """One rollout; every judge sees the same counts. Returns each judge's result.

    Peers look during each stage's bake only; the project's judge may extend an
    inconclusive bake, which delays its later stages (``Result.looks`` counts that)."""
    plan, metric = plan_for(scenario)
    results = {name: Result() for name in JUDGES}
    peers: dict[str, PeerJudge] = {
        "absolute-threshold": _absolute,
        "z-test-per-interval": _z_per_interval,
        "mann-whitney": _mann_whitney,
    }
    ours = results["edgeshift"]
    for index, weight in enumerate(STAGES):
        canary_n = round(scenario.per_minute * weight / 100)
        baseline_n = scenario.per_minute - canary_n
        look = look_at(plan, index, 60)
        intervals: list[tuple[Counts, Counts]] = []
        decided = ours.rolled_back
        for number in range(1, look.planned + look.extra + 1):
            intervals.append(
                (
                    Counts(binomial(rng, canary_n, scenario.canary_rate), canary_n),
                    Counts(binomial(rng, baseline_n, scenario.baseline_rate), baseline_n),
                )
            )
            if number <= LOOKS:
                for name, peer in peers.items():
                    peer_result = results[name]
                    if not peer_result.rolled_back:
                        peer_result.looks += 1
                        if peer(intervals, scenario):
                            _rolled_back(peer_result, peer_result.looks, index)
            if not decided:
                ours.looks += 1
                canary = sum((c for c, _ in intervals), Counts(0, 0))
                baseline = sum((b for _, b in intervals), Counts(0, 0))
                verdict = judge_ratio(metric, canary, baseline, look_at(plan, index, number * 60))
                if verdict.outcome is Outcome.FAIL:
                    _rolled_back(ours, ours.looks, index, number <= LOOKS)
                    decided = True
                elif verdict.outcome is Outcome.PASS and number >= LOOKS:
                    decided = True
            if number >= LOOKS and decided:
                break  # peers only look during the bake; the extension is ours alone
        if not decided:  # the bake and its extension ran out without a verdict
            ours.rolled_back, ours.look = True, None
    for name in JUDGES:
        if not results[name].rolled_back:
            results[name].promoted = True
    return results


def _rolled_back(result: Result, at: int, stage: int, within_bake: bool = True) -> None:
    result.rolled_back, result.look = True, at
    result.first_stage = stage == 0 and within_bake


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


def run(rollouts: int = ROLLOUTS) -> Iterator[dict[str, object]]:
    for scenario in SCENARIOS:
        rng = random.Random(f"{SEED}:{scenario.name}")
        outcomes = [simulate(scenario, rng) for _ in range(rollouts)]
        for name in JUDGES:
            results = [outcome[name] for outcome in outcomes]
            yield _record(name, scenario, results)


def _record(name: str, scenario: Scenario, results: list[Result]) -> dict[str, object]:
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
    # What the extension of inconclusive bakes costs in time: peers always take the 30 looks.
    record["median_looks_to_promote"] = statistics.median(promotions) if promotions else None
    record["rollouts"] = len(results)
    return record
