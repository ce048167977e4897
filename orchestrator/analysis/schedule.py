"""Where a look falls in the plan's schedule, and how the false-rollback budget is shared.

The plan knows its schedule: each baked stage is looked at every ``interval`` for ``bake``
seconds, plus the looks of an extension when the policy extends inconclusive bakes. The
rollout's budget ``alpha`` is shared by the baked stages: half to the first, where the
canary has the least traffic and a regression must be caught with the fewest users
exposed; the other half evenly to the later stages, whose larger traffic needs less.
"""

from __future__ import annotations

import math

from orchestrator.models import RolloutPlan

from .sequential import Look

FIRST_STAGE_SHARE = 0.5


def stage_alpha(alpha: float, index: int, baked: int) -> float:
    if baked <= 1:
        return alpha
    if index == 0:
        return alpha * FIRST_STAGE_SHARE
    return alpha * (1 - FIRST_STAGE_SHARE) / (baked - 1)


def look_at(plan: RolloutPlan, index: int, elapsed: float) -> Look:
    """The judged look ``elapsed`` seconds into stage ``index`` (a 100% stage counts as the
    last). Looks within the warm-up are not part of the schedule: a stage's looks are
    numbered from the first one after ``initial_delay``."""
    baked = plan.baked_stages()
    index = max(0, min(index, len(baked) - 1))
    stage = baked[index]
    skipped = plan.analysis.initial_delay // stage.interval
    planned = max(1, stage.looks() - skipped)
    extra = stage.looks(plan.extension(stage)) - stage.looks()
    taken = _taken(elapsed, stage.interval) - skipped
    number = max(1, min(taken, planned + extra))
    spec = plan.analysis
    return Look(
        number=number,
        planned=planned,
        extra=extra,
        alpha=stage_alpha(spec.alpha, index, len(baked)),
        pass_alpha=spec.pass_alpha,
        margin_alpha=stage_alpha(spec.margin_alpha, index, len(baked)),
    )


def in_warm_up(plan: RolloutPlan, index: int, elapsed: float) -> bool:
    """Whether the look ``elapsed`` seconds into stage ``index`` is one of the warm-up's,
    which ``look_at`` leaves out of the schedule: before ``initial_delay`` has passed, or
    the look at its end (whose judged window, from the delay's end, would be empty)."""
    delay = plan.analysis.initial_delay
    if delay <= 0:
        return False
    baked = plan.baked_stages()
    stage = baked[max(0, min(index, len(baked) - 1))]
    return elapsed < delay or _taken(elapsed, stage.interval) <= delay // stage.interval


def _taken(elapsed: float, interval: int) -> int:
    """Looks taken by ``elapsed``: a look that runs a little late is still the same look."""
    return math.floor(elapsed / interval + 0.5)
