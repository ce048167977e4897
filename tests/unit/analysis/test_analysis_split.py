"""The served-split check: the canary's share of requests against the stage's weight."""

from __future__ import annotations

import json
import math
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.analysis import Counts, Outcome, Verdict
from orchestrator.analysis.dispersion import request_dispersion
from orchestrator.analysis.providers.base import Measurement
from orchestrator.analysis.schedule import DEFAULT_EDGE_TTL, judged_from
from orchestrator.analysis.sequential import z_quantile
from orchestrator.analysis.split import STAGE_ALPHA, check_split, look_threshold, served_split
from orchestrator.models import Rollout, RolloutPlan
from orchestrator.models.analysis import Noise
from orchestrator.workflow.decide import Action, decide
from tests.unit.analysis.analysis_plans import in_first_stage

T0 = datetime(2024, 5, 1, 12, 0, 17, tzinfo=UTC)  # a write in the middle of a minute
EDGE_CONFIG = Path(__file__).resolve().parents[3] / "edge" / "config.json"


def _plan(**analysis: Any) -> RolloutPlan:
    policies = analysis.pop("policies", {})
    return RolloutPlan.model_validate(
        {
            "target": {"host": "shop.example.com"},
            "stable": {"name": "stable", "version": "v1"},
            "canary": {"name": "canary", "version": "v2"},
            "stages": [{"weight": w, "bake": 600, "interval": 60} for w in (10, 50)],
            "analysis": {
                "namespace": "N",
                "dimensions": {"Variant": "{variant}"},
                "requests_metric": "R",
                "errors_metric": "E",
            }
            | analysis,
            "policies": policies,
        }
    )


def _periods(share: float, per_period: int = 10_000, count: int = 6) -> list[tuple[int, int]]:
    canary = round(per_period * share)
    return [(canary, per_period - canary)] * count


def test_the_planned_share_is_ok() -> None:
    """GIVEN periods served exactly at the weight WHEN checked THEN ok, with the band."""
    check = check_split(_periods(0.10), 0.10, 0.25, look=6, looks=10)
    assert check.outcome == "ok"
    assert (check.low, check.high) == pytest.approx((0.075, 0.125))


def test_twice_the_weight_is_a_mismatch_naming_the_share() -> None:
    """GIVEN a canary served 20% in a 10% stage WHEN checked THEN a mismatch whose reason
    names the served share and the allowed band."""
    check = check_split(_periods(0.20), 0.10, 0.25, look=6, looks=10)
    assert check.outcome == "mismatch"
    assert "20.00%" in check.reason and "7.50%-12.50%" in check.reason
    assert check.statistic is not None and check.threshold is not None
    assert check.statistic > check.threshold


def test_too_few_periods_or_requests_is_unknown() -> None:
    """GIVEN three periods, or a handful of requests WHEN checked THEN unknown, never ok."""
    assert check_split(_periods(0.2, count=3), 0.1, 0.25, look=3, looks=10).outcome == "unknown"
    few = check_split(_periods(0.2, per_period=20), 0.1, 0.25, look=6, looks=10)
    assert few.outcome == "unknown"


def test_viewer_clustering_widens_the_test() -> None:
    """GIVEN a share a little outside the band whose periods swing as whole viewers do
    WHEN checked THEN not a mismatch (the swings are the noise); the same share with
    binomial periods is."""
    swinging = [(1_500, 8_500), (1_100, 8_900), (1_700, 8_300), (1_000, 9_000)] * 2
    clustered = check_split(swinging, 0.10, 0.25, look=8, looks=10)
    assert clustered.outcome == "ok" and clustered.dispersion and clustered.dispersion > 10
    steady = check_split(_periods(0.1325, count=8), 0.10, 0.25, look=8, looks=10)
    assert steady.outcome == "mismatch"


