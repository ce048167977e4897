"""The analysis limits, read in one place (``aggregate.combine``) against one typed record
(the rollout's ``StageTally``), through the Analyze task's own step: tolerated failures,
critical metrics, the error streak, the inconclusive ceiling, and a fresh tally per stage."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orchestrator.analysis.providers import FakeProvider, ProviderError
from orchestrator.analysis.replay import Window, replay
from orchestrator.models import Rollout, RolloutPlan, RolloutStatus, StageTally
from orchestrator.workflow.decide import Action
from orchestrator.workflow.step import stage_started, take_look
from tests.unit.analysis.analysis_plans import binomial_history, replay_plan

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
BAD = {"error-rate": {"canary": (100, 1_000), "baseline": (100, 19_000)}}  # 10% vs 0.5%
TRICKLE = {"error-rate": {"canary": (0, 10), "baseline": (1, 190)}}  # under min_samples
# The stable fleet's last hour as preflight reads it: with it the noise is known at look 1.
HISTORY = [{"error-rate": (100, 20_000)}] * 60


def _plan(critical: bool = False, **analysis: Any) -> dict[str, Any]:
    return replay_plan(critical=critical, **analysis)


def _always(counts: dict[str, Any]) -> Callable[[Window], dict[str, Any]]:
    return lambda window: counts


@pytest.mark.parametrize("tolerated", [0, 1, 3])
def test_tolerated_failures_of_a_non_critical_metric_then_a_rollback(tolerated: int) -> None:
    """GIVEN tolerated_failures N and a non-critical metric failing at every look WHEN
    replayed THEN N looks are tolerated (inconclusive, saying so) and look N + 1 rolls back."""
    plan = _plan(limits={"tolerated_failures": tolerated})

    result = replay(plan, _always(BAD), history=HISTORY)

    assert (result.outcome, result.stage, result.looks) == ("ROLLED_BACK", 0, tolerated + 1)
    for number, verdict in enumerate(result.verdicts[:-1], start=1):
        (metric,) = verdict["metrics"]
        assert (verdict["outcome"], metric["judged"]) == ("inconclusive", "fail")
        assert f"(failure {number}, {tolerated} tolerated)" in metric["reason"]
    assert result.verdicts[-1]["outcome"] == "fail"
    assert "failed analysis" in result.reason


def test_a_critical_metric_rolls_back_at_its_first_failure() -> None:
    """GIVEN tolerated_failures 3 and a critical metric failing WHEN replayed THEN rolled
    back at the first look: tolerance is for non-critical metrics only."""
    plan = _plan(critical=True, limits={"tolerated_failures": 3})
    result = replay(plan, _always(BAD), history=HISTORY)

    assert (result.outcome, result.looks) == ("ROLLED_BACK", 1)


def test_past_max_inconclusive_looks_the_next_one_fails() -> None:
    """GIVEN max_inconclusive_looks 4 and too little traffic to judge WHEN replayed THEN
    four inconclusive looks, and the fifth counts as a failure and rolls back."""
    result = replay(_plan(limits={"max_inconclusive_looks": 4}), _always(TRICKLE))

    assert (result.outcome, result.looks) == ("ROLLED_BACK", 5)
    assert [v["outcome"] for v in result.verdicts] == ["inconclusive"] * 4 + ["fail"]
    assert "inconclusive 5 times, 4 allowed" in result.reason


def test_warm_up_looks_do_not_count_as_inconclusive() -> None:
    """GIVEN initial_delay 2m (two warm-up looks) and max_inconclusive_looks 2 WHEN
    replayed on too little traffic THEN the ceiling is passed at the fifth look, not the
    third."""
    plan = _plan(initial_delay="2m", limits={"max_inconclusive_looks": 2})

    result = replay(plan, _always(TRICKLE))

    assert (result.outcome, result.looks) == ("ROLLED_BACK", 5)


def _running(plan: dict[str, Any]) -> Rollout:
    validated = RolloutPlan.model_validate(plan)
    rollout = Rollout.start(validated, "t", now=T0)
    history = binomial_history(validated)  # what preflight measured: judged from look 1
    return rollout.model_copy(
        update={"status": RolloutStatus.RUNNING, "noise": history, **stage_started(0, T0)}
    )


def _healthy(fake: FakeProvider) -> None:
    fake.set_counts("canary", 10, 1_000)
    fake.set_counts("stable", 190, 19_000)


def test_max_error_streak_counts_unmeasured_looks_in_a_row() -> None:
    """GIVEN max_error_streak 3 and a provider timing out WHEN two looks fail to measure,
    one measures, then three fail THEN only the third in a row rolls back, as unable to
    measure."""
    rollout = _running(_plan(limits={"max_error_streak": 3}))
    fake = FakeProvider()
    _healthy(fake)
    actions, streaks = [], []
    for minute, down in enumerate([True, True, False, True, True, True], start=1):
        fake.error = ProviderError("timed out") if down else None
        step = take_look(rollout, T0 + timedelta(minutes=minute), fake)
        rollout = rollout.model_copy(update=step.changes)
        actions.append(step.decision.action)
        streaks.append(rollout.tally.error_streak.get("error-rate", 0))

    assert streaks == [1, 2, 0, 1, 2, 3]
    assert actions == [Action.BAKE] * 5 + [Action.ROLLBACK]
    assert "analysis could not measure" in step.decision.reason
    assert rollout.status is RolloutStatus.ROLLING_BACK


def test_a_permanent_error_is_not_tolerated() -> None:
    """GIVEN max_error_streak 3 and a rejected key WHEN looked at THEN rolled back at once."""
    fake = FakeProvider(error=ProviderError("403 key rejected", transient=False))

    step = take_look(_running(_plan()), T0 + timedelta(minutes=1), fake)

    assert step.decision.action is Action.ROLLBACK and "403" in step.decision.reason


def test_each_look_is_counted_into_the_tally() -> None:
    """GIVEN a healthy canary WHEN looked at twice THEN looks and judged count 2, with no
    failures or errors."""
    rollout, fake = _running(_plan()), FakeProvider()
    _healthy(fake)
    for minute in (1, 2):
        step = take_look(rollout, T0 + timedelta(minutes=minute), fake)
        rollout = rollout.model_copy(update=step.changes)

    assert rollout.tally.looks == 2 and rollout.tally.judged == 2
    assert rollout.tally.failures == {} and rollout.tally.error_streak == {}


def test_applying_a_stage_starts_a_fresh_tally() -> None:
    """GIVEN a tally with failures and errors WHEN the next stage is applied THEN its
    clock is now and its tally is empty."""
    moved = _running(_plan()).model_copy(
        update={"tally": StageTally(looks=4, judged=4, failures={"error-rate": 1})}
    )

    changes = stage_started(1, T0 + timedelta(minutes=10))

    assert changes == {
        "stage_index": 1,
        "stage_started_at": T0 + timedelta(minutes=10),
        "tally": StageTally(),
        "split_from": None,
    }
    assert moved.model_copy(update=changes).tally == StageTally()


def test_a_failure_tolerated_in_one_stage_is_not_held_against_the_next() -> None:
    """GIVEN tolerated_failures 1 and a canary that fails the first look of every stage,
    then recovers WHEN replayed THEN each stage tolerates its own one failure and the
    canary is promoted (a tally carried across stages would roll back in stage 2)."""
    # Equal arms at every weight: counts for the limits, not a split an edge would serve.
    plan = _plan(limits={"tolerated_failures": 1}, dispersion="binomial", split={"enabled": False})
    bad_first = {"error-rate": {"canary": (100, 1_000), "baseline": (10, 1_000)}}
    recovered = {"error-rate": {"canary": (1_000, 100_000), "baseline": (1_000, 100_000)}}

    result = replay(plan, lambda window: bad_first if window.look == 0 else recovered)

    assert result.outcome == "PROMOTED", result.reason
    firsts = [step for step in result.steps if step["verdict"]["metrics"][0].get("judged")]
    assert [step["stage"] for step in firsts] == [0, 1, 2]
    assert all("(failure 1, 1 tolerated)" in s["verdict"]["reason"] for s in firsts)
