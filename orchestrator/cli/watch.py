"""``rollout status ID --watch``: where a rollout stands, why, and what a person can do.

``render`` is a pure function of (rollout, audit events, now), so every screen can be
tested without a terminal; ``follow`` polls and redraws until the rollout ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from rich.console import Console, Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from orchestrator.models import RolloutStatus, format_duration

from .evidence import (
    ERROR_SYMBOL,
    NO_DECISION,
    VERDICT_SYMBOLS,
    Look,
    MetricEvidence,
    SegmentEvidence,
    evidence_text,
    looks,
    metric_names,
    stage_label,
)

if TYPE_CHECKING:
    from orchestrator.models import AuditEvent, Rollout

Fetch = Callable[[], tuple["Rollout", Sequence["AuditEvent"]]]

_S = RolloutStatus
_STATUS_STYLE = {
    _S.PENDING: "cyan",
    _S.RUNNING: "bold cyan",
    _S.PAUSED: "bold yellow",
    _S.AWAITING_APPROVAL: "bold yellow",
    _S.PROMOTING: "bold green",
    _S.PROMOTED: "bold green",
    _S.ROLLING_BACK: "bold red",
    _S.ROLLED_BACK: "bold red",
    _S.FAILED: "bold white on red",
}
_STYLE = {"pass": "green", "fail": "red", "inconclusive": "yellow"}
_MARK = {outcome: (VERDICT_SYMBOLS[outcome], style) for outcome, style in _STYLE.items()}
_MARK_ERROR = (ERROR_SYMBOL, "magenta")
HISTORY_LOOKS = 24  # the verdict history shows this many latest looks


def render(
    rollout: Rollout, events: Sequence[AuditEvent], now: datetime, *, command: str = "rollout"
) -> RenderableType:
    """The whole screen. ``command`` prefixes the suggested commands (e.g. with the
    ``--endpoint-url`` in use) so they can be pasted as they are."""
    all_looks = looks(events)
    parts: list[RenderableType] = [_header(rollout), _ladder(rollout, now)]
    if bake := _bake(rollout, now):
        parts.append(bake)
    parts.append(_metrics(all_looks))
    parts.append(_last_decision(all_looks))
    parts.append(_next_steps(rollout, command))
    return Panel(
        Group(*parts),
        title=f"rollout {rollout.rollout_id}",
        title_align="left",
        border_style=_STATUS_STYLE[rollout.status].replace("bold ", ""),
    )


def _header(rollout: Rollout) -> RenderableType:
    plan = rollout.plan
    text = Text()
    text.append(rollout.status.value, style=_STATUS_STYLE[rollout.status])
    text.append(f"  {plan.target.host} {plan.target.path_rule}  ")
    text.append(f"{plan.stable.name} {plan.stable.version} → {plan.canary.name} ")
    text.append(plan.canary.version, style="bold")
    weight = rollout.canary_weight_bp / 100
    if rollout.status is _S.PROMOTED:
        text.append(f"\n{plan.canary.version} for everyone: the new stable", style="bold")
    else:
        text.append(f"\ncanary {weight:g}% · {plan.stable.name} {100 - weight:g}%", style="bold")
    if rollout.reason:
        text.append(f"  {rollout.reason}", style="dim")
    if rollout.control is not None:
        control = rollout.control
        why = f": {control.reason}" if control.reason else ""
        text.append(
            f"\n{control.action.value} requested by {control.actor}{why} "
            "(honoured at the next look)",
            style="yellow",
        )
    return text


def _ladder(rollout: Rollout, now: datetime) -> RenderableType:
    table = Table(box=None, padding=(0, 1), show_edge=False, title_justify="left")
    for column in ("", "stage", "weight", "", "bake", "every", "state"):
        table.add_column(column, no_wrap=True)
    current, status = rollout.stage_index, rollout.status
    last = len(rollout.plan.stages) - 1
    for index, stage in enumerate(rollout.plan.stages):
        mark, state = _stage_state(
            index, current, last, stage.weight >= 100, status, rollout.reason
        )
        bar = "█" * round(stage.weight / 5) + "░" * (20 - round(stage.weight / 5))
        style = "bold" if index == current and not status.is_final else ""
        if stage.approval and state in ("next", ""):
            state = f"{state}, needs approval".lstrip(", ")
        table.add_row(
            mark,
            f"{index + 1}/{last + 1}",
            f"{stage.weight:g}%",
            Text(bar, style="cyan" if index <= current else "dim"),
            "promotion" if stage.weight >= 100 else format_duration(stage.bake),
            "" if stage.weight >= 100 else format_duration(stage.interval),
            state,
            style=style,
        )
    return table


def _stage_state(
    index: int, current: int, last: int, is_promotion: bool, status: RolloutStatus, reason: str
) -> tuple[str, str]:
    if status is _S.PROMOTED:
        if index == last:
            return "✓", "promoted"
        if index > current:
            return "-", "skipped"  # a promote by hand jumped over it: it never ran
        # A promote by hand ("promoted by ACTOR: ...", from the service and from decide)
        # cut this stage's bake short: it did not pass.
        if index == current and reason.startswith("promoted by "):
            return "✓", "promoted from here"
        return "✓", "passed"
    if index < current or (status is _S.PROMOTING and index == current):
        return "✓", "passed"
    if index == current:
        return {
            _S.RUNNING: ("▶", "baking"),
            _S.PAUSED: ("‖", "paused"),
            _S.AWAITING_APPROVAL: ("⏸", "passed, awaiting approval"),
            _S.ROLLING_BACK: ("✗", "rolling back"),
            _S.ROLLED_BACK: ("✗", "rolled back here"),
            _S.FAILED: ("✗", "failed here"),
        }.get(status, ("▶", status.value.lower()))
    if is_promotion and status is _S.PROMOTING:
        return "▶", "promoting"
    return " ", "next" if index == current + 1 and not status.is_final else ""


def _bake(rollout: Rollout, now: datetime) -> RenderableType | None:
    stage, started = rollout.stage, rollout.stage_started_at
    if stage is None or started is None or rollout.status.is_final or stage.weight >= 100:
        return None
    elapsed = max(0.0, (now - started).total_seconds())
    left = stage.bake - elapsed
    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(width=40)
    grid.add_column()
    if rollout.status is _S.AWAITING_APPROVAL:
        note = f"bake done; waiting for approval for {_span(elapsed - stage.bake)}"
    elif left >= 0:
        note = f"{_span(elapsed)} of {_span(stage.bake)}, {_span(left)} left"
    else:
        extension = rollout.plan.extension(stage)
        note = (
            f"bake extended {_span(-left)} of up to {_span(extension)}: no verdict yet"
            if extension
            else f"bake over {_span(-left)} ago: no verdict yet"
        )
    if rollout.status is _S.PAUSED:
        note += " (paused: traffic held at this weight)"
    bar = ProgressBar(total=stage.bake, completed=min(elapsed, stage.bake), width=40)
    grid.add_row(Text(f"stage {rollout.stage_index + 1} bake", style="bold"), bar, note)
    return grid


def _metrics(all_looks: Sequence[Look]) -> RenderableType:
    if not all_looks:
        return Text("no analysis yet: the first look comes one interval into the bake", "dim")
    table = Table(box=None, padding=(0, 1), show_edge=False, title_justify="left")
    for column in ("metric", "canary", "baseline", "Δ (bound)", "verdict", "history"):
        table.add_column(column, no_wrap=column != "history")
    recent = all_looks[-HISTORY_LOOKS:]
    latest = {metric.metric: metric for metric in all_looks[-1].metrics}
    for name in metric_names(all_looks):
        metric = latest.get(name)
        history = _history(recent, partial(_outcome_of, name=name))
        if metric is None:
            table.add_row(name, "-", "-", "-", "not in the last look", history)
            continue
        label = f"{name} (critical)" if metric.critical else name
        table.add_row(
            label,
            _measured(metric, metric.canary_rate, metric.canary, canary=True),
            _measured(metric, metric.baseline_rate, metric.baseline, canary=False),
            _effect(metric),
            _mark_text(metric.outcome, metric.judged),
            history,
        )
    table.add_row(
        Text("verdict", style="bold"),
        "",
        "",
        "",
        _mark_text(all_looks[-1].outcome),
        _history(recent, lambda look: look.outcome),
    )
    return table


def _outcome_of(look: Look, *, name: str) -> str | None:
    return next((m.outcome for m in look.metrics if m.metric == name), None)


def _history(recent: Sequence[Look], outcome: Callable[[Look], str | None]) -> Text:
    text = Text()
    stage: int | None = None
    for look in recent:
        if stage is not None and look.stage != stage:
            text.append("│", style="dim")
        stage = look.stage
        found = outcome(look)
        symbol, style = _MARK.get(found, _MARK_ERROR) if found else ("·", "dim")
        text.append(symbol, style=style)
    return text


def _mark_text(outcome: str, judged: str | None = None) -> Text:
    symbol, style = _MARK.get(outcome, _MARK_ERROR)
    text = Text(f"{symbol} {outcome}", style=style)
    if judged and judged != outcome:
        text.append(f" (was {judged})", style="dim")
    return text


def _measured(
    metric: MetricEvidence, rate: float | None, counts: tuple[int, int] | None, *, canary: bool
) -> str:
    if rate is None and counts is None:
        return f"{metric.value:g}" if canary and metric.value is not None else "-"
    shown = f"{rate:.2%}" if rate is not None else "-"
    return f"{shown} ({counts[0]}/{counts[1]})" if counts else shown


def _effect(metric: MetricEvidence) -> str:
    if metric.effect is not None:
        bound = f" (≤ {metric.interval[1]:+.2%})" if metric.interval else ""
        return f"{metric.effect:+.2%}{bound}"
    if metric.value is not None and metric.threshold is not None:
        return f"limit {metric.threshold:g}"
    return "-"


def _last_decision(all_looks: Sequence[Look]) -> RenderableType:
    if not all_looks:
        return Text("")
    look = all_looks[-1]
    stage = stage_label(look.stage)
    weight = f" at {look.weight:g}%" if look.weight is not None else ""
    text = Text()
    text.append(f"last look ({stage}{weight}, {look.at:%H:%M:%S}): ", style="bold")
    text.append(_mark_text(look.outcome))
    text.append(f" → {look.action or NO_DECISION}", style="bold")
    text.append(f"  {look.decision_reason}")
    for metric in look.metrics:
        numbers = _numbers(metric)
        text.append(f"\n  {metric.metric}: ", style="bold")
        text.append(metric.reason or metric.outcome)
        if numbers:
            text.append(f"\n    {numbers}", style="dim")
        if metric.segments:
            text.append(f"\n    {segment_summary(metric.segments)}", style="dim")
            for segment in metric.segments:
                if segment.outcome == "fail":
                    text.append(f"\n    {segment.reason}", style="bold red")
    if look.split is not None:
        style = {"ok": "green", "mismatch": "bold red"}.get(look.split.outcome, "yellow")
        text.append("\n  served split: ", style="bold")
        text.append(look.split.outcome.replace("_", " "), style=style)
        text.append(f"  {look.split.reason}")
    return text


def segment_summary(segments: Sequence[SegmentEvidence]) -> str:
    """``segments: 1 fail, 12 inconclusive, 3 not judged (browser=ie-11, ...)``."""
    counts: dict[str, int] = {}
    for segment in segments:
        counts[segment.outcome] = counts.get(segment.outcome, 0) + 1
    order = ("fail", "pass", "inconclusive", "not_judged")
    parts = [f"{counts[o]} {o.replace('_', ' ')}" for o in order if counts.get(o)]
    small = [s.name for s in segments if s.outcome == "not_judged"]
    listed = f" ({', '.join(small[:5])}{', ...' if len(small) > 5 else ''})" if small else ""
    return "segments: " + ", ".join(parts) + listed


def _numbers(metric: MetricEvidence) -> str:
    return evidence_text(metric)


def _next_steps(rollout: Rollout, command: str) -> RenderableType:
    lines = []
    for index, (why, cmd) in enumerate(next_steps(rollout, command)):
        lead = "next: " if index == 0 else "      "
        if cmd:
            lines.append(Text.assemble(lead, (cmd, "bold"), (f"  # {why}", "dim")))
        else:
            lines.append(Text.assemble(lead, (why, "bold")))
    return Group(*lines)


def next_steps(rollout: Rollout, command: str = "rollout") -> list[tuple[str, str]]:
    """What a person can do now, as (why, the exact command); "" when there is nothing to run."""
    rid = rollout.rollout_id
    pause = ("hold traffic at this weight", f"{command} pause {rid} --reason '...'")
    abort = ("roll back: stable for everyone", f"{command} abort {rid} --reason '...'")
    promote = ("skip the remaining stages", f"{command} promote {rid} --reason '...'")
    resume = f"{command} resume {rid} --reason '...'"
    history = ("the audit trail", f"{command} history {rid}")
    status = rollout.status
    if status is _S.RUNNING and rollout.control is not None:
        steps = [("wait: the next look honours the request", "")]
        if rollout.control.action.value == "pause":
            steps.append(("withdraw the pause request", resume))
        return steps
    if status in (_S.PENDING, _S.RUNNING):
        return [pause, abort, promote]
    if status is _S.PAUSED:
        return [("go on baking", resume), abort, promote]
    if status is _S.AWAITING_APPROVAL:
        return [("approve: go on to the next stage", resume), abort, promote]
    if status in (_S.PROMOTING, _S.ROLLING_BACK):
        return [(f"wait: {status.value.lower()} is in progress", "")]
    if status is _S.FAILED:
        recover = f"{command} recover {rid} --reason '...'"
        return [("finish the rollback by hand, free the target", recover), history]
    return [history, ("the timeline as a PNG", f"{command} report {rid} --out {rid}.png")]


def _span(seconds: float) -> str:
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def event_line(event: AuditEvent) -> str:
    """One line per audit event, for a watch whose output is not a terminal (logs, CI)."""
    detail = event.detail
    line = f"{event.at:%H:%M:%S} {event.kind:<18} {event.reason}"
    if event.kind == "analysis":
        verdict = detail.get("verdict")
        outcome = verdict.get("outcome") if isinstance(verdict, dict) else None
        decision = detail.get("decision")
        action = decision.get("action") if isinstance(decision, dict) else None
        line = f"{event.at:%H:%M:%S} {'analysis':<18} {outcome} -> {action}: {event.reason}"
    return line


def follow(
    fetch: Fetch,
    console: Console,
    *,
    interval: float = 1.0,
    command: str = "rollout",
    clock: Callable[[], datetime] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Rollout:
    """Redraw every ``interval`` seconds until the rollout is final; return it.

    On a terminal the screen is redrawn in place; elsewhere (a pipe, a CI log) each new
    audit event is one line and the full screen is printed once at the end.
    """
    from rich.live import Live

    from orchestrator.models import utcnow

    now = clock or utcnow
    rollout, events = fetch()
    if not console.is_terminal:
        seen = 0
        while True:
            for event in events[seen:]:
                console.print(event_line(event), highlight=False, soft_wrap=True)
            seen = len(events)
            if rollout.status.is_final:
                break
            sleep(interval)
            rollout, events = fetch()
        console.print(render(rollout, events, now(), command=command))
        return rollout
    screen = render(rollout, events, now(), command=command)
    with Live(screen, console=console, auto_refresh=False, redirect_stdout=False) as live:
        while not rollout.status.is_final:
            sleep(interval)
            rollout, events = fetch()
            live.update(render(rollout, events, now(), command=command), refresh=True)
    return rollout
