"""The evidence text the live view shows under a look: real numbers or clear words, never
the judge's floor value, a boundary explained where it is shown, no ``?`` marks."""

from __future__ import annotations

from orchestrator.analysis import Counts, judge_ratio
from orchestrator.analysis.margin import LIMIT
from orchestrator.analysis.sequential import Look
from orchestrator.cli.evidence import (
    ERROR_SYMBOL,
    FLOOR_Z,
    NO_DECISION,
    VERDICT_SYMBOLS,
    at_floor,
    evidence_text,
    metric_evidence,
    stage_label,
    verdict_symbol,
)
from orchestrator.models.analysis import RatioMetric

METRIC = RatioMetric(name="error-rate", numerator="Errors", denominator="Requests")


def _evidence(canary: Counts, baseline: Counts, number: int = 2, **judged: object):
    """The judge's verdict for one look, read back as the audit trail stores it."""
    look = Look(number=number, planned=5, extra=5)
    verdict = judge_ratio(METRIC, canary, baseline, look, **judged)  # type: ignore[arg-type]
    (metric,) = metric_evidence({"metrics": [verdict.as_dict()]})
    return metric


def test_the_floor_constant_is_the_judges():
    """GIVEN the CLI's copy of the judge's floor THEN it is the judge's value."""
    assert FLOOR_Z == LIMIT


def test_a_canary_without_errors_shows_words_not_the_floor_value():
    """GIVEN no canary error against 400 baseline errors (the exact test's tail rounds to 1)
    WHEN the evidence is written THEN no "-40.00", but words and both sides' counts."""
    metric = _evidence(Counts(0, 900), Counts(400, 8100), fail_margin=0.5)
    assert metric.statistic == -LIMIT  # the judge recorded its floor

    text = evidence_text(metric)

    assert "-40" not in text
    assert "z far below 0 (no sign the canary is worse: 0/900 against 400/8100)" in text
    assert f"within z {metric.pass_statistic:.2f}" in text  # the score test is real


def test_the_judges_own_reason_does_not_print_the_floor_either():
    """GIVEN early in a stage (three intervals: the noise not known yet, so nothing can pass)
    a canary without errors against 60 baseline errors at 50% WHEN judged THEN inconclusive,
    and its reason, which the live view prints above the numbers, says it in words."""
    intervals = ((Counts(0, 300), Counts(20, 300)),) * 3
    look = Look(number=2, planned=5, extra=5)
    verdict = judge_ratio(METRIC, Counts(0, 900), Counts(60, 900), look, intervals=intervals)
    (metric,) = metric_evidence({"metrics": [verdict.as_dict()]})

    assert verdict.outcome == "inconclusive" and verdict.statistic == -LIMIT
    assert "-40" not in verdict.reason and "-40" not in evidence_text(metric)
    assert "not yet certain: z far below 0, no sign of worse (fails above" in verdict.reason


def test_the_floor_is_recognised_after_the_dispersion_divided_it():
    """GIVEN a floor divided by sqrt(dispersion 4) THEN still the floor; a measured z of -8
    (the exact test's lowest) is not."""
    (metric,) = metric_evidence(
        {"metrics": [{"metric": "m", "outcome": "pass", "statistic": -20.0, "dispersion": 4.0}]}
    )
    assert at_floor(metric.statistic, metric)
    assert not at_floor(-8.0, metric)
    assert "-20" not in evidence_text(metric)


def test_a_measured_z_is_shown_with_its_sequential_boundary_explained():
    """GIVEN a canary with a few errors WHEN the evidence is written THEN its z and the fail
    boundary of this look, saying the boundary is sequential and why it moves."""
    metric = _evidence(Counts(3, 900), Counts(20, 8100))

    text = evidence_text(metric)

    assert f"z {metric.statistic:.2f} (fails above {metric.threshold:.2f}, a sequential " in text
    assert "it moves as the stage's alpha is spent over its looks" in text
    assert f"(passes above {metric.pass_threshold:.2f}, also sequential)" in text


def test_the_fail_boundary_does_move_from_look_to_look():
    """GIVEN the same counts at look 1 and look 4 THEN different fail boundaries, each
    shown where it applies (what the sequential note explains)."""
    first = _evidence(Counts(3, 900), Counts(20, 8100), number=1)
    fourth = _evidence(Counts(3, 900), Counts(20, 8100), number=4)
    assert first.threshold != fourth.threshold
    assert f"fails above {first.threshold:.2f}" in evidence_text(first)
    assert f"fails above {fourth.threshold:.2f}" in evidence_text(fourth)


def test_marks_and_placeholders_are_words_or_symbols_not_question_marks():
    """GIVEN every verdict, an unknown one, a missing stage and decision THEN no "?"."""
    symbols = [verdict_symbol(o) for o in ("pass", "fail", "inconclusive", "error", None)]
    assert symbols == ["✓", "✗", "○", ERROR_SYMBOL, ERROR_SYMBOL]
    assert "?" not in "".join(VERDICT_SYMBOLS.values()) + ERROR_SYMBOL
    assert stage_label(None) == "stage unknown" and stage_label(1) == "stage 2"
    assert "?" not in NO_DECISION
    (unnamed,) = metric_evidence(
        {"metrics": [{"metric": "m", "outcome": "fail", "segments": [{"outcome": "fail"}]}]}
    )
    assert unnamed.segments[0].name == "unnamed segment"