def test_a_correct_split_is_rarely_flagged_over_a_stage() -> None:
    """GIVEN binomial periods at the weight WHEN every look of a stage is checked THEN
    almost no stage is flagged (the budget is per stage, spread over its looks)."""
    rng = random.Random(7)
    flagged = 0
    for _ in range(300):
        periods = []
        for look in range(1, 11):
            canary = sum(rng.random() < 0.1 for _ in range(400))
            periods.append((canary, 400 - canary))
            if check_split(periods, 0.10, 0.25, look=look, looks=10).outcome == "mismatch":
                flagged += 1
                break
    assert flagged <= 2


def test_a_split_on_the_band_edge_spends_no_more_than_the_stage_budget() -> None:
    """GIVEN a share exactly on the band's upper edge, the worst a right split may be, WHEN
    all ten looks of 4,000 stages are checked against the group-sequential boundaries THEN
    the upper side flags about STAGE_ALPHA / 2 of them (0.05% = 2 expected), and those
    boundaries ask less than a Bonferroni split over the stage's seventy possible looks."""
    rng = random.Random(11)
    high = 0.10 * 1.25
    flagged = 0
    for _ in range(4_000):
        periods = []
        for look in range(1, 11):
            canary = round(rng.gauss(2_000 * high, math.sqrt(2_000 * high * (1 - high))))
            periods.append((canary, 2_000 - canary))
            check = check_split(periods, 0.10, 0.25, look=look, looks=10, extra=60)
            if check.outcome == "mismatch":
                flagged += 1
                break
    assert flagged <= 8  # P(X >= 9) < 0.001 for X ~ Poisson(2)
    bonferroni = z_quantile(1 - STAGE_ALPHA / (2 * 70))
    assert all(look_threshold(k, 10, 60) < bonferroni - 0.3 for k in range(1, 11))


def _rollout(plan: RolloutPlan) -> Rollout:
    return in_first_stage(plan, T0)


def _measured(plan: RolloutPlan, share: float) -> dict[tuple[str, str], Measurement]:
    moments = [T0 + timedelta(minutes=m) for m in range(6)]
    canary = {m: Counts(0, round(10_000 * share)) for m in moments}
    baseline = {m: Counts(0, 10_000 - round(10_000 * share)) for m in moments}
    name = plan.analysis.judged_metrics()[0].name
    return {
        (name, "canary"): Measurement(counts=Counts(0, 1), series=canary),
        (name, "stable"): Measurement(counts=Counts(0, 1), series=baseline),
    }


def test_served_split_reads_the_first_ratio_metrics_denominators() -> None:
    """GIVEN a look's measurements WHEN the split is checked THEN the canary's share of the
    first ratio metric's denominators is compared with the applied weight."""
    plan = _plan()
    check = served_split(_rollout(plan), _measured(plan, 0.2))
    assert check is not None and check.outcome == "mismatch" and check.weight == 0.1


def test_a_disabled_split_check_is_absent() -> None:
    """GIVEN split.enabled false WHEN checked THEN no split check at all."""
    plan = _plan(split={"enabled": False})
    assert served_split(_rollout(plan), _measured(plan, 0.2)) is None


def test_verdict_as_dict_carries_the_split() -> None:
    """The audit trail's verdict holds the split check."""
    plan = _plan()
    check = served_split(_rollout(plan), _measured(plan, 0.2))
    verdict = Verdict(Outcome.PASS, "ok", Counts(0, 1), Counts(0, 1), split=check)
    assert json.loads(json.dumps(verdict.as_dict()))["split"]["outcome"] == "mismatch"


@pytest.mark.parametrize("tolerance", [0, 1, 1.5, -0.1])
def test_a_tolerance_outside_zero_one_is_refused(tolerance: float) -> None:
    """GIVEN split.tolerance outside (0, 1) WHEN validated THEN refused naming the field."""
    with pytest.raises(ValidationError) as refused:
        _plan(split={"tolerance": tolerance})
    assert any(e["loc"][-2:] == ("split", "tolerance") for e in refused.value.errors())


