"""``rollout report ID --out FILE.png``: a real PNG from the audit trail, a clear message
when matplotlib is missing, and what the figure shows, read back from its artists: lines
broken at stages and pauses, the plan's tolerance and limits, intervals, counts, a legend
for every verdict colour, numbered stages, who steered the rollout and why, and no two
labels overlapping."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import report_figure
from click.testing import CliRunner
from matplotlib.dates import date2num

from orchestrator.analysis import Counts, judge_ratio
from orchestrator.analysis.sequential import Look
from orchestrator.analysis.split import check_split
from orchestrator.cli.main import cli
from orchestrator.cli.report import INSTALL_HINT, decision_marks, draw, figure_of
from orchestrator.cli.report_panels import BASELINE_COLOUR, CANARY_COLOUR, TOLERANCE_COLOUR
from orchestrator.cli.timeline import breaks, final_instant, holds, stage_spans
from orchestrator.models import AuditEvent, Rollout, RolloutPlan, RolloutStatus
from orchestrator.models.analysis import RatioMetric
from orchestrator.store import Store
from orchestrator.workflow import transitions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
PAUSE_WHY = "latency alarm in eu-west-1: checking before 50% goes on"
RESUME_WHY = "the alarm was the load test, not the canary"


def _judged(plan: RolloutPlan, canary: tuple[int, int], baseline: tuple[int, int], look: int):
    """The judge's own verdict for the plan's error-rate at look ``look`` of a stage."""
    error_rate = plan.analysis.judged_metrics()[0]
    assert isinstance(error_rate, RatioMetric)
    schedule = Look(number=look, planned=5, extra=5, alpha=plan.analysis.alpha)
    verdict = judge_ratio(error_rate, Counts(*canary), Counts(*baseline), schedule, fail_margin=0.5)
    return verdict.as_dict()


def _trail(rollout: Rollout) -> list[AuditEvent]:
    """Two stages, looks of three verdict shapes (older, ratio + threshold, an error), a
    pause asked for by a person and carried out by the workflow, a resume, promoted."""
    plan = rollout.plan

    def event(
        seq: int, seconds: int, kind: str, actor: str = "workflow", reason: str = "", **detail: Any
    ) -> AuditEvent:
        return AuditEvent(
            rollout_id=rollout.rollout_id,
            seq=seq,
            at=T0 + timedelta(seconds=seconds),
            actor=actor,
            kind=kind,
            reason=reason or kind,
            detail=detail,
        )

    def look(
        seq: int,
        seconds: int,
        metrics: list[dict[str, Any]] | dict[str, Any],
        action: str,
        outcome: str = "pass",
    ) -> AuditEvent:
        stage = 0 if seconds < 300 else 1
        verdict = metrics if isinstance(metrics, dict) else {"outcome": outcome, "metrics": metrics}
        return event(
            seq,
            seconds,
            "analysis",
            reason=action,
            stage=stage,
            weight=(10.0, 50.0)[stage],
            verdict=verdict,
            decision={"action": action, "stage": stage, "wait_seconds": 60, "reason": action},
        )

    latency = {"metric": "latency", "outcome": "pass", "value": 180.0, "threshold": 300.0}
    return [
        event(1, 0, "created", actor="cli:ana", reason="rollout requested"),
        event(
            2,
            5,
            "stage_applied",
            reason="stage 1: canary at 10%",
            stage=0,
            weights={"canary": 1000, "stable": 9000},
        ),
        look(3, 60, {"outcome": "inconclusive", "canary": {"errors": 1, "total": 90}}, "bake"),
        look(4, 120, [_judged(plan, (4, 900), (30, 8100), 2), latency], "bake"),
        look(5, 240, [_judged(plan, (6, 1400), (60, 12600), 4), latency], "apply"),
        event(
            6,
            300,
            "stage_applied",
            reason="stage 2: canary at 50%",
            stage=1,
            weights={"canary": 5000, "stable": 5000},
        ),
        look(
            7,
            360,
            [_judged(plan, (20, 4000), (22, 4000), 1), latency],
            "bake",
            outcome="inconclusive",
        ),
        event(
            8,
            400,
            "control_requested",
            actor="cli:ana",
            reason=f"pause requested by cli:ana: {PAUSE_WHY}",
            control={"action": "pause", "actor": "cli:ana", "reason": PAUSE_WHY},
        ),
        event(9, 420, "paused", reason=f"paused by cli:ana: {PAUSE_WHY}", stage=1),
        event(10, 500, "resumed", actor="cli:bo", reason=RESUME_WHY),
        look(11, 560, [_judged(plan, (30, 6000), (31, 6000), 3), latency], "promote"),
        event(
            12,
            565,
            "promoted",
            reason="v2 is the new stable for everyone",
            weights={"canary": 10000},
        ),
    ]


def _promoted(plan: RolloutPlan) -> Rollout:
    rollout = Rollout.start(plan, "tests", now=T0)
    return rollout.model_copy(
        update={"status": RolloutStatus.PROMOTED, "updated_at": T0 + timedelta(seconds=565)}
    )


def test_draw_writes_a_real_png(plan: RolloutPlan, tmp_path: Path):
    """GIVEN a whole audit trail WHEN drawn THEN a PNG of non-trivial size is written."""
    rollout = _promoted(plan)
    out = draw(rollout, _trail(rollout), tmp_path / "timeline.png")
    data = out.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert len(data) > 30_000


def test_draw_copes_with_a_rollout_without_looks(plan: RolloutPlan, tmp_path: Path):
    """GIVEN a rollout that never reached an analysis WHEN drawn THEN still a PNG."""
    rollout = _promoted(plan)
    out = draw(rollout, _trail(rollout)[:2], tmp_path / "empty.png")
    assert out.read_bytes()[:8] == PNG_SIGNATURE


def test_decisions_marked_are_the_changes_of_course(plan: RolloutPlan):
    """GIVEN a trail WHEN marks are chosen THEN stage changes, controls and the end, not
    bakes, each with who took it and why."""
    rollout = _promoted(plan)
    marks = decision_marks(rollout, _trail(rollout))
    assert [mark.label for mark in marks] == [
        "stage 1 · 10%",
        "→ apply",
        "stage 2 · 50%",
        "pause requested",
        "paused",
        "resumed",
        "→ promote",
        "PROMOTED",
    ]
    asked, paused, resumed = marks[3:6]
    assert (asked.actor, asked.reason) == ("cli:ana", PAUSE_WHY)
    assert (paused.actor, resumed.actor, resumed.reason) == ("workflow", "cli:bo", RESUME_WHY)


# -- what the figure shows, read back from its artists --------------------------------------


@pytest.fixture
def reported(plan_doc: dict[str, Any]) -> tuple[Rollout, list[AuditEvent], Any]:
    """A plan whose error-rate has a tolerance and a limit, its trail, and the figure."""
    plan_doc["analysis"] = {
        "namespace": "Shop/Edge",
        "dimensions": {"Variant": "{variant}"},
        "metrics": [
            {
                "name": "error-rate",
                "numerator": "Errors",
                "denominator": "Requests",
                "tolerance": {"absolute": 0.015},
                "limit": 0.05,
                "critical": True,
            },
            {"name": "latency", "kind": "threshold", "query": "Latency", "max": 300},
        ],
    }
    rollout = _promoted(RolloutPlan.model_validate(plan_doc))
    events = _trail(rollout)
    return rollout, events, figure_of(rollout, events)


def _axis(figure: Any, ylabel: str) -> Any:
    (axis,) = [a for a in figure.axes if a.get_ylabel() == ylabel]
    return axis


def test_per_stage_lines_break_at_stage_boundaries_and_pauses(reported):
    """GIVEN looks before and after the stage change and the pause WHEN drawn THEN no
    line of the metric or request panels spans the stage change or the pause, and the
    panels do draw lines (runs of two looks or more)."""
    rollout, events, figure = reported
    end = final_instant(rollout, events)
    cuts = breaks(stage_spans(rollout, events, end), holds(events, end))
    assert T0 + timedelta(seconds=300) in cuts and T0 + timedelta(seconds=420) in cuts
    panels = [_axis(figure, "error-rate (critical)"), _axis(figure, "requests judged")]
    lines = [line for axis in panels for line in report_figure.data_lines(axis)]

    assert lines
    assert report_figure.crossings(lines, cuts) == []
    joined = [line for line in lines if len(line.get_xdata()) > 1]
    assert joined  # stage 1's two judged looks are joined; the stages are not


def test_tolerance_and_limit_lines_carry_the_plans_values(reported):
    """GIVEN tolerance 1.5 points and limit 5% (error-rate), max 300 (latency) THEN the
    limits are horizontal lines at those values and the tolerance line is the baseline
    plus 1.5 points at every look, each named in the legend."""
    _, _, figure = reported
    errors, latency = _axis(figure, "error-rate (critical)"), _axis(figure, "latency")

    assert report_figure.reference_levels(errors) == [0.05]
    assert report_figure.reference_levels(latency) == [300.0]
    baseline, tolerance = (
        [line for line in report_figure.data_lines(errors) if line.get_color() == colour]
        for colour in (BASELINE_COLOUR, TOLERANCE_COLOUR)
    )
    assert len(baseline) == len(tolerance) == 1  # stage 1's run; later runs are one look
    assert tolerance[0].get_ydata() == pytest.approx(baseline[0].get_ydata() + 0.015)
    texts = report_figure.legend_texts(errors)
    assert "tolerance: baseline + 1.50 pts" in texts
    assert "limit 5.00% (absolute guard)" in texts
    assert "limit: max 300" in report_figure.legend_texts(latency)


def test_intervals_and_request_counts_are_drawn(reported):
    """GIVEN judged looks THEN the canary's interval is shaded and the request panel's
    points are the counts each look judged."""
    _, _, figure = reported
    errors, requests = _axis(figure, "error-rate (critical)"), _axis(figure, "requests judged")

    assert len(report_figure.bands(errors)) == 1  # stage 1's run; later runs have one look
    canary = [line for line in requests.get_lines() if line.get_color() == CANARY_COLOUR]
    assert sorted(int(y) for line in canary for y in line.get_ydata()) == [900, 1400, 4000, 6000]
    assert "canary interval (pass confidence)" in report_figure.legend_texts(errors)


def test_a_higher_is_better_metric_has_its_tolerance_below_and_interval_around_it(
    plan_doc: dict[str, Any],
):
    """GIVEN a conversion (higher is better, 10% relative tolerance) judged at two looks,
    the canary's well below the baseline's THEN its tolerance line is the baseline minus the
    margin and the shaded interval holds the canary's rate at each look (mirrored the wrong
    way, it would lie above the baseline)."""
    conversion = {
        "name": "conversion",
        "numerator": "Orders",
        "denominator": "Visits",
        "direction": "higher",
        "tolerance": {"relative": 0.1},
    }
    plan_doc["analysis"] = {
        "namespace": "Shop/Edge",
        "dimensions": {"Variant": "{variant}"},
        "metrics": [conversion],
    }
    rollout = _promoted(RolloutPlan.model_validate(plan_doc))
    spec = rollout.plan.analysis.judged_metrics()[0]
    assert isinstance(spec, RatioMetric)

    def look(seq: int, seconds: int, canary: tuple[int, int], baseline: tuple[int, int]):
        verdict = judge_ratio(
            spec, Counts(*canary), Counts(*baseline), Look(number=seq, planned=5, extra=5)
        ).as_dict()
        return AuditEvent(
            rollout_id=rollout.rollout_id,
            seq=seq,
            at=T0 + timedelta(seconds=seconds),
            actor="workflow",
            kind="analysis",
            reason="bake",
            detail={
                "stage": 0,
                "weight": 10.0,
                "verdict": {"outcome": verdict["outcome"], "metrics": [verdict]},
                "decision": {"action": "bake", "reason": "bake"},
            },
        )

    applied = AuditEvent(
        rollout_id=rollout.rollout_id,
        seq=1,
        at=T0,
        actor="workflow",
        kind="stage_applied",
        detail={"stage": 0, "weights": {"canary": 1000, "stable": 9000}},
    )
    events = [
        applied,
        look(2, 60, (270, 9000), (2800, 81000)),
        look(3, 120, (545, 18000), (5600, 162000)),
    ]
    figure = figure_of(rollout, events)
    (axis,) = [a for a in figure.axes if a.get_ylabel() == "conversion"]
    lines = report_figure.data_lines(axis)
    (canary, baseline, tolerance) = (
        next(line for line in lines if line.get_color() == colour)
        for colour in (CANARY_COLOUR, BASELINE_COLOUR, TOLERANCE_COLOUR)
    )

    assert list(tolerance.get_ydata()) == pytest.approx(
        [rate * 0.9 for rate in baseline.get_ydata()]
    )
    (band,) = report_figure.bands(axis)
    vertices = band.get_paths()[0].vertices
    for x, rate in zip(canary.get_xdata(), canary.get_ydata(), strict=True):
        at_x = vertices[abs(vertices[:, 0] - date2num(x)) < 1e-9][:, 1]
        assert at_x.min() < rate < at_x.max()
    assert "tolerance: baseline - 10% of it" in report_figure.legend_texts(axis)


def test_legends_name_every_verdict_colour(reported):
    """GIVEN the report THEN the share panel and each metric panel say which colour is
    which verdict."""
    _, _, figure = reported
    for ylabel, prefix in (("canary share", "look: "), ("error-rate (critical)", "verdict: ")):
        texts = report_figure.legend_texts(_axis(figure, ylabel))
        assert [f"{prefix}{name}" for name in ("pass", "fail", "inconclusive", "error")] == [
            t for t in texts if t.startswith(prefix)
        ]


def test_stage_bands_and_holds_are_labelled_with_numbers_and_who(reported):
    """GIVEN two stages and a pause asked for by cli:ana THEN numbered stage labels with
    their weight, bake, look interval and canary requests, the pause labelled with who and
    how long."""
    _, _, figure = reported
    texts = [t.get_text() for t in _axis(figure, "canary share").texts]
    assert "stage 1 · 10% · bake 5m, a look every 1m · 1,400 canary req" in texts
    assert "stage 2 · 50% · bake 5m, a look every 1m · 6,000 canary req" in texts
    assert "paused by cli:ana · 1m20s" in texts


def test_who_paused_resumed_and_promoted_and_why_is_written_out(reported):
    """GIVEN the decisions THEN each is numbered in the strip and written out with its time,
    who and why."""
    _, _, figure = reported
    (notes,) = [a for a in figure.axes if not a.axison]
    lines = [t.get_text() for t in notes.texts]
    assert lines[3] == f" 4  12:06:40  pause requested  by cli:ana: {PAUSE_WHY}"
    assert lines[5] == f" 6  12:08:20  resumed  by cli:bo: {RESUME_WHY}"
    assert lines[7] == " 8  12:09:25  PROMOTED  by workflow: v2 is the new stable for everyone"
    strip = _axis(figure, "decisions")
    numbers = [t.get_text() for t in strip.texts]
    assert numbers == ["1", "2", "3", "4", "5", "6", "7-8"]  # 7 and 8 are 5 seconds apart


def test_no_two_labels_overlap(reported):
    """GIVEN decisions seconds apart and labels of every kind WHEN rendered THEN no two
    texts' boxes, as the renderer draws them, overlap."""
    _, _, figure = reported
    assert report_figure.overlapping(figure) == []


