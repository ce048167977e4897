"""Tests for the analysis section, evaluate(), preflight() and the aggregation limits."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from analysis_plans import NOW, plan_document, running
from pydantic import ValidationError

from orchestrator.analysis import Outcome, evaluate, preflight
from orchestrator.analysis.providers import FakeProvider, ProviderError
from orchestrator.models import RolloutPlan


def _problems(document: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(ValidationError) as caught:
        RolloutPlan.model_validate(document)
    return {".".join(map(str, e["loc"])): e["msg"] for e in caught.value.errors()}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"provider": "prometheus"}, "analysis.provider"),
        (
            {"metrics": [{"name": "e", "numerator": "Errors"}]},
            "analysis.metrics.0.ratio.denominator",
        ),
        (
            {
                "metrics": [
                    {
                        "name": "e",
                        "numerator": "E",
                        "denominator": "R",
                        "tolerance": {"relative": -0.1},
                    }
                ]
            },
            "analysis.metrics.0.ratio.tolerance.relative",
        ),
        (
            {"metrics": [{"name": "e", "numerator": "E", "denominator": "R", "min_samples": 0}]},
            "analysis.metrics.0.ratio.min_samples",
        ),
        (
            {"metrics": [{"name": "e", "numerator": "E{{region}}", "denominator": "R"}]},
            "analysis.metrics.0.ratio.numerator",
        ),
        (
            {"metrics": [{"name": "e", "numerator": "sum:e{env:{stage}}", "denominator": "R"}]},
            "analysis.metrics.0.ratio.numerator",
        ),
    ],
)
def test_bad_analysis_is_rejected_with_the_field_named(change: dict[str, Any], field: str) -> None:
    """GIVEN a broken analysis section WHEN the plan is validated THEN the field is named."""
    assert field in _problems(plan_document(**change))


def test_datadog_queries_keep_their_scope_braces() -> None:
    """GIVEN a Datadog query with a tag scope WHEN validated THEN only placeholders count."""
    query = "sum:web.errors{host:{host},variant:{variant}}.as_count()"
    document = plan_document(
        provider="datadog",
        datadog={"api_key_secret": "a", "app_key_secret": "b"},
        metrics=[{"name": "e", "numerator": query, "denominator": query}],
    )
    assert RolloutPlan.model_validate(document).analysis.provider == "datadog"


def test_short_form_is_one_critical_error_rate() -> None:
    """GIVEN the short form WHEN read THEN one critical error-rate metric with its tolerance."""
    document = plan_document(
        metrics=[], requests_metric="Requests", errors_metric="Errors", tolerance=0.02
    )
    (metric,) = RolloutPlan.model_validate(document).analysis.judged_metrics()

    assert metric.critical and metric.tolerance.absolute == 0.02


def _fake(canary: tuple[int, int], stable: tuple[int, int]) -> FakeProvider:
    fake = FakeProvider()
    fake.set_counts("canary", *canary)
    fake.set_counts("stable", *stable)
    return fake


def test_evaluate_fails_a_bad_canary_with_json_evidence(plan: RolloutPlan) -> None:
    """GIVEN 8% canary errors vs 0.5% WHEN evaluated THEN fail, with JSON evidence."""
    verdict, tally = evaluate(running(plan), NOW, _fake((400, 5_000), (500, 100_000)))

    assert verdict.outcome is Outcome.FAIL
    assert (tally.looks, tally.judged) == (1, 1)
    data = json.loads(json.dumps(verdict.as_dict()))
    assert data["metrics"][0]["metric"] == "error-rate" and data["look"] == 5


def test_no_data_is_inconclusive_never_pass(plan: RolloutPlan) -> None:
    """GIVEN a provider without data WHEN evaluated THEN inconclusive."""
    verdict, _ = evaluate(running(plan), NOW, FakeProvider())

    assert verdict.outcome is Outcome.INCONCLUSIVE


@pytest.mark.parametrize("bad", [-5.0, float("nan"), "12", 200_000.0])
def test_impossible_answers_are_errors_not_crashes(plan: RolloutPlan, bad: Any) -> None:
    """GIVEN negative, NaN, non-numeric or >total counts WHEN evaluated THEN never pass."""
    fake = _fake((10, 5_000), (50, 100_000))
    fake.values["Errors", "canary"] = bad

    verdict, _ = evaluate(running(plan), NOW, fake)

    assert verdict.outcome in (Outcome.ERROR, Outcome.INCONCLUSIVE)


def test_transient_errors_are_tolerated_until_the_consecutive_limit(plan: RolloutPlan) -> None:
    """GIVEN a provider timing out WHEN looked at three times THEN unsure twice, then error."""
    fake = FakeProvider(error=ProviderError("timed out"))
    rollout = running(plan)
    outcomes = []
    for _ in range(3):
        verdict, tally = evaluate(rollout, NOW, fake)
        outcomes.append(verdict.outcome)
        rollout = rollout.model_copy(update={"tally": tally})

    assert outcomes == [Outcome.INCONCLUSIVE, Outcome.INCONCLUSIVE, Outcome.ERROR]
    assert rollout.tally.error_streak == {"error-rate": 3}


def test_permanent_errors_are_errors_at_once(plan: RolloutPlan) -> None:
    """GIVEN a rejected key WHEN evaluated THEN error at the first look."""
    fake = FakeProvider(error=ProviderError("key rejected", transient=False))

    verdict, _ = evaluate(running(plan), NOW, fake)

    assert verdict.outcome is Outcome.ERROR and "key rejected" in verdict.reason


def test_non_critical_failures_wait_for_tolerated_failures() -> None:
    """GIVEN tolerated_failures 1 and a non-critical metric WHEN it fails twice THEN the
    first is tolerated (inconclusive) and the second fails."""
    document = plan_document(limits={"tolerated_failures": 1})
    document["analysis"]["metrics"][0]["critical"] = False
    rollout = running(RolloutPlan.model_validate(document))
    fake = _fake((400, 5_000), (500, 100_000))
    first, tally = evaluate(rollout, NOW, fake)
    second, _ = evaluate(rollout.model_copy(update={"tally": tally}), NOW, fake)

    assert (first.outcome, second.outcome) == (Outcome.INCONCLUSIVE, Outcome.FAIL)
    assert tally.failures == {"error-rate": 1}


def _no_wait(seconds: float) -> None:
    pass


def test_preflight_reports_provider_problems(plan: RolloutPlan) -> None:
    """GIVEN a provider that rejects the key WHEN preflighted THEN the problem is listed."""
    problems, noise = preflight(
        running(plan),
        FakeProvider(error=ProviderError("403 key", transient=False)),
        now=NOW,
        sleep=_no_wait,
    )

    assert (problems, noise) == (["403 key"], {})
    assert preflight(running(plan), FakeProvider(), now=NOW, sleep=_no_wait) == ([], {})


def test_preflight_asks_again_after_a_transient_problem(plan: RolloutPlan) -> None:
    """GIVEN a provider rate-limited at its first check WHEN preflighted THEN it is asked
    again after a pause, and the rollout is not refused."""
    fake = FakeProvider(error=ProviderError("429 rate limited"))
    waits: list[float] = []

    def wait_then_recover(seconds: float) -> None:
        waits.append(seconds)
        fake.error = None

    problems, _ = preflight(running(plan), fake, now=NOW, sleep=wait_then_recover)

    assert problems == [] and len(waits) == 1


def test_preflight_gives_up_after_its_attempts(plan: RolloutPlan) -> None:
    """GIVEN a provider that keeps failing WHEN preflighted THEN three attempts, then the
    problem is reported."""
    fake = FakeProvider(error=ProviderError("429 rate limited"))
    waits: list[float] = []

    problems, _ = preflight(running(plan), fake, now=NOW, sleep=waits.append)

    assert problems == ["429 rate limited"] and len(waits) == 2 and len(fake.calls) == 3


def test_the_judged_window_starts_after_the_warm_up() -> None:
    """GIVEN initial_delay 2m, 5 minutes into a stage WHEN evaluated THEN the counts are
    asked from the warm-up's end to now, and the look counts as judged."""
    plan = RolloutPlan.model_validate(plan_document(initial_delay="2m"))
    asked: list[datetime] = []

    def answer(query: Any, start: datetime, end: datetime) -> float:
        asked.append(start)
        return 10.0 if query.text == "Errors" else 5_000.0

    _, tally = evaluate(running(plan), NOW, FakeProvider(answer=answer))

    assert set(asked) == {NOW - timedelta(minutes=3)}
    assert (tally.looks, tally.judged) == (1, 1)


