"""Where a look falls in the plan's schedule, and how the false-rollback budget is shared.

The plan knows its schedule: each baked stage is looked at every ``interval`` for ``bake``
seconds, plus the looks of an extension when the policy extends inconclusive bakes. The
rollout's budget ``alpha`` is shared by the baked stages: half to the first, where the
canary has the least traffic and a regression must be caught with the fewest users
exposed; the other half evenly to the later stages, whose larger traffic needs less.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from orchestrator.models import RolloutPlan
from orchestrator.models.analysis import AnalysisSpec

from .sequential import Look

FIRST_STAGE_SHARE = 0.5
# The deployed edge's routes cache TTL (edge/config.json ``ttl_seconds``; a test keeps them
# equal): the orchestrator's bundle does not carry the edge's config.
DEFAULT_EDGE_TTL = 5.0
EDGE_TTL_ENV = "EDGESHIFT_EDGE_TTL"
# Where the edge's own config is at hand (the local stack, in one process), its TTL is used.
EDGE_CONFIG_ENV = "EDGESHIFT_EDGE_CONFIG"


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


def edge_settle(spec: AnalysisSpec) -> float:
    """Seconds after a stage's write until every edge serves its weight: the plan's
    ``edge_settle``, or the edge's routes cache TTL."""
    if spec.edge_settle is not None:
        return float(spec.edge_settle)
    return _edge_ttl(os.environ.get(EDGE_TTL_ENV), os.environ.get(EDGE_CONFIG_ENV))


@lru_cache(maxsize=8)
def _edge_ttl(value: str | None, config_path: str | None) -> float:
    try:
        if value:
            return max(0.0, float(value))
        if config_path:
            with open(config_path, encoding="utf-8") as config:
                return max(0.0, float(json.load(config).get("ttl_seconds", DEFAULT_EDGE_TTL)))
    except (OSError, ValueError, TypeError, AttributeError):
        pass  # an unreadable setting is no reason to judge nothing: the deployed default
    return DEFAULT_EDGE_TTL


def judged_from(plan: RolloutPlan, index: int, started: datetime, now: datetime) -> datetime:
    """Where the judged window of a look at ``now`` in stage ``index`` (applied at
    ``started``) opens: once the edge serves the new weight, and after the warm-up.

    Requests before the edge's cache expired were served at the old weight. A provider's
    periods are aligned to the epoch and one that overlaps the window counts whole, so the
    window opens at the first period boundary after the settle: the first look of a stage
    counts no request served at the old weight. The warm-up (``initial_delay``) is counted
    from the write as before; a delay longer than the settle changes nothing."""
    spec = plan.analysis
    settle = edge_settle(spec)
    opens = started + timedelta(seconds=settle)
    if settle > 0:
        period = spec.period
        seconds = math.ceil(opens.timestamp() / period - 1e-9) * period
        opens = datetime.fromtimestamp(seconds, UTC)
    if not in_warm_up(plan, index, (now - started).total_seconds()):
        opens = max(opens, started + timedelta(seconds=spec.initial_delay))
    return min(opens, now)  # a window that has not opened yet is empty, not inverted
