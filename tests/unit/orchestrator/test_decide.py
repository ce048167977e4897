"""Tests for orchestrator.workflow.decide: what the workflow does after each analysis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, reject
from hypothesis import strategies as st
from pydantic import ValidationError

from orchestrator.analysis import Counts, MetricVerdict, Outcome, Verdict
from orchestrator.analysis.aggregate import combine
from orchestrator.analysis.schedule import look_at
from orchestrator.models import Rollout, RolloutPlan, RolloutStatus
from orchestrator.models.analysis import Limits
from orchestrator.workflow.decide import Action, decide, first_step

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
BAKE, INTERVAL = 600, 60


def _plan(
    weights: list[float],
    *,
    bake: int = BAKE,
    interval: int = INTERVAL,
    on_inconclusive: str = "extend",
    max_extension: int | None = None,
) -> RolloutPlan:
    return RolloutPlan.model_validate(
        {
            "target": {"host": "shop.example.com"},
            "stable": {"name": "stable", "version": "v1"},
            "canary": {"name": "canary", "version": "v2"},
            "stages": [{"weight": w, "bake": bake, "interval": interval} for w in weights],
            "analysis": {
                "namespace": "N",
                "dimensions": {"Variant": "{variant}"},
                "requests_metric": "R",
                "errors_metric": "E",
            },
            "policies": {"on_inconclusive": on_inconclusive, "max_extension": max_extension},
        }
    )


def _rollout(plan: RolloutPlan, stage_index: int, started: datetime | None = T0) -> Rollout:
    return Rollout.start(plan, "t", now=T0 - timedelta(hours=1)).model_copy(
        update={
            "status": RolloutStatus.RUNNING,
            "stage_index": stage_index,
            "stage_started_at": started,
        }
    )


def _verdict(outcome: Outcome) -> Verdict:
    return Verdict(outcome, f"judged {outcome}", Counts(0, 1_000), Counts(0, 1_000))


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


PASS, FAIL, UNSURE = (_verdict(o) for o in (Outcome.PASS, Outcome.FAIL, Outcome.INCONCLUSIVE))


def test_first_step_applies_stage_zero() -> None:
    """GIVEN a new rollout WHEN the workflow begins THEN it applies stage 0 without waiting."""
    step = first_step()

    assert (step.action, step.stage, step.wait_seconds) == (Action.APPLY, 0, 0)


@pytest.mark.parametrize("elapsed", [0, 30, BAKE + 1_000])
def test_fail_rolls_back_at_any_point_of_the_bake(elapsed: int) -> None:
    """GIVEN a failing verdict WHEN decided early, mid or late in the bake THEN roll back."""
    decision = decide(_rollout(_plan([10, 50]), 1), FAIL, _at(elapsed))

    assert (decision.action, decision.stage, decision.wait_seconds) == (Action.ROLLBACK, 1, 0)
    assert "judged fail" in decision.reason


@pytest.mark.parametrize(
    ("elapsed", "wait"), [(0, INTERVAL), (100, INTERVAL), (570, 30), (599.2, 1), (599.99, 1)]
)
@pytest.mark.parametrize("verdict", [PASS, UNSURE], ids=["pass", "inconclusive"])
def test_mid_bake_keeps_baking_at_most_one_interval(
    elapsed: float, wait: int, verdict: Verdict
) -> None:
    """GIVEN a stage still within its bake WHEN decided THEN bake for min(interval, remaining)."""
    decision = decide(_rollout(_plan([10, 50]), 0), verdict, _at(elapsed))

    assert (decision.action, decision.stage, decision.wait_seconds) == (Action.BAKE, 0, wait)


def test_clock_before_stage_start_still_bakes_one_interval() -> None:
    """GIVEN a clock behind the stage start WHEN decided THEN bake for one interval, no more."""
    decision = decide(_rollout(_plan([10, 50]), 0), PASS, _at(-300))

    assert (decision.action, decision.wait_seconds) == (Action.BAKE, INTERVAL)


def test_pass_after_bake_applies_the_next_stage() -> None:
    """GIVEN stage 1 of [10, 50, 100] baked and passing WHEN decided THEN apply stage 2."""
    decision = decide(_rollout(_plan([10, 50, 100]), 0), PASS, _at(BAKE))

    assert (decision.action, decision.stage, decision.wait_seconds) == (Action.APPLY, 1, 0)
    assert "50.0%" in decision.reason


def test_pass_before_a_100_percent_stage_promotes() -> None:
    """GIVEN the last baked stage passes and the next one is 100% WHEN decided THEN promote."""
    decision = decide(_rollout(_plan([10, 50, 100]), 1), PASS, _at(BAKE + 5))

    assert (decision.action, decision.stage) == (Action.PROMOTE, 1)


def test_pass_on_the_last_stage_promotes() -> None:
    """GIVEN a plan [10, 50] whose last stage passes WHEN decided THEN promote."""
    decision = decide(_rollout(_plan([10, 50]), 1), PASS, _at(BAKE))

    assert (decision.action, decision.stage) == (Action.PROMOTE, 1)


@pytest.mark.parametrize(
    ("extension", "elapsed", "wait"),
    [(None, BAKE, INTERVAL), (None, 7 * BAKE - 10, 10), (120, BAKE + 100, 20)],
)
def test_inconclusive_after_bake_extends_within_the_extension(
    extension: int | None, elapsed: int, wait: int
) -> None:
    """GIVEN policy extend and time left in the extension WHEN inconclusive THEN bake more."""
    plan = _plan([10, 50], max_extension=extension)

    decision = decide(_rollout(plan, 0), UNSURE, _at(elapsed))

    assert (decision.action, decision.stage, decision.wait_seconds) == (Action.BAKE, 0, wait)
    assert decision.reason.startswith("bake extended")


@pytest.mark.parametrize(("extension", "elapsed"), [(None, 7 * BAKE), (120, BAKE + 120), (0, BAKE)])
def test_inconclusive_after_the_extension_rolls_back(extension: int | None, elapsed: int) -> None:
    """GIVEN policy extend with the extension used up WHEN inconclusive THEN roll back."""
    plan = _plan([10, 50], max_extension=extension)

    decision = decide(_rollout(plan, 0), UNSURE, _at(elapsed))

    assert (decision.action, decision.stage) == (Action.ROLLBACK, 0)
    assert decision.reason.startswith("bake ended without a verdict")


@pytest.mark.parametrize(
    ("bake", "extension"), [(60, 360), (600, 3_600), (900, 3_600), (3_600, 3_600), (7_200, 7_200)]
)
def test_default_extension_is_six_bakes_up_to_an_hour_or_one_bake(
    bake: int, extension: int
) -> None:
    """GIVEN no max_extension WHEN a stage's extension is asked THEN six more bakes, at most
    an hour, or one more bake when that is longer."""
    plan = _plan([10, 50], bake=bake, interval=60)

    assert plan.extension(plan.stages[0]) == extension


def test_default_extension_shrinks_to_one_bake_when_the_history_has_no_room() -> None:
    """GIVEN 2-second looks over 5-minute bakes (six more bakes would be ~19,000 history
    events) WHEN validated THEN the plan stays valid and extends by one more bake."""
    plan = _plan([10, 50], bake=300, interval=2)

    assert plan.extension(plan.stages[0]) == 300
    assert look_at(plan, 0, 2).extra == 150


def test_inconclusive_with_rollback_policy_rolls_back_at_bake_end() -> None:
    """GIVEN policy rollback WHEN the bake ends inconclusive THEN roll back at once."""
    plan = _plan([10, 50], on_inconclusive="rollback", max_extension=3_600)

    decision = decide(_rollout(plan, 0), UNSURE, _at(BAKE))

    assert decision.action is Action.ROLLBACK


@pytest.mark.parametrize(("index", "started"), [(-1, T0), (0, None), (7, T0)])
def test_no_applied_stage_rolls_back(index: int, started: datetime | None) -> None:
    """GIVEN a stage index and start time that do not agree WHEN decided, even on pass THEN
    roll back (before the first stage, see test_workflow_rules: it is applied)."""
    decision = decide(_rollout(_plan([10, 50]), index, started), PASS, _at(BAKE * 3))

    assert decision.action is Action.ROLLBACK
    assert decision.reason == "no stage is applied: nothing to judge"


def test_decision_payload_is_plain_data() -> None:
    """GIVEN a decision WHEN turned into a payload THEN the action is its string value."""
    payload = decide(_rollout(_plan([10, 50]), 0), PASS, _at(0)).as_payload()

    assert payload == {
        "action": "bake",
        "stage": 0,
        "wait_seconds": INTERVAL,
        "reason": "baking, pass so far",
    }


# -- properties --------------------------------------------------------------------------


@st.composite
def _situations(draw: st.DrawFn) -> tuple[Rollout, Verdict, datetime]:
    count = draw(st.integers(min_value=1, max_value=5))
    weights = sorted(draw(st.sets(st.integers(1, 99), min_size=count, max_size=count)))
    if draw(st.booleans()):
        weights.append(100)
    interval = draw(st.integers(min_value=1, max_value=600))
    bake = draw(st.integers(min_value=interval, max_value=4 * interval + 100))
    try:
        plan = _plan(
            [float(w) for w in weights],
            bake=bake,
            interval=interval,
            on_inconclusive=draw(st.sampled_from(["extend", "rollback"])),
            max_extension=draw(st.none() | st.integers(min_value=0, max_value=3 * bake)),
        )
    except ValidationError:  # e.g. five stages of 1 s looks, over the history budget
        reject()
    index = draw(st.integers(min_value=-1, max_value=len(weights)))
    started = draw(st.none() | st.just(T0))
    elapsed = draw(st.floats(min_value=-60, max_value=8 * bake + 1_000, allow_nan=False))
    outcome = draw(st.sampled_from(list(Outcome)))
    return _rollout(plan, index, started), _verdict(outcome), _at(elapsed)


@given(_situations())
def test_decide_invariants(situation: tuple[Rollout, Verdict, datetime]) -> None:
    """GIVEN any rollout, verdict and clock WHEN decided THEN the safety invariants hold."""
    rollout, verdict, now = situation

    decision = decide(rollout, verdict, now)

    if decision.action is Action.PROMOTE:
        assert verdict.outcome is Outcome.PASS
    if decision.action is Action.APPLY and rollout.stage_index == -1:
        assert decision.stage == 0  # the first stage, held back by a person's request
    elif decision.action is Action.APPLY:
        assert verdict.outcome is Outcome.PASS
        assert decision.stage == rollout.stage_index + 1
        assert rollout.plan.stages[decision.stage].weight < 100
    if decision.action is Action.BAKE:
        assert 1 <= decision.wait_seconds <= rollout.plan.stages[rollout.stage_index].interval
        assert decision.stage == rollout.stage_index
    if verdict.outcome is Outcome.FAIL:
        assert decision.action is Action.ROLLBACK
    if decision.action is not Action.BAKE:
        assert decision.wait_seconds == 0


def test_a_tolerated_failure_past_the_bake_waits_an_interval_for_the_next_look() -> None:
    """GIVEN tolerated_failures 2 and a first failure during the extension WHEN the limits
    and decide() see it THEN keep baking, the next look one interval later (not at once)."""
    plan = _plan([10, 50])
    limits = Limits(tolerated_failures=2)
    failing = MetricVerdict("error-rate", Outcome.FAIL, "error-rate higher than baseline")
    rollout = _rollout(plan, 0)

    verdict, tally = combine([failing], limits, rollout.tally, 12)
    decision = decide(rollout, verdict, _at(BAKE + 120))

    assert verdict.outcome is Outcome.INCONCLUSIVE and tally.failures == {"error-rate": 1}
    assert (decision.action, decision.wait_seconds) == (Action.BAKE, INTERVAL)


@pytest.mark.parametrize(
    ("bake", "interval", "extension", "planned", "extra"),
    [(90, 60, 30, 2, 0), (90, 60, 60, 2, 1), (600, 60, 0, 10, 0), (60, 60, None, 1, 6)],
)
def test_the_schedule_counts_every_look_decide_takes(
    bake: int, interval: int, extension: int | None, planned: int, extra: int
) -> None:
    """GIVEN bakes and extensions that are not whole intervals WHEN scheduled THEN the looks
    are those decide() takes: one every interval until the time is over, rounded up."""
    plan = _plan([10, 50], bake=bake, interval=interval, max_extension=extension)
    look = look_at(plan, 0, interval)
    total = -(-(bake + plan.extension(plan.stages[0])) // interval)

    assert (look.planned, look.extra) == (planned, extra)
    assert look.planned + look.extra == total
