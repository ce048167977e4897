"""The status transition table and the decide() rules for people's requests, approval
gates, failure limits and timeouts."""

from __future__ import annotations

import json
import math
from collections import deque
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orchestrator.analysis import Counts, MetricVerdict, Outcome, Verdict
from orchestrator.analysis.aggregate import combine
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.models import (
    TRANSITIONS,
    ControlAction,
    ControlRequest,
    Rollout,
    RolloutPlan,
    RolloutStatus,
    StageTally,
)
from orchestrator.models.analysis import Limits
from orchestrator.models.plan import (
    HISTORY_EVENT_BUDGET,
    MAX_RECHECKS,
    estimated_history_events,
)
from orchestrator.plans import InvalidPlan, parse_plan
from orchestrator.workflow.decide import Action, after_park, decide

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
S = RolloutStatus


def _plan(approval: bool = False, **policies) -> RolloutPlan:
    document = demo_plan(demo_route("shop.example.com", 8001, 8002)).model_dump(mode="json")
    document["stages"] = [
        {"weight": 10, "bake": 600, "interval": 60, "approval": approval},
        {"weight": 50, "bake": 600, "interval": 60},
        {"weight": 100, "bake": 60, "interval": 60},
    ]
    document["policies"] = {**document.get("policies", {}), **policies}
    return RolloutPlan.model_validate(document)


def _running(plan: RolloutPlan, **update) -> Rollout:
    base = Rollout.start(plan, "t", now=T0 - timedelta(minutes=5))
    fields = {"status": S.RUNNING, "stage_index": 0, "stage_started_at": T0, **update}
    return base.model_copy(update=fields)


def _verdict(outcome: Outcome) -> Verdict:
    return Verdict(outcome, f"judged {outcome}", Counts(0, 5000), Counts(0, 5000))


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


# -- the transition table ----------------------------------------------------------------


def test_terminal_states_have_no_way_out():
    """PROMOTED, ROLLED_BACK and FAILED are terminal: no transition leaves them."""
    assert {s for s in S if s.is_final} == {S.PROMOTED, S.ROLLED_BACK, S.FAILED}


@pytest.mark.parametrize("status", [s for s in S if not s.is_final])
def test_rolling_back_is_reachable_from_every_live_state(status):
    """Whatever a live rollout is doing, it can start rolling back (or fail trying)."""
    assert status.can_become(S.ROLLING_BACK) or status is S.ROLLING_BACK
    assert status.can_become(S.FAILED)


def _reachable(start: RolloutStatus) -> set[RolloutStatus]:
    seen, queue = {start}, deque([start])
    while queue:
        for nxt in TRANSITIONS[queue.popleft()] - seen:
            seen.add(nxt)
            queue.append(nxt)
    return seen


def test_every_state_is_reachable_from_pending_and_every_path_ends():
    """Breadth-first from PENDING reaches all states; every live state can reach an end."""
    assert _reachable(S.PENDING) == set(S)
    for status in S:
        assert any(end.is_final for end in _reachable(status))


def test_promotion_only_through_promoting():
    """Nothing becomes PROMOTED except a PROMOTING rollout: the route write is its own step."""
    assert [s for s in S if s.can_become(S.PROMOTED)] == [S.PROMOTING]


# -- decide: people first ----------------------------------------------------------------


@given(
    outcome=st.sampled_from(list(Outcome)),
    seconds=st.integers(0, 5000),
    action=st.sampled_from([ControlAction.ABORT, ControlAction.PROMOTE, ControlAction.PAUSE]),
)
def test_a_pending_request_decides_unless_the_look_fails(outcome, seconds, action):
    """A person's pending request decides whatever the clock says; a look that fails or
    cannot measure overrules a pause or a promote (abort rolls back either way), and the
    reason names the request it overruled."""
    request = ControlRequest(action=action, actor="oncall", reason="why", at=T0)
    decision = decide(_running(_plan(), control=request), _verdict(outcome), _at(seconds))
    failing = outcome in (Outcome.FAIL, Outcome.ERROR)
    expected = {
        ControlAction.ABORT: Action.ROLLBACK,
        ControlAction.PROMOTE: Action.ROLLBACK if failing else Action.PROMOTE,
        ControlAction.PAUSE: Action.ROLLBACK if failing else Action.PAUSE,
    }[action]
    assert decision.action is expected and "oncall" in decision.reason
    if failing and action is not ControlAction.ABORT:
        assert f"overruling the {action}" in decision.reason


