"""Tests for orchestrator.analysis.replay: the Analyze task's own step, run on a simulated
clock against counts a source gives window by window."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from simulated_counts import interval

from orchestrator.analysis.replay import ReplayError, Window, replay
from tests.unit.analysis.analysis_plans import replay_plan

Source = Callable[[Window], dict[str, Any]]
PER_MINUTE = 20_000


def _plan(**analysis: Any) -> dict[str, Any]:
    return replay_plan(critical=True, **analysis)


def _traffic(seed: int, canary_rate: float, baseline_rate: float = 0.01) -> Source:
    """Binomial counts of each window, the canary's share of the traffic its weight."""
    rng = random.Random(seed)

    def source(window: Window) -> dict[str, Any]:
        canary = round(PER_MINUTE * window.weight / 100)
        c = interval(rng, canary, canary_rate)
        b = interval(rng, PER_MINUTE - canary, baseline_rate)
        return {"error-rate": {"canary": (c.errors, c.total), "baseline": (b.errors, b.total)}}

    return source


def test_the_same_counts_give_the_same_rollout() -> None:
    """GIVEN one seed WHEN replayed twice THEN the same outcome, looks and verdicts."""
    first = replay(_plan(), _traffic(3, 0.01))
    second = replay(_plan(), _traffic(3, 0.01))

    assert first.as_dict() == second.as_dict()
    assert first.verdicts == second.verdicts


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_healthy_canary_is_promoted(seed: int) -> None:
    """GIVEN a canary as good as the baseline WHEN replayed THEN promoted after the last
    baked stage, each stage judged for at least its bake."""
    result = replay(_plan(), _traffic(seed, 0.01))

    assert (result.outcome, result.stage) == ("PROMOTED", 2), result.reason
    assert result.looks >= 30
    assert [v["outcome"] for v in result.verdicts].count("fail") == 0


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_canary_at_twice_the_errors_is_rolled_back_in_the_first_stage(seed: int) -> None:
    """GIVEN a canary at 2x the baseline's error rate WHEN replayed THEN rolled back at 5%,
    within the first stage's bake, for failing its analysis."""
    result = replay(_plan(), _traffic(seed, 0.02))

    assert (result.outcome, result.stage) == ("ROLLED_BACK", 0)
    assert result.looks <= 10 and "failed analysis" in result.reason
    assert result.verdicts[-1]["outcome"] == "fail"


def test_windows_tile_time_and_number_looks_per_stage() -> None:
    """GIVEN a healthy canary WHEN replayed THEN the source is asked once per interval, in
    time order, windows tile time, and each stage's looks count from 0 at its weight."""
    asked: list[Window] = []
    traffic = _traffic(5, 0.01)

    def source(window: Window) -> dict[str, Any]:
        asked.append(window)
        return traffic(window)

    result = replay(_plan(), source)

    assert len(asked) == result.looks
    assert all(a.end == b.start for a, b in pairwise(asked))
    assert all(w.end - w.start == timedelta(minutes=1) for w in asked)
    for stage, weight in enumerate((5.0, 25.0, 50.0)):
        looks = [w for w in asked if w.stage == stage]
        assert [w.look for w in looks] == list(range(len(looks)))
        assert {w.weight for w in looks} == {weight}


def test_a_numerator_over_its_denominator_is_refused() -> None:
    """GIVEN a window with more errors than requests WHEN replayed THEN ReplayError names
    the metric, the arm and the counts."""

    def source(window: Window) -> dict[str, Any]:
        return {"error-rate": {"canary": (60, 50), "baseline": (10, 1_000)}}

    with pytest.raises(ReplayError, match=r"error-rate canary .*numerator 60.*denominator 50"):
        replay(_plan(), source)


