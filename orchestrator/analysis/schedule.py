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
    taken = math.floor(elapsed / stage.interval + 0.5) - skipped
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
