"""One look of the Analyze task, as a pure step: the rollout and the clock in, the verdict,
the decision and the rollout's changes out.

The Analyze Lambda commits what this returns; ``orchestrator.analysis.replay`` applies it
in memory on a simulated clock. Both run this, so the decision loop exists once: counts,
judge, dispersion, limits and tally, warm-up, ``decide``, extension and inconclusive
policy are the same in a deployed rollout, the demo, the benchmark and a backtest.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.analysis import Verdict, evaluate
from orchestrator.analysis.dispersion import learn
from orchestrator.analysis.providers import MetricProvider
from orchestrator.analysis.schedule import judged_from
from orchestrator.models import Rollout, RolloutStatus, StageTally

from .decide import Action, Decision, decide


@dataclass(frozen=True)
class LookStep:
    verdict: Verdict
    decision: Decision
    changes: dict[str, Any]  # the rollout's fields after the look
    detail: dict[str, Any]  # the audit event's detail


def take_look(
    rollout: Rollout,
    now: datetime,
    provider: MetricProvider | None = None,
    *,
    deadline: float | None = None,
) -> LookStep:
    # The judged window (after the edge settled, after the warm-up): the audit trail says
    # so, so that a backtest of this rollout rebuilds each look's counts from the right window.
    start = judged_from(rollout.plan, rollout.stage_index, rollout.stage_started_at or now, now)
    verdict, tally = evaluate(rollout, now, provider, deadline=deadline)
    decision = decide(rollout, verdict, now)
    changes: dict[str, Any] = {"control": None, "tally": tally}
    if decision.action is Action.PROMOTE:
        changes.update(status=RolloutStatus.PROMOTING, reason=decision.reason)
    elif decision.action is Action.ROLLBACK:
        changes.update(status=RolloutStatus.ROLLING_BACK, reason=decision.reason)
    detail = {
        "stage": rollout.stage_index,
        "weight": rollout.canary_weight_bp / 100,
        "window": [start.isoformat(), now.isoformat()],
        "verdict": verdict.as_dict(),
        "decision": decision.as_payload(),
        "control": rollout.control.model_dump(mode="json") if rollout.control else None,
    }
    return LookStep(verdict, decision, changes, detail)


def stage_started(index: int, now: datetime, rollout: Rollout | None = None) -> dict[str, Any]:
    """The rollout's fields once stage ``index`` is applied: its clock, a fresh tally, and
    the noise the stage before measured on the comparison itself, learned into the prior."""
    changes: dict[str, Any] = {
        "stage_index": index,
        "stage_started_at": now,
        "tally": StageTally(),
        "split_from": None,
    }
    if rollout is not None and rollout.tally.noise:
        changes["noise"] = learn(rollout.noise, rollout.tally.noise, rollout.stage_index + 1)
    return changes