def test_a_split_metric_that_is_not_a_ratio_metric_is_refused() -> None:
    """GIVEN split.metric naming no ratio metric WHEN validated THEN the message names it."""
    with pytest.raises(ValidationError, match=r"analysis\.split\.metric: 'latency'"):
        _plan(split={"metric": "latency"})


# -- what decide does with it -------------------------------------------------------------


def _look(plan: RolloutPlan, outcome: Outcome, share: float) -> tuple[Rollout, Verdict]:
    rollout = _rollout(plan)
    check = served_split(rollout, _measured(plan, share))
    return rollout, Verdict(outcome, f"judged {outcome}", Counts(0, 1), Counts(0, 1), split=check)


def test_a_mismatch_pauses_by_default_even_when_the_stage_passed() -> None:
    """GIVEN a passing look at the bake's end with a mismatched split WHEN decided THEN the
    rollout pauses with a split_mismatch reason; it never advances."""
    rollout, verdict = _look(_plan(), Outcome.PASS, 0.2)
    decision = decide(rollout, verdict, T0 + timedelta(seconds=600))
    assert decision.action is Action.PAUSE
    assert decision.reason.startswith("split_mismatch:")


@pytest.mark.parametrize(
    ("policy", "action"), [("rollback", Action.ROLLBACK), ("continue", Action.APPLY)]
)
def test_on_split_mismatch_chooses_what_happens(policy: str, action: Action) -> None:
    """rollback rolls back on the mismatch; continue goes on as the verdict says."""
    rollout, verdict = _look(_plan(policies={"on_split_mismatch": policy}), Outcome.PASS, 0.2)
    assert decide(rollout, verdict, T0 + timedelta(seconds=600)).action is action


def test_a_failing_look_still_rolls_back_first() -> None:
    """GIVEN a failing look with a mismatched split WHEN decided THEN it rolls back for the
    failure, not a pause."""
    rollout, verdict = _look(_plan(), Outcome.FAIL, 0.2)
    decision = decide(rollout, verdict, T0 + timedelta(seconds=120))
    assert decision.action is Action.ROLLBACK
    assert decision.reason.startswith("canary failed analysis")


def test_a_right_split_changes_nothing() -> None:
    """GIVEN a passing look at the planned share WHEN decided THEN the next stage."""
    rollout, verdict = _look(_plan(), Outcome.PASS, 0.1)
    assert decide(rollout, verdict, T0 + timedelta(seconds=600)).action is Action.APPLY
    unchanged = replace(verdict, split=None)
    assert decide(rollout, unchanged, T0 + timedelta(seconds=600)).action is Action.APPLY


# -- where a stage's window opens ---------------------------------------------------------


def test_the_window_opens_at_the_first_period_after_the_edge_ttl() -> None:
    """GIVEN a write at 12:00:17 and a 5 s edge TTL WHEN a look is taken THEN its window
    opens at 12:01:00: the minute that held requests at the old weight is not counted."""
    plan = _plan(edge_settle=5)
    assert judged_from(plan, 0, T0, T0 + timedelta(minutes=3)) == datetime(
        2024, 5, 1, 12, 1, tzinfo=UTC
    )


def test_a_warm_up_longer_than_the_settle_is_kept() -> None:
    """GIVEN initial_delay 2 min WHEN a judged look is taken THEN the window opens where
    the warm-up ends, as before."""
    plan = _plan(edge_settle=5, initial_delay=120)
    assert judged_from(plan, 0, T0, T0 + timedelta(minutes=5)) == T0 + timedelta(minutes=2)


def test_no_settle_opens_at_the_write_and_a_window_never_inverts() -> None:
    """edge_settle 0 is the write itself; a look before the window opens gets an empty one."""
    assert judged_from(_plan(edge_settle=0), 0, T0, T0 + timedelta(minutes=1)) == T0
    early = T0 + timedelta(seconds=20)
    assert judged_from(_plan(edge_settle=5), 0, T0, early) == early


