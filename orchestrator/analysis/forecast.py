"""Can a healthy canary pass each stage in time? A forecast from traffic, tolerance and noise.

A stage's pass needs the within-tolerance score test to cross its boundary before the
bake and its extension run out. Its expected z grows with the events a stage sees, so
at a given traffic, baseline rate, tolerance and dispersion the looks it needs follow,
and so does the bake that gives them. The forecast calls a stage feasible when a canary
exactly like the baseline is expected to pass by the end of its extension with about
99.5% probability (the expected z at least ``POWER_Z`` above the last boundary), and
otherwise says how many looks it would need and the shortest bake that gives them.

It uses the judge's own pieces (``within_z``, the look schedule, the dispersion model)
on expected counts: what it forecasts is what the judge will do, on average.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from orchestrator.models import RolloutPlan
from orchestrator.models.analysis import Direction, Noise, RatioMetric
from orchestrator.models.durations import format_duration

from .counts import Counts
from .dispersion import rare_side
from .margin import margin_for, within_z
from .schedule import look_at

POWER_Z = 2.58  # expected z this far above the boundary passes ~99.5% of healthy canaries
_MAX_BAKE_LOOKS = 7 * 24 * 60  # a week of 1-minute looks: beyond it, say "not feasible"


@dataclass(frozen=True)
class StageForecast:
    stage: int  # 0-based
    weight: float
    metric: str
    canary_per_minute: float
    looks_needed: int | None  # None: not within a week of looks
    looks_allowed: int
    recommended_bake: int | None  # seconds; None when the bake is enough or nothing is

    @property
    def feasible(self) -> bool:
        return self.looks_needed is not None and self.looks_needed <= self.looks_allowed

    def message(self) -> str:
        tolerance = f"{self.metric}'s tolerance"
        head = (
            f"stage {self.stage + 1} at {self.weight:g}% sees ~{self.canary_per_minute:,.0f} "
            f"canary requests/min"
        )
        if self.feasible:
            return (
                f"{head}; {tolerance} needs ~{self.looks_needed} looks, "
                f"it allows {self.looks_allowed}"
            )
        if self.looks_needed is None:
            return f"{head}; {tolerance} cannot be shown within a week of looks at this traffic"
        advice = (
            f"use a bake of at least {format_duration(self.recommended_bake)}"
            if self.recommended_bake
            else "no bake within a week shows it: raise the weight or the tolerance"
        )
        return (
            f"{head}; {tolerance} needs ~{self.looks_needed} looks, the stage allows "
            f"{self.looks_allowed} (bake and extension): {advice}"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "stage": self.stage,
            "weight": self.weight,
            "metric": self.metric,
            "canary_per_minute": self.canary_per_minute,
            "looks_needed": self.looks_needed,
            "looks_allowed": self.looks_allowed,
            "recommended_bake": self.recommended_bake,
            "feasible": self.feasible,
        }


def forecast(
    plan: RolloutPlan,
    requests_per_minute: float,
    rates: Mapping[str, float],
    noise: Mapping[str, Noise] | None = None,
) -> list[StageForecast]:
    """Per baked stage and ratio metric with a known ``rate`` (its baseline rate as
    written): whether a healthy canary passes in time. ``requests_per_minute`` is the
    metric's denominator per minute for the whole host (both arms)."""
    found = []
    for metric in plan.analysis.judged_metrics():
        if not isinstance(metric, RatioMetric) or metric.name not in rates:
            continue
        kappa = (noise or {}).get(metric.name, Noise()).kappa
        if plan.analysis.dispersion != "estimate":
            kappa = 0.0
        for index in range(len(plan.baked_stages())):
            found.append(
                _stage(plan, index, metric, requests_per_minute, rates[metric.name], kappa)
            )
    return found


def feasibility(plan: RolloutPlan, noise: Mapping[str, Noise]) -> list[StageForecast]:
    """The forecast from what preflight measured on the stable fleet (its traffic and rate
    per metric); metrics preflight could not measure are not forecast."""
    found = []
    for name, measured in noise.items():
        if measured.requests_per_minute and measured.rate is not None:
            rates = {name: measured.rate}  # numerator / denominator: the rate as written
            found += forecast(plan, measured.requests_per_minute, rates, {name: measured})
    return found


