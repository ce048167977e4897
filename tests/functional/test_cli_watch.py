"""The live view: ``render`` is a pure function of (rollout, events, now), so each screen is
checked as text; ``follow`` and ``status --watch`` are checked with a fake fetch and moto."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from orchestrator.analysis.split import check_split
from orchestrator.cli.main import cli
from orchestrator.cli.watch import event_line, follow, next_steps, render
from orchestrator.models import (
    AuditEvent,
    ControlAction,
    ControlRequest,
    Rollout,
    RolloutPlan,
    RolloutStatus,
)
from orchestrator.store import Store
from orchestrator.workflow import transitions

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
S = RolloutStatus


@pytest.fixture
def three_stages(plan_doc: dict[str, Any]) -> RolloutPlan:
    """10% and 50% (the second with an approval gate), then promotion at 100%."""
    plan_doc["stages"] = [
        {"weight": 10, "bake": "5m", "interval": "1m"},
        {"weight": 50, "bake": "5m", "interval": "1m", "approval": True},
        {"weight": 100, "bake": "5m", "interval": "1m"},
    ]
    return RolloutPlan.model_validate(plan_doc)


def _metric(outcome: str, canary: tuple[int, int], baseline: tuple[int, int]) -> dict[str, Any]:
    """A ratio metric's evidence as the judge records it (``MetricVerdict.as_dict``)."""
    c, b = canary[0] / canary[1], baseline[0] / baseline[1]
    return {
        "metric": "error-rate",
        "outcome": outcome,
        "reason": f"error-rate {outcome}: canary {c:.4%} vs baseline {b:.4%}",
        "canary": {"errors": canary[0], "total": canary[1]},
        "baseline": {"errors": baseline[0], "total": baseline[1]},
        "canary_rate": c,
        "baseline_rate": b,
        "effect": c - b,
        "interval": [-0.001, 0.004],
        "statistic": 0.71,
        "threshold": 2.81,
        "margin": 0.01,
        "pass_statistic": 1.23,
        "pass_threshold": 2.24,
        "critical": True,
    }


LATENCY_ERROR = {
    "metric": "latency-p99",
    "outcome": "inconclusive",
    "judged": "error",
    "reason": "latency-p99: timed out (error 1 in a row, 3 make an error)",
    "critical": False,
    "transient": True,
    "measured": False,
}
LATENCY_OK = {
    "metric": "latency-p99",
    "outcome": "pass",
    "reason": "latency-p99 182 within bounds",
    "value": 182.0,
    "critical": False,
}


def _events(rollout: Rollout) -> list[AuditEvent]:
    """Stage 1 passed on older-shaped then per-metric verdicts; stage 2 is baking."""

    def event(seq: int, seconds: int, kind: str, reason: str = "", **detail: Any) -> AuditEvent:
        return AuditEvent(
            rollout_id=rollout.rollout_id,
            seq=seq,
            at=T0 + timedelta(seconds=seconds),
            actor="workflow",
            kind=kind,
            reason=reason or kind,
            detail=detail,
        )

    def look(seq: int, seconds: int, stage: int, verdict: dict[str, Any], action: str, why: str):
        decision = {"action": action, "stage": stage, "wait_seconds": 60, "reason": why}
        weight = (10.0, 50.0)[stage]
        return event(
            seq,
            seconds,
            "analysis",
            why,
            stage=stage,
            weight=weight,
            verdict=verdict,
            decision=decision,
            window=[T0.isoformat(), T0.isoformat()],
        )

    old_shape = {
        "outcome": "inconclusive",
        "reason": "too few events",
        "canary": {"errors": 1, "total": 90},
        "baseline": {"errors": 4, "total": 810},
    }
    passed = {
        "outcome": "pass",
        "reason": "every metric passed",
        "metrics": [_metric("pass", (3, 800), (30, 7200)), LATENCY_OK],
    }
    baking = {
        "outcome": "inconclusive",
        "reason": "error-rate not yet certain",
        "metrics": [_metric("inconclusive", (30, 4000), (20, 4000)), LATENCY_ERROR],
    }
    return [
        event(1, 0, "created", "rollout requested"),
        event(2, 1, "started", "execution began"),
        event(
            3,
            2,
            "stage_applied",
            "stage 1: canary at 10%",
            stage=0,
            weights={"canary": 1000, "stable": 9000},
        ),
        look(4, 62, 0, old_shape, "bake", "baking, inconclusive so far"),
        look(5, 302, 0, passed, "apply", "stage 1 passed; moving to 50%"),
        event(
            6,
            400,
            "stage_applied",
            "stage 2: canary at 50%",
            stage=1,
            weights={"canary": 5000, "stable": 5000},
        ),
        look(7, 460, 1, baking, "bake", "baking, inconclusive so far"),
    ]