def test_a_look_in_the_warm_up_is_not_judged() -> None:
    """GIVEN initial_delay 2m, 1 minute into a stage, a canary worse than the baseline but
    under its limit WHEN evaluated THEN inconclusive, marked warm-up, and not judged."""
    plan = RolloutPlan.model_validate(plan_document(initial_delay="2m"))

    verdict, tally = evaluate(running(plan, minutes=1), NOW, _fake((400, 5_000), (500, 100_000)))

    assert verdict.outcome is Outcome.INCONCLUSIVE
    assert verdict.as_dict()["metrics"][0]["warm_up"] is True
    assert (tally.looks, tally.judged, tally.inconclusive) == (1, 0, 0)


@pytest.mark.parametrize(("minutes", "warm"), [(1, True), (2, True), (2.01, True), (3, False)])
def test_the_look_at_the_end_of_the_warm_up_is_part_of_it(minutes: float, warm: bool) -> None:
    """GIVEN initial_delay 2m and 1-minute looks WHEN looked at 1, 2 (or a moment after)
    and 3 minutes in THEN the look at 2 minutes is a warm-up look, as the schedule counts
    it, not a judged look of an empty window; the look at 3 minutes is judged look 1."""
    plan = RolloutPlan.model_validate(plan_document(initial_delay="2m"))

    verdict, tally = evaluate(running(plan, minutes), NOW, _fake((10, 5_000), (200, 100_000)))

    assert bool(verdict.as_dict()["metrics"][0].get("warm_up")) is warm
    assert tally.judged == (0 if warm else 1)
    assert warm or verdict.look == 1
