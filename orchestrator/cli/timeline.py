"""What the report draws, read off the audit trail: stage spans, pauses, the decisions with
who made them and why, and where a per-stage line must break. Pure, no matplotlib.

A look's rates are cumulative over its stage's judged window, so joining the last look of
one stage to the first of the next draws a drop that never happened; a pause leaves a gap
in time with no looks. Lines are therefore drawn in runs that never cross a stage boundary
or a pause.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

from .evidence import FINAL_KINDS

if TYPE_CHECKING:
    from orchestrator.models import AuditEvent, Rollout

T = TypeVar("T")

PASS_COLOUR, FAIL_COLOUR = "#2e7d32", "#c62828"
OTHER_COLOUR = "#6a1b9a"
NEUTRAL_COLOUR = "#455a64"
# Audit kinds drawn as decisions, with their label; analyses are decisions when they did
# something other than keep baking.
_MARKED_KINDS = {
    "stage_applied": "stage",
    "paused": "paused",
    "awaiting_approval": "awaiting approval",
    "resumed": "resumed",
    "control_requested": "requested",
    "abort": "abort",
    "promote": "promote",
    "promoted": "PROMOTED",
    "rolling_back": "rolling back",
    "rolled_back": "ROLLED BACK",
    "failed": "FAILED",
    "recovered": "recovered",
}
_HOLDS = ("paused", "awaiting_approval")
_RELEASES = ("resumed", "abort", "promote", "rolling_back", *FINAL_KINDS)


@dataclass(frozen=True)
class Mark:
    """A step that changed the rollout's course, and who took it, and why."""

    at: datetime
    label: str
    colour: str
    actor: str = ""
    reason: str = ""


@dataclass(frozen=True)
class StageSpan:
    index: int  # 0-based
    weight: float  # the canary's percent
    start: datetime
    end: datetime
    bake: int = 0  # seconds, as planned
    interval: int = 0  # seconds between two looks, as planned


@dataclass(frozen=True)
class Hold:
    """A time the rollout waited for a person: a pause or an approval gate."""

    kind: str  # paused or awaiting_approval
    start: datetime
    end: datetime
    actor: str
    reason: str


def decision_marks(rollout: Rollout, events: Sequence[AuditEvent]) -> list[Mark]:
    """What to draw as vertical lines: every step that changed the rollout's course."""
    marks: list[Mark] = []
    stages = rollout.plan.stages
    for event in events:
        detail = event.detail
        if event.kind == "analysis":
            decision = detail.get("decision")
            action = decision.get("action") if isinstance(decision, dict) else None
            if action and action != "bake":
                colour = FAIL_COLOUR if action == "rollback" else OTHER_COLOUR
                why = decision.get("reason") if isinstance(decision, dict) else ""
                marks.append(Mark(event.at, f"→ {action}", colour, event.actor, str(why or "")))
        elif event.kind in _MARKED_KINDS:
            label, actor, reason = _MARKED_KINDS[event.kind], event.actor, event.reason
            stage = detail.get("stage")
            if event.kind == "stage_applied" and isinstance(stage, int) and stage < len(stages):
                label = f"stage {stage + 1} · {stages[stage].weight:g}%"
                reason = ""  # "stage 2: canary at 50%" says what the label says
            if event.kind == "control_requested":
                control = detail.get("control")
                control = control if isinstance(control, dict) else {}
                label = f"{control.get('action', '')} requested"
                actor = str(control.get("actor") or actor)
                reason = str(control.get("reason") or reason)
            colour = {
                "promoted": PASS_COLOUR,
                "rolled_back": FAIL_COLOUR,
                "failed": FAIL_COLOUR,
            }.get(event.kind, NEUTRAL_COLOUR)
            marks.append(Mark(event.at, label, colour, actor, reason))
    return marks