def _running(plan: RolloutPlan, **changes: Any) -> Rollout:
    rollout = Rollout.start(plan, "tests", now=T0)
    return rollout.model_copy(
        update={
            "status": S.RUNNING,
            "stage_index": 1,
            "stage_started_at": T0 + timedelta(seconds=400),
            **changes,
        }
    )


def _text(renderable: Any, width: int = 140) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_running_screen_shows_ladder_bake_metrics_evidence_and_commands(three_stages):
    """GIVEN stage 2 of 3 baking WHEN rendered THEN every part of the screen is there."""
    rollout = _running(three_stages)
    now = T0 + timedelta(seconds=500)

    screen = _text(render(rollout, _events(rollout), now, command="rollout --endpoint-url U"))

    assert "RUNNING  shop.example.com default  stable v1 → canary v2" in screen
    assert "canary 50% · stable 50%" in screen
    assert re.search(r"✓\s+1/3\s+10%.*passed", screen)
    assert re.search(r"▶\s+2/3\s+50%.*baking", screen)
    assert re.search(r"3/3\s+100%.*promotion\s+next", screen)
    assert "stage 2 bake" in screen and "1m40s of 5m00s, 3m20s left" in screen
    assert re.search(r"error-rate \(critical\)\s+0\.75% \(30/4000\)\s+0\.50% \(20/4000\)", screen)
    assert "+0.25% (≤ +0.40%)" in screen
    # history: one symbol per look, stages separated; the older look had no per-metric data
    assert re.search(r"error-rate \(critical\).*·✓│○", screen)
    assert re.search(r"latency-p99.*○ inconclusive \(was error\)\s+·✓│○", screen)
    assert re.search(r"verdict\s+○ inconclusive\s+○✓│○", screen)
    assert "last look (stage 2 at 50%, 12:07:40): ○ inconclusive → bake" in screen
    assert "?" not in screen  # no mark that reads as a character the terminal lacks
    wide = _text(render(rollout, _events(rollout), now), width=320)  # the evidence unwrapped
    assert (
        "z 0.71 (fails above 2.81, a sequential boundary: it moves as the stage's alpha is "
        "spent over its looks), interval [-0.100%, +0.400%], passes within 1.000%, "
        "within z 1.23 (passes above 2.24, also sequential)"
    ) in wide
    assert "latency-p99: latency-p99: timed out" in screen
    rid = rollout.rollout_id
    for verb in ("pause", "abort", "promote"):
        assert f"rollout --endpoint-url U {verb} {rid} --reason '...'" in screen


def test_an_extended_bake_shows_how_far_into_its_extension_it_is(three_stages):
    """GIVEN stage 2 two minutes past its 5-minute bake WHEN rendered THEN the note says
    how long the extension has run of how long it may (the default, 30 minutes here)."""
    rollout = _running(three_stages)
    now = T0 + timedelta(seconds=400 + 300 + 120)

    screen = _text(render(rollout, _events(rollout), now))

    assert "bake extended 2m00s of up to 30m00s: no verdict yet" in screen


def test_older_and_malformed_verdicts_render_without_crashing(three_stages):
    """GIVEN verdicts without per-metric evidence or of a broken shape THEN it still renders."""
    rollout = _running(three_stages)
    events = _events(rollout)[:4]  # only the older-shaped look
    screen = _text(render(rollout, events, T0 + timedelta(seconds=70)))
    assert re.search(r"\(overall\)\s+1\.11% \(1/90\)\s+0\.49% \(4/810\)", screen)

    broken = [
        events[0].model_copy(update={"seq": 2, "kind": "analysis", "detail": {"verdict": "?"}}),
        events[0].model_copy(
            update={
                "seq": 3,
                "kind": "analysis",
                "detail": {
                    "stage": "x",
                    "verdict": {"outcome": "fail", "metrics": [7, {"interval": [1]}]},
                    "decision": None,
                },
            }
        ),
    ]
    screen = _text(render(rollout, broken, T0))
    assert "✗ fail" in screen and "last look (stage unknown" in screen
    assert "→ no decision recorded" in screen


def test_no_look_yet_says_when_the_first_comes(three_stages):
    """GIVEN a stage just applied WHEN rendered THEN it says analysis has not run yet."""
    rollout = _running(three_stages, stage_index=0, stage_started_at=T0)
    screen = _text(render(rollout, _events(rollout)[:3], T0 + timedelta(seconds=5)))
    assert "no analysis yet" in screen
    assert "5s of 5m00s, 4m55s left" in screen