def _stage(
    plan: RolloutPlan,
    index: int,
    metric: RatioMetric,
    per_minute: float,
    rate: float,
    kappa: float,
    *,
    recommend: bool = True,
) -> StageForecast:
    stage = plan.baked_stages()[index]
    canary_per_look = per_minute * stage.weight / 100 * stage.interval / 60
    baseline_per_look = per_minute * (1 - stage.weight / 100) * stage.interval / 60
    look = look_at(plan, index, stage.bake)
    allowed = look.planned + look.extra
    needed = None
    for judged in range(1, _MAX_BAKE_LOOKS + 1):
        if judged <= allowed:
            bound = _bound_at(plan, index, judged)
        elif judged > 4 * allowed and judged > 200:
            needed = _solve_far(metric, rate, canary_per_look, baseline_per_look, judged, kappa)
            break
        else:  # past the schedule: a longer bake would have boundaries near the last one
            bound = _bound_at(plan, index, allowed)
        z = _expected_z(metric, rate, canary_per_look, baseline_per_look, judged, kappa)
        if z >= bound + POWER_Z:
            needed = judged
            break
    recommended = None
    if recommend and needed is not None and needed > allowed:
        recommended = _bake_for(plan, index, metric, per_minute, rate, kappa, needed)
    return StageForecast(
        index,
        stage.weight,
        metric.name,
        per_minute * stage.weight / 100,
        needed,
        allowed,
        recommended,
    )


def _expected_z(
    metric: RatioMetric, rate: float, canary: float, baseline: float, looks: int, kappa: float
) -> float:
    """The within-tolerance z a canary equal to the baseline shows after ``looks``."""
    events_c, events_b = round(canary * looks), round(baseline * looks)
    if events_c < metric.min_samples or events_b < metric.min_samples:
        return -math.inf
    c = Counts(round(events_c * rate), events_c)
    b = Counts(round(events_b * rate), events_b)
    bad_c, bad_b = (
        (c, b)
        if metric.direction is Direction.LOWER
        else (Counts(c.total - c.errors, c.total), Counts(b.total - b.errors, b.total))
    )
    z = within_z(bad_c, bad_b, margin_for(metric.tolerance, metric.direction, rate))
    _, rare_c, rare_b = rare_side(c, b)
    per_look_events = (rare_c.errors + rare_b.errors) / looks
    share = rare_c.total / (rare_c.total + rare_b.total)
    variance = per_look_events * share * (1 - share)
    return z / math.sqrt(1 + 2 * kappa * variance)


def _bound_at(plan: RolloutPlan, index: int, judged: int) -> float:
    stage = plan.baked_stages()[index]
    skipped = plan.analysis.initial_delay // stage.interval
    return look_at(plan, index, (judged + skipped) * stage.interval).pass_bound()


def _solve_far(
    metric: RatioMetric, rate: float, canary: float, baseline: float, looks: int, kappa: float
) -> int | None:
    z = _expected_z(metric, rate, canary, baseline, looks, kappa)
    if z <= 0:
        return None
    target = 1.96 + POWER_Z  # a boundary near the end of a long schedule
    needed = math.ceil(looks * (target / z) ** 2)
    return needed if needed <= _MAX_BAKE_LOOKS else None


def _bake_for(
    plan: RolloutPlan,
    index: int,
    metric: RatioMetric,
    per_minute: float,
    rate: float,
    kappa: float,
    needed: int,
) -> int | None:
    """The shortest bake (whole intervals, within a few tries) whose looks, extension
    included, pass in time with the boundaries that bake gets: a longer schedule spends
    the pass budget over more looks, so each candidate is forecast again."""
    stage = plan.baked_stages()[index]
    position = plan.stages.index(stage)
    bake = stage.bake
    for _ in range(8):
        look = look_at(plan_with_bake(plan, position, bake), index, bake)
        allowed = look.planned + look.extra
        bake = max(
            bake + stage.interval,
            math.ceil(bake * needed / allowed / stage.interval) * stage.interval,
        )
        if bake > _MAX_BAKE_LOOKS * stage.interval:
            return None
        candidate = plan_with_bake(plan, position, bake)
        again = _stage(candidate, index, metric, per_minute, rate, kappa, recommend=False)
        if again.feasible:
            return bake
        if again.looks_needed is None:
            return None
        needed = again.looks_needed
    return None


def plan_with_bake(plan: RolloutPlan, position: int, bake: int) -> RolloutPlan:
    """``plan`` with stage ``position`` baked for ``bake`` seconds (not re-validated)."""
    stages = list(plan.stages)
    stages[position] = stages[position].model_copy(update={"bake": bake})
    return plan.model_copy(update={"stages": stages})
