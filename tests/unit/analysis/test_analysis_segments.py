"""Segments: each value of a declared segment judged canary against baseline, one budget."""

from __future__ import annotations

import random
from typing import Any

from analysis_plans import NOW, plan_document, replay_plan, running

from benchmarks.judge import binomial
from orchestrator.analysis import Outcome, evaluate
from orchestrator.analysis.providers import FakeProvider, ProviderError
from orchestrator.analysis.replay import Window, replay
from orchestrator.analysis.segments import _bucket
from orchestrator.models import RolloutPlan

BROWSERS = {"chrome-131": 0.6, "safari-18": 0.3, "firefox-133": 0.095, "ie-11": 0.005}


def _plan(**segment: Any) -> RolloutPlan:
    return RolloutPlan.model_validate(plan_document(segments=[{"by": "browser", **segment}]))


def _fake(canary_errors: dict[str, int], requests: int = 200_000) -> FakeProvider:
    """5% canary traffic, 1% errors everywhere except where ``canary_errors`` says."""
    fake = FakeProvider()
    totals = {"canary": [0, 0], "stable": [0, 0]}
    for browser, share in BROWSERS.items():
        for variant, weight in (("canary", 0.05), ("stable", 0.95)):
            n = round(requests * share * weight)
            errors = round(n * 0.01)
            if variant == "canary" and browser in canary_errors:
                errors = canary_errors[browser]
            fake.set_segment_counts("browser", browser, variant, errors, n)
            totals[variant][0] += errors
            totals[variant][1] += n
    for variant, (errors, n) in totals.items():
        fake.set_counts(variant, errors, n)
    return fake


def test_a_browser_broken_on_the_canary_fails_it_naming_the_browser() -> None:
    """GIVEN every ie-11 canary request failing (0.5% of traffic) WHEN judged THEN the
    canary fails, and the reason names the segment with its rates and requests."""
    plan = _plan()
    verdict, _ = evaluate(running(plan), NOW, _fake({"ie-11": 50}))
    assert verdict.outcome is Outcome.FAIL
    assert "fails for browser=ie-11: canary 100% vs baseline 1.1% errors (50 requests)" in (
        verdict.reason
    )
    segments = verdict.as_dict()["metrics"][0]["segments"]
    assert segments[0]["name"] == "browser=ie-11" and segments[0]["outcome"] == "fail"


def test_a_healthy_canary_passes_and_small_segments_are_listed_not_passed() -> None:
    """GIVEN a healthy canary and a segment minimum above ie-11's canary requests WHEN
    judged THEN no segment fails and ie-11 is listed as not judged."""
    plan = _plan(min_samples=100)
    verdict, _ = evaluate(running(plan, minutes=10), NOW, _fake({}))
    assert verdict.outcome is not Outcome.FAIL
    segments = {s.name: s for s in verdict.metrics[0].segments}
    assert segments["browser=ie-11"].outcome == "not_judged"
    assert "too few requests: canary 50" in segments["browser=ie-11"].reason
    assert segments["browser=chrome-131"].outcome in ("pass", "inconclusive")


def test_values_beyond_max_values_are_not_judged_smallest_first() -> None:
    """GIVEN max_values 2 of four browsers WHEN judged THEN the two largest are judged and
    the two smallest are listed as not judged (the broken one among them)."""
    plan = _plan(max_values=2)
    verdict, _ = evaluate(running(plan), NOW, _fake({"ie-11": 50}))
    segments = {s.name: s.outcome for s in verdict.metrics[0].segments}
    assert segments["browser=firefox-133"] == "not_judged"
    assert segments["browser=ie-11"] == "not_judged"
    assert {segments["browser=chrome-131"], segments["browser=safari-18"]} <= {
        "pass",
        "inconclusive",
    }


def test_segments_failing_to_fetch_leave_the_totals_judged_but_never_passed() -> None:
    """GIVEN totals that fetch and segments whose fetch fails WHEN judged THEN the totals
    are judged (they may still fail the canary), the segments are listed as not measured,
    and a passing total does not pass the metric: a broken browser would promote."""
    fake = _fake({}, requests=20_000_000)
    fake.segment_error = ProviderError("ListMetrics throttled")
    verdict, _ = evaluate(running(_plan(), minutes=30), NOW, fake)
    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert "passes in total, but segments not measured" in verdict.reason
    (unknown,) = verdict.metrics[0].segments
    assert unknown.name == "browser=*" and unknown.outcome == "not_judged"
    assert "ListMetrics throttled" in unknown.reason
    whole, _ = evaluate(running(RolloutPlan.model_validate(plan_document()), minutes=30), NOW, fake)
    assert whole.outcome is Outcome.PASS  # the same totals pass a plan without segments
    broken = _fake({"chrome-131": 3000})
    broken.segment_error = ProviderError("ListMetrics throttled")
    assert evaluate(running(_plan()), NOW, broken)[0].outcome is Outcome.FAIL


def test_a_plan_without_segments_has_no_segment_verdicts() -> None:
    """GIVEN a plan without segments WHEN judged THEN the verdict's JSON has no segments key."""
    plan = RolloutPlan.model_validate(plan_document())
    verdict, _ = evaluate(running(plan), NOW, _fake({"ie-11": 50}))
    assert "segments" not in verdict.as_dict()["metrics"][0]


def test_holm_divisors_round_up_to_powers_of_two() -> None:
    """GIVEN segment counts WHEN bucketed THEN each is the next power of two (never below)."""
    assert [_bucket(n) for n in (1, 2, 3, 4, 5, 20, 33)] == [1, 2, 4, 4, 8, 32, 64]


def _source(broken_share: float, seed: int) -> Any:
    rng = random.Random(seed)
    mix = {"chrome-131": 0.7 - broken_share, "safari-18": 0.3, "ie-11": broken_share}

    def source(window: Window) -> dict[str, Any]:
        segments, totals = {}, {"canary": [0, 0], "baseline": [0, 0]}
        for browser, share in mix.items():
            requests = round(20_000 * share)
            canary = binomial(rng, requests, window.weight / 100)
            arms = {"canary": canary, "baseline": requests - canary}
            counts = {}
            for arm, n in arms.items():
                bad = n if arm == "canary" and browser == "ie-11" else binomial(rng, n, 0.01)
                counts[arm] = (bad, n)
                totals[arm][0] += bad
                totals[arm][1] += n
            segments[f"browser={browser}"] = counts
        return {
            "error-rate": {
                "canary": tuple(totals["canary"]),
                "baseline": tuple(totals["baseline"]),
                "segments": segments,
            }
        }

    return source


def _history() -> list[dict[str, tuple[int, int]]]:
    rng = random.Random(7)
    return [{"error-rate": (binomial(rng, 20_000, 0.01), 20_000)} for _ in range(60)]


def test_replay_rolls_back_a_canary_broken_for_one_browser() -> None:
    """GIVEN replayed counts where 0.1% of traffic (ie-11) always fails on the canary WHEN
    replayed with segments THEN it is rolled back and the reason names ie-11."""
    plan = replay_plan(critical=True, segments=[{"by": "browser"}])
    result = replay(plan, _source(0.001, 1), history=_history())
    assert result.outcome == "ROLLED_BACK"
    assert "browser=ie-11" in result.reason


def test_replay_without_segments_reads_the_totals_only() -> None:
    """GIVEN the same counts and a plan without segments WHEN replayed THEN the segments in
    the source are ignored and the 0.1% breakage goes unseen."""
    result = replay(replay_plan(critical=True), _source(0.001, 1), history=_history())
    assert result.outcome == "PROMOTED"