@pytest.mark.parametrize(
    ("status", "expected", "absent"),
    [
        (S.PAUSED, ["go on baking", "resume R --reason", "abort R", "promote R"], ["pause R"]),
        (S.AWAITING_APPROVAL, ["approve: go on", "resume R --reason", "abort R"], ["pause R"]),
        (S.PROMOTING, ["wait: promoting is in progress"], ["abort R"]),
        (S.FAILED, ["recover R --reason", "history R"], ["abort R"]),
        (S.PROMOTED, ["history R", "report R --out R.png"], ["abort R", "pause R"]),
        (S.ROLLED_BACK, ["history R", "report R --out R.png"], ["resume R"]),
    ],
)
def test_next_steps_fit_the_status(three_stages, status, expected, absent):
    """GIVEN a status WHEN asked what to do THEN only the commands that apply are offered."""
    rollout = _running(three_stages, status=status, rollout_id="R")
    offered = " | ".join(f"{why} {cmd}" for why, cmd in next_steps(rollout))
    for text in expected:
        assert text in offered
    for text in absent:
        assert text not in offered


def test_a_pending_pause_request_is_shown_and_can_be_withdrawn(three_stages):
    """GIVEN a pause requested but not yet honoured THEN the screen says so."""
    request = ControlRequest(action=ControlAction.PAUSE, actor="ana", reason="dashboards", at=T0)
    rollout = _running(three_stages, control=request, rollout_id="R")
    screen = _text(render(rollout, [], T0 + timedelta(seconds=420)))
    assert "pause requested by ana: dashboards (honoured at the next look)" in screen
    assert "withdraw the pause request" in screen and "rollout resume R --reason '...'" in screen


def test_final_screens_say_how_it_ended(three_stages):
    """GIVEN promoted / rolled back rollouts THEN the ladder and header say so."""
    promoted = _text(render(_running(three_stages, status=S.PROMOTED), [], T0))
    assert "v2 for everyone: the new stable" in promoted
    assert re.search(r"✓\s+3/3\s+100%.*promoted", promoted)
    assert "stage 2 bake" not in promoted and "left" not in promoted
    rolled = _text(render(_running(three_stages, status=S.ROLLED_BACK, reason="bad"), [], T0))
    assert "canary 0% · stable 100%  bad" in rolled
    assert re.search(r"✗\s+2/3\s+50%.*rolled back here", rolled)


def _fetches(plan: RolloutPlan) -> Iterator[tuple[Rollout, list[AuditEvent]]]:
    rollout = _running(plan)
    events = _events(rollout)
    yield rollout, events[:3]
    yield rollout, events
    done = rollout.model_copy(update={"status": S.PROMOTED, "reason": "every stage passed"})
    promoted = events[-1].model_copy(update={"seq": 8, "kind": "promoted", "reason": "v2 for all"})
    yield done, [*events, promoted]


def test_follow_into_a_pipe_prints_events_then_the_final_screen(three_stages):
    """GIVEN output that is not a terminal WHEN following THEN events as lines, one screen."""
    fetches, naps = _fetches(three_stages), []
    console = Console(file=io.StringIO(), width=140, force_terminal=False)

    final = follow(lambda: next(fetches), console, interval=2, clock=lambda: T0, sleep=naps.append)

    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert final.status is S.PROMOTED and naps == [2, 2]
    assert len(re.findall(r"^\d\d:\d\d:\d\d stage_applied ", output, re.M)) == 2
    assert len(re.findall(r"^\d\d:\d\d:\d\d promoted ", output, re.M)) == 1
    assert "analysis           inconclusive -> bake: baking, inconclusive so far" in output
    assert output.count("╭─ rollout") == 1 and "v2 for everyone" in output


def test_follow_on_a_terminal_redraws_until_the_end(three_stages):
    """GIVEN a terminal WHEN following THEN each fetch redraws the screen in place."""
    fetches = _fetches(three_stages)
    console = Console(file=io.StringIO(), width=140, force_terminal=True, color_system=None)

    follow(lambda: next(fetches), console, clock=lambda: T0, sleep=lambda _: None)

    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert output.count("╭─ rollout") >= 3
    assert "RUNNING" in output and "\x1b[?25l" in output  # a live display: cursor hidden
    assert "PROMOTED" in output[output.rindex("╭─ rollout") :]


def test_event_line_tolerates_any_detail():
    """GIVEN an analysis event without verdict or decision THEN its line still prints."""
    event = AuditEvent(rollout_id="r", seq=1, at=T0, actor="a", kind="analysis", reason="why")
    assert event_line(event) == "12:00:00 analysis           None -> None: why"