def test_a_pause_parks_and_rereads_the_record_every_minute():
    """A pause parks on a token whose wait is the re-read interval, not the whole
    max_pause: a lost wake-up call costs at most that long."""
    request = ControlRequest(action=ControlAction.PAUSE, actor="oncall", at=T0)
    decision = decide(
        _running(_plan(max_pause=900), control=request), _verdict(Outcome.PASS), _at(30)
    )
    assert (decision.action, decision.wait_seconds) == (Action.PAUSE, 60)


@pytest.mark.parametrize(
    ("limit", "recheck", "every"),
    [(900, None, 60), (86400, None, 300), (30 * 86400, None, 9000), (900, 5, 5), (3, 60, 3)],
)
def test_the_reread_interval_keeps_the_history_bounded(limit, recheck, every):
    """Every minute by default, at most MAX_RECHECKS re-reads per park, never past the limit."""
    policies = _plan(max_pause=limit, park_recheck=recheck).policies
    assert policies.recheck_every(limit) == every
    assert math.ceil(limit / every) <= MAX_RECHECKS


def _parked(status: S = S.PAUSED, left: float = 600, **update) -> Rollout:
    until = _at(left)
    return _running(_plan(max_pause=900), status=status, parked_until=until, **update)


def test_after_a_park_nobody_answered_parks_again_until_the_limit():
    """The re-read finds the rollout still parked: park again for the shorter of the
    interval and what is left; past the limit, roll back."""
    again = after_park(_parked(left=30), _at(0), None)
    assert (again.action, again.wait_seconds) == (Action.PAUSE, 30)
    approval = after_park(_parked(S.AWAITING_APPROVAL, left=600), _at(0), None)
    assert (approval.action, approval.wait_seconds) == (Action.AWAIT_APPROVAL, 300)  # 24 h
    expired = after_park(_parked(S.AWAITING_APPROVAL, left=600), _at(601), None)
    assert expired.action is Action.ROLLBACK and "approval_timeout" in expired.reason


def test_after_a_park_the_record_is_carried_out():
    """A request whose wake-up call was lost is carried out from the record."""
    request = ControlRequest(action=ControlAction.PROMOTE, actor="oncall", at=T0)
    assert after_park(_parked(S.PROMOTING), _at(0), None).action is Action.PROMOTE
    assert after_park(_parked(S.ROLLING_BACK), _at(0), None).action is Action.ROLLBACK
    assert after_park(_parked(S.RUNNING, control=request), _at(0), None).action is Action.PROMOTE
    wake = {"action": "apply", "stage": 1, "wait_seconds": 0, "reason": "approved"}
    resumed = after_park(_parked(S.RUNNING), _at(0), wake)
    assert (resumed.action, resumed.stage) == (Action.APPLY, 1)
    assert after_park(_parked(S.RUNNING), _at(0), None).action is Action.BAKE


# -- decide: gates, limits and timeouts ---------------------------------------------------


def test_a_passing_stage_with_approval_waits_for_a_person():
    """After a passing bake, an approval stage asks instead of advancing."""
    decision = decide(
        _running(_plan(approval=True, approval_timeout=3600)), _verdict(Outcome.PASS), _at(600)
    )
    assert (decision.action, decision.wait_seconds) == (Action.AWAIT_APPROVAL, 60)


def test_approval_is_never_asked_for_a_stage_that_did_not_pass():
    """An inconclusive end of bake on an approval stage extends, it does not ask a person."""
    decision = decide(_running(_plan(approval=True)), _verdict(Outcome.INCONCLUSIVE), _at(600))
    assert decision.action is Action.BAKE