def test_no_text_runs_off_the_figure(reported):
    """GIVEN a rollback whose reason is longer than the figure is wide, and the decisions
    written out THEN every text ends inside the figure, the title cut with an ellipsis."""
    rollout, events, _ = reported
    why = "canary failed analysis: " + "error-rate higher than baseline; " * 12
    rolled_back = rollout.model_copy(update={"status": RolloutStatus.ROLLED_BACK, "reason": why})
    ended = [*events[:-1], events[-1].model_copy(update={"kind": "rolled_back", "reason": why})]

    figure = figure_of(rolled_back, ended)

    assert report_figure.outside(figure) == []
    assert figure._suptitle.get_text().endswith("…")
    assert report_figure.overlapping(figure) == []


def test_labels_crowded_into_a_few_pixels_still_do_not_overlap(plan: RolloutPlan):
    """GIVEN a trail whose first ten minutes are a sliver of an eight-hour rollout (seven
    decisions and stage 1 within a few pixels) THEN shorter forms, shared labels and other
    rows: no two labels overlap, stage 1 is still numbered, every decision too."""
    rollout = _promoted(plan)
    trail = _trail(rollout)
    late = T0 + timedelta(hours=8)
    crowded = [*trail[:-2], *(e.model_copy(update={"at": late}) for e in trail[-2:])]
    rollout = rollout.model_copy(update={"updated_at": late})

    figure = figure_of(rollout, crowded)

    assert report_figure.overlapping(figure) == []
    share = [t.get_text() for t in _axis(figure, "canary share").texts if t.get_visible()]
    assert "1" in share and "stage 2 · 50% · bake 5m, a look every 1m · 6,000 canary req" in share
    strip = _axis(figure, "decisions")
    shown = [t.get_text() for t in strip.texts if t.get_visible()]
    assert any("-" in words for words in shown)  # crowded decisions share a label
    numbered = {
        n for words in shown for n in range(int(words.split("-")[0]), int(words.split("-")[-1]) + 1)
    }
    assert numbered == set(range(1, 9))