# -- the command, against moto in-process ---------------------------------------------------


def _finished(store: Store, plan: RolloutPlan) -> Rollout:
    """A rollout taken through the real transitions to PROMOTED."""
    rollout = Rollout.start(plan, "tests")
    created = AuditEvent(
        rollout_id=rollout.rollout_id,
        seq=1,
        at=rollout.created_at,
        actor="tests",
        kind="created",
        reason="rollout requested",
    )
    store.create_rollout(rollout, created)
    rollout = transitions.commit(
        store, rollout, "started", "began", actor="workflow", status=S.RUNNING
    )
    rollout = transitions.commit(
        store,
        rollout,
        "stage_applied",
        "stage 1",
        actor="workflow",
        detail={"stage": 0, "weights": {"canary": 1000}},
        stage_index=0,
        stage_started_at=rollout.created_at,
    )
    rollout = transitions.commit(
        store, rollout, "promote", "promoted by tests", actor="tests", status=S.PROMOTING
    )
    return transitions.commit(
        store,
        rollout,
        "promoted",
        "v2 for all",
        actor="workflow",
        status=S.PROMOTED,
        reason="promoted by tests",
    )


def test_status_watch_of_a_finished_rollout_prints_its_final_screen(store, three_stages):
    """GIVEN a finished rollout WHEN watched THEN its screen prints at once, exit 0."""
    rollout = _finished(store, three_stages)
    runner = CliRunner()

    result = runner.invoke(cli, ["status", rollout.rollout_id, "--watch"], env={"COLUMNS": "140"})
    as_json = runner.invoke(cli, ["status", rollout.rollout_id, "--watch", "--json"])
    plain = runner.invoke(cli, ["status", rollout.rollout_id])

    assert result.exit_code == 0, result.output
    assert "PROMOTED" in result.output and "stage_applied" in result.output
    assert f"rollout history {rollout.rollout_id}" in result.output
    assert json.loads(as_json.output)["status"] == "PROMOTED"
    assert plain.output.startswith(
        f"{rollout.rollout_id}: PROMOTED, ended in stage 1/3, canary 100%"
    )


def test_status_watch_of_an_unknown_rollout_exits_4(store):
    """GIVEN no such rollout WHEN watched THEN exit 4 with the id named."""
    result = CliRunner().invoke(cli, ["status", "r-nope", "--watch"])
    assert result.exit_code == 4
    assert "r-nope" in result.output


def test_the_last_look_shows_its_segments_and_the_failing_one(three_stages):
    """GIVEN a look whose metric failed for one browser WHEN rendered THEN the screen counts
    the segments by outcome, names those not judged, and shows the failing one's reason."""
    rollout = _running(three_stages)
    events = _events(rollout)
    why = "fails for browser=ie-11: canary 100% vs baseline 1.2% errors (40 requests)"
    failed = _metric("fail", (60, 4000), (20, 4000)) | {
        "segments": [
            {"name": "browser=ie-11", "outcome": "fail", "reason": why},
            {"name": "browser=chrome-131", "outcome": "inconclusive", "reason": "not yet"},
            {"name": "browser=other", "outcome": "not_judged", "reason": "too few requests"},
        ]
    }
    last = events[-1]
    detail = last.detail | {"verdict": {"outcome": "fail", "reason": "", "metrics": [failed]}}
    events[-1] = last.model_copy(update={"detail": detail})

    screen = _text(render(rollout, events, T0 + timedelta(seconds=470)), width=200)

    assert "segments: 1 fail, 1 inconclusive, 1 not judged (browser=other)" in screen
    assert why in screen


def test_the_last_look_shows_the_served_split_against_the_weight(three_stages):
    """GIVEN a look whose split check (the real check_split) found the edge serving twice
    the weight WHEN rendered THEN the screen shows the mismatch with the served share and
    the band the weight allows."""
    rollout = _running(three_stages)
    events = _events(rollout)
    periods = [(2_000, 8_000)] * 4  # the canary served 20% where 10% was asked
    split = check_split(periods, 0.10, 0.25, look=4, looks=10).as_dict()
    assert split["outcome"] == "mismatch"
    last = events[-1]
    verdict = dict(last.detail["verdict"]) | {"split": split}
    events[-1] = last.model_copy(update={"detail": last.detail | {"verdict": verdict}})

    screen = _text(render(rollout, events, T0 + timedelta(seconds=470)), width=240)

    assert "served split: mismatch" in screen
    assert "canary served 20.00% of 40000 requests, weight 10.00% allows 7.50%-12.50%" in screen