def test_tolerated_failures_keep_baking_until_one_too_many():
    """With tolerated_failures 2, the first two failed looks keep baking; the third rolls back."""
    plan = _plan()
    limits = Limits(tolerated_failures=2)
    failing = MetricVerdict("error-rate", Outcome.FAIL, "error-rate higher than baseline")
    rollout, actions = _running(plan), []
    for seconds in (60, 120, 180):
        verdict, tally = combine([failing], limits, rollout.tally, seconds // 60)
        actions.append(decide(rollout, verdict, _at(seconds)).action)
        rollout = rollout.model_copy(update={"tally": tally})
    assert actions == [Action.BAKE, Action.BAKE, Action.ROLLBACK]
    assert rollout.tally.failures == {"error-rate": 3}


def test_inconclusive_with_pause_policy_asks_a_person():
    """on_inconclusive: pause parks the rollout at the end of the bake."""
    decision = decide(
        _running(_plan(on_inconclusive="pause")), _verdict(Outcome.INCONCLUSIVE), _at(600)
    )
    assert decision.action is Action.PAUSE


def test_stage_timeout_and_max_duration_roll_back():
    """A stage past stage_timeout, or a rollout past max_duration, rolls back."""
    unsure = _verdict(Outcome.INCONCLUSIVE)
    assert decide(_running(_plan(stage_timeout=700)), unsure, _at(700)).action is Action.ROLLBACK
    decision = decide(_running(_plan(max_duration=600)), _verdict(Outcome.PASS), _at(400))
    assert decision.action is Action.ROLLBACK and "max_duration" in decision.reason


@given(
    outcome=st.sampled_from(list(Outcome)),
    seconds=st.integers(0, 100_000),
    failures=st.integers(0, 5),
    approval=st.booleans(),
)
def test_nothing_promotes_without_a_pass_or_a_person(outcome, seconds, failures, approval):
    """Without a control request, PROMOTE, APPLY and AWAIT_APPROVAL need a PASS verdict."""
    tally = StageTally(looks=failures, judged=failures, failures={"error-rate": failures})
    decision = decide(
        _running(_plan(approval=approval), tally=tally), _verdict(outcome), _at(seconds)
    )
    if decision.action in (Action.PROMOTE, Action.APPLY, Action.AWAIT_APPROVAL):
        assert outcome is Outcome.PASS


# -- plan validation of the Step Functions history -----------------------------------------


def test_a_plan_that_would_overflow_the_execution_history_is_refused():
    """Ten-second looks over a week-long bake exceed the history budget; the error says so."""
    document = _plan().model_dump(mode="json")
    document["stages"] = [{"weight": 10, "bake": "7d", "interval": 10}]
    with pytest.raises(InvalidPlan) as caught:
        parse_plan(json.dumps(document))
    assert any("history events" in rule for _, rule in caught.value.problems)


def test_a_three_hour_plan_with_one_minute_looks_fits_easily():
    """Plaid's three-hour bake, checked every minute, stays far under the budget."""
    plan = _plan()
    document = plan.model_dump(mode="json")
    document["stages"] = [
        {"weight": 5, "bake": "3h", "interval": "1m"},
        {"weight": 100, "bake": 60, "interval": 60},
    ]
    plan = RolloutPlan.model_validate(document)
    assert estimated_history_events(plan.stages, plan.policies) < HISTORY_EVENT_BUDGET / 2


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        (ControlAction.PAUSE, Action.PAUSE),
        (ControlAction.ABORT, Action.ROLLBACK),
        (None, Action.APPLY),
    ],
)
def test_a_request_before_the_first_stage_is_honoured_then_the_stage_applied(action, expected):
    """A pause (or abort) that arrives before stage 1 is applied is honoured, and once it is
    resumed the first stage is applied: no rollback for "nothing to judge"."""
    control = ControlRequest(action=action, actor="oncall", at=T0) if action else None
    rollout = _running(_plan(), stage_index=-1, stage_started_at=None, control=control)
    decision = decide(rollout, _verdict(Outcome.INCONCLUSIVE), _at(5))
    assert decision.action is expected
    if expected is Action.APPLY:
        assert decision.stage == 0