def test_the_default_settle_is_the_deployed_edges_ttl() -> None:
    """The orchestrator's default matches the TTL the edge is bundled with."""
    assert json.loads(EDGE_CONFIG.read_text())["ttl_seconds"] == DEFAULT_EDGE_TTL


def test_after_a_split_pause_is_resumed_only_later_periods_count() -> None:
    """GIVEN a resume after a split_mismatch pause (split_from set) WHEN the split is checked
    THEN the periods before it are not judged again: too few are left to know yet."""
    plan = _plan()
    resumed = _rollout(plan).model_copy(update={"split_from": T0 + timedelta(minutes=4)})
    check = served_split(resumed, _measured(plan, 0.2))
    assert check is not None and check.outcome == "unknown"
    whole = served_split(_rollout(plan), _measured(plan, 0.2))
    assert whole is not None and whole.outcome == "mismatch"


# -- the stable fleet's requests as the prior for viewer clustering -----------------------


def _bursty(phi: float, df: float = 59) -> Noise:
    return Noise(requests_dispersion=phi, requests_df=df, source="stable fleet")


def test_a_prior_lets_the_first_looks_judge_the_split() -> None:
    """GIVEN the stable fleet's requests measured by preflight WHEN a 10% stage is served 20%
    for two periods THEN a mismatch already; without the prior it is still unknown."""
    assert check_split(_periods(0.2, count=2), 0.1, 0.25, look=2, looks=10).outcome == "unknown"
    early = check_split(_periods(0.2, count=2), 0.1, 0.25, look=2, looks=10, prior=_bursty(25))
    assert early.outcome == "mismatch" and early.dispersion == pytest.approx(25, rel=0.05)


def test_bursty_requests_widen_the_first_looks() -> None:
    """GIVEN a share a little outside the band in one period WHEN the stable fleet's
    requests are bursty (viewers making hundreds each) THEN not a mismatch; the same
    share with independent requests is one."""
    one = _periods(0.145, count=1)
    assert check_split(one, 0.1, 0.25, look=1, looks=10, prior=_bursty(1)).outcome == "mismatch"
    assert check_split(one, 0.1, 0.25, look=1, looks=10, prior=_bursty(200)).outcome == "ok"


def test_a_stage_far_burstier_than_its_prior_is_judged_on_its_own_periods() -> None:
    """GIVEN a calm prior and periods that swing as whole viewers do WHEN checked THEN the
    stage's own dispersion is used, so the swings are not taken for a mismatch."""
    swinging = [(1_500, 8_500), (1_100, 8_900), (1_700, 8_300), (1_000, 9_000)] * 2
    check = check_split(swinging, 0.10, 0.25, look=8, looks=10, prior=_bursty(1))
    assert check.outcome == "ok" and check.dispersion and check.dispersion > 10


def test_request_dispersion_measures_clusters_and_ignores_a_trend() -> None:
    """GIVEN requests that are Poisson clusters of size 20 WHEN measured THEN about 20; a
    steady ramp of traffic without bursts does not count as burstiness."""
    rng = random.Random(3)
    totals = [sum(20 for _ in range(rng.randint(400, 600))) for _ in range(60)]
    phi, df = request_dispersion(totals)
    assert df == pytest.approx(2 * 59**2 / 176)
    assert phi > 5
    ramp = [10_000 + 100 * minute for minute in range(60)]
    assert request_dispersion(ramp)[0] < 1.1


def test_served_split_takes_its_prior_from_preflight() -> None:
    """GIVEN a rollout whose preflight measured very bursty requests WHEN two periods served
    a little outside the band are checked THEN not a mismatch (the prior widens them)."""
    plan = _plan()
    name = plan.analysis.judged_metrics()[0].name
    rollout = _rollout(plan).model_copy(update={"noise": {name: _bursty(5_000)}})
    measured = _measured(plan, 0.14)
    early = {
        key: Measurement(counts=m.counts, series=dict(list((m.series or {}).items())[:2]))
        for key, m in measured.items()
    }
    check = served_split(rollout, early)
    assert check is not None and check.outcome == "ok" and check.periods == 2