# -- the command, against moto in-process ---------------------------------------------------


def _stored(store: Store, plan: RolloutPlan) -> Rollout:
    rollout = Rollout.start(plan, "tests")
    store.create_rollout(
        rollout,
        AuditEvent(
            rollout_id=rollout.rollout_id,
            seq=1,
            at=rollout.created_at,
            actor="tests",
            kind="created",
        ),
    )
    return transitions.commit(
        store,
        rollout,
        "stage_applied",
        "stage 1",
        actor="workflow",
        detail={"stage": 0, "weights": {"canary": 1000, "stable": 9000}},
        status=RolloutStatus.RUNNING,
        stage_index=0,
    )


def test_report_command_writes_the_png(store: Store, plan: RolloutPlan, tmp_path: Path):
    """GIVEN a stored rollout WHEN reported THEN the PNG is written and its path printed."""
    rollout = _stored(store, plan)
    out = tmp_path / "r.png"
    result = CliRunner().invoke(cli, ["report", rollout.rollout_id, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out)
    assert out.read_bytes()[:8] == PNG_SIGNATURE and out.stat().st_size > 10_000


def test_report_of_an_unknown_rollout_exits_4(store: Store, tmp_path: Path):
    """GIVEN no such rollout THEN exit 4 and no file."""
    result = CliRunner().invoke(cli, ["report", "r-nope", "--out", str(tmp_path / "x.png")])
    assert result.exit_code == 4
    assert not (tmp_path / "x.png").exists()


def test_report_without_matplotlib_says_how_to_install_it(
    store: Store, plan: RolloutPlan, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """GIVEN matplotlib cannot be imported WHEN reporting THEN exit 1 naming the extra."""
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes every import of it fail
    rollout = _stored(store, plan)
    out = tmp_path / "r.png"

    result = CliRunner().invoke(cli, ["report", rollout.rollout_id, "--out", str(out)])

    assert result.exit_code == 1
    assert INSTALL_HINT in result.output and "matplotlib" in result.output
    assert not out.exists()


def test_the_served_share_is_drawn_beside_the_weight(reported):
    """GIVEN looks whose split check (the real check_split) measured the canary's served
    share, one right and one at twice the weight WHEN drawn THEN the share panel marks each
    measured share at its value, the flagged one in its own colour, and the legend says so."""
    rollout, events, _ = reported
    right = check_split([(1_000, 9_000)] * 4, 0.10, 0.25, look=4, looks=10).as_dict()
    twice = check_split([(2_000, 8_000)] * 4, 0.10, 0.25, look=4, looks=10).as_dict()
    assert (right["outcome"], twice["outcome"]) == ("ok", "mismatch")
    looked = [i for i, e in enumerate(events) if e.kind == "analysis"][1:3]
    for index, split in zip(looked, (right, twice), strict=True):
        event = events[index]
        verdict = dict(event.detail["verdict"]) | {"split": split}
        events[index] = event.model_copy(update={"detail": event.detail | {"verdict": verdict}})

    axis = _axis(figure_of(rollout, events), "canary share")

    marks = [c for c in axis.collections if c.get_offsets().shape[0] == 2 and c.get_paths()]
    served = [c for c in marks if sorted(c.get_offsets()[:, 1]) == [10.0, 20.0]]
    assert len(served) == 1
    colours = {tuple(round(v, 3) for v in rgba) for rgba in served[0].get_facecolors()}
    assert len(colours) == 2  # the mismatch stands out from the right split
    legend = [t.get_text() for t in axis.get_legend().get_texts()]
    assert "served share" in legend and "served: split mismatch" in legend