def stage_spans(rollout: Rollout, events: Sequence[AuditEvent], end: datetime) -> list[StageSpan]:
    """Each applied stage, from its stage_applied to the next one or the rollout's end."""
    stages = rollout.plan.stages
    starts: list[tuple[int, datetime]] = []
    finish = end
    for event in events:
        stage = event.detail.get("stage")
        if event.kind == "stage_applied" and isinstance(stage, int) and 0 <= stage < len(stages):
            starts.append((stage, event.at))
        elif event.kind in FINAL_KINDS or event.kind == "rolling_back":
            finish = min(finish, event.at)
    spans = []
    for position, (index, start) in enumerate(starts):
        stop = starts[position + 1][1] if position + 1 < len(starts) else max(start, finish)
        stage = stages[index]
        spans.append(StageSpan(index, stage.weight, start, stop, stage.bake, stage.interval))
    return spans


def holds(events: Sequence[AuditEvent], end: datetime) -> list[Hold]:
    """Pauses and approval gates, each from the event that parked the rollout to the one
    that let it go (or ``end`` while it still waits)."""
    found: list[Hold] = []
    open_hold: AuditEvent | None = None
    asked: tuple[str, str] | None = None  # who asked for the pause, and why
    for event in events:
        control = event.detail.get("control")
        if event.kind == "control_requested" and isinstance(control, dict):
            asked = (str(control.get("actor") or event.actor), str(control.get("reason") or ""))
        if event.kind in _HOLDS and open_hold is None:
            open_hold = event
        elif event.kind in _RELEASES and open_hold is not None:
            found.append(_hold(open_hold, event.at, asked))
            open_hold, asked = None, None
    if open_hold is not None:
        found.append(_hold(open_hold, max(end, open_hold.at), asked))
    return found


def _hold(event: AuditEvent, end: datetime, asked: tuple[str, str] | None) -> Hold:
    """A pause is the person's who asked for it; the workflow only carried it out."""
    if event.kind == "paused" and asked is not None:
        return Hold(event.kind, event.at, end, *asked)
    return Hold(event.kind, event.at, end, event.actor, event.reason)


def breaks(spans: Sequence[StageSpan], held: Sequence[Hold]) -> list[datetime]:
    """The instants no line may be drawn across: every stage start, every hold's start
    and end."""
    return sorted({s.start for s in spans} | {h.start for h in held} | {h.end for h in held})


def runs(
    points: Sequence[T], at: Callable[[T], datetime], cuts: Sequence[datetime]
) -> list[list[T]]:
    """``points`` (in time order) split into runs that no instant of ``cuts`` falls within."""
    result: list[list[T]] = []
    current: list[T] = []
    for point in points:
        if current and any(at(current[-1]) < cut <= at(point) for cut in cuts):
            result.append(current)
            current = []
        current.append(point)
    if current:
        result.append(current)
    return result


# A caller through the API is recorded by its IAM ARN; a report line has room for the name
# after the account only (the audit trail keeps the whole ARN), so the why still fits.
_IAM_ARN = re.compile(r"arn:aws[a-z-]*:(?:iam|sts)::\d{12}:([^\s:]+)")


def short_actor(text: str) -> str:
    """``arn:aws:iam::123456789012:user/ana`` -> ``user/ana``, in an actor or a reason."""
    return _IAM_ARN.sub(r"\1", text)


def who_and_why(mark: Mark) -> str:
    """``by cli:ana: latency alarm in eu-west-1``: who took the step, and why."""
    actor = mark.actor.strip()
    reason = mark.reason.strip()
    if reason.lower() == mark.label.lower():
        reason = ""
    if actor:
        # Steering reasons repeat their actor ("pause requested by cli:ana: why"): say it once.
        reason = re.sub(rf"^[\w ]+ by {re.escape(actor)}(?::\s*|$)", "", reason).strip()
    who = "by " + short_actor(actor) if actor else ""
    return ": ".join(part for part in (who, short_actor(reason)) if part)


def final_instant(rollout: Rollout, events: Sequence[AuditEvent]) -> datetime:
    """Where the report's time axis ends: the last thing that happened."""
    return max([rollout.updated_at, *(e.at for e in events)])