def test_an_unknown_metric_is_refused() -> None:
    """GIVEN counts for a metric the plan does not judge WHEN replayed THEN ReplayError
    names it."""

    def source(window: Window) -> dict[str, Any]:
        return {"latency": {"canary": (1, 10), "baseline": (1, 10)}}

    with pytest.raises(ReplayError, match="unknown metric 'latency'"):
        replay(_plan(), source)


def _warm_up_plan() -> dict[str, Any]:
    plan = _plan(initial_delay="2m")
    plan["analysis"]["metrics"][0]["limit"] = 0.05
    return plan


def test_the_first_looks_of_each_stage_warm_up() -> None:
    """GIVEN initial_delay 2m and a canary at 3x in its first two minutes of each stage,
    then healthy WHEN replayed THEN the first two looks of each stage are warm-up looks
    (not judged), the third is judged, and the canary is promoted."""

    def cold_start(window: Window) -> dict[str, Any]:
        return traffic(window) if window.look >= 2 else cold(window)

    traffic, cold = _traffic(8, 0.01), _traffic(9, 0.03)
    result = replay(_warm_up_plan(), cold_start)

    by_stage: dict[int, list[dict[str, Any]]] = {}
    for step in result.steps:
        by_stage.setdefault(step["stage"], []).append(step["verdict"]["metrics"][0])
    for metrics in by_stage.values():
        assert [m.get("warm_up", False) for m in metrics[:3]] == [True, True, False]
    assert result.outcome == "PROMOTED", result.reason


def test_the_absolute_limit_applies_during_the_warm_up() -> None:
    """GIVEN initial_delay 2m and a canary at 50% errors, the metric's limit 5% WHEN
    replayed THEN rolled back at the first look, in the warm-up, for the limit."""
    result = replay(_warm_up_plan(), _traffic(4, 0.5))

    assert (result.outcome, result.stage, result.looks) == ("ROLLED_BACK", 0, 1)
    (metric,) = result.verdicts[0]["metrics"]
    assert metric["warm_up"] is True and metric["outcome"] == "fail"
    assert "above its limit" in result.reason


def test_an_inconclusive_bake_pauses_when_the_policy_says_so() -> None:
    """GIVEN on_inconclusive pause and too little traffic to judge WHEN replayed THEN the
    rollout ends PAUSED at the end of the first bake, never promoted."""
    plan = _plan()
    plan["policies"] = {"on_inconclusive": "pause"}

    def trickle(window: Window) -> dict[str, Any]:
        return {"error-rate": {"canary": (0, 10), "baseline": (1, 190)}}

    result = replay(plan, trickle)

    assert (result.outcome, result.stage, result.looks) == ("PAUSED", 0, 10)
    assert "paused, no verdict" in result.reason
    assert {v["outcome"] for v in result.verdicts} == {"inconclusive"}


def test_a_stage_waiting_for_approval_pauses_unless_approved() -> None:
    """GIVEN a first stage that asks for approval WHEN replayed with approve=False THEN
    PAUSED after it passed; with approve=True (the default) it goes on."""
    plan = _plan()
    plan["stages"][0]["approval"] = True

    waiting = replay(plan, _traffic(2, 0.01), approve=False)
    approved = replay(plan, _traffic(2, 0.01))

    assert (waiting.outcome, waiting.stage) == ("PAUSED", 0)
    assert approved.outcome == "PROMOTED"


def test_the_stable_fleets_history_is_the_first_looks_dispersion() -> None:
    """GIVEN the stable fleet's last hour as preflight would read it WHEN replayed THEN
    the first look's dispersion comes from that history."""
    rng = random.Random(12)
    history = []
    for _ in range(60):
        counts = interval(rng, PER_MINUTE, 0.01, s=0.2)
        history.append({"error-rate": (counts.errors, counts.total)})

    result = replay(_plan(), _traffic(6, 0.01), history=history)

    first = result.verdicts[0]["metrics"][0]
    assert "stable fleet" in first["dispersion_source"]
    assert first["dispersion"] > 1
