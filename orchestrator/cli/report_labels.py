"""The report's labels, placed once the layout is settled: measured with the renderer,
each takes the longest of its forms that fits its place and a row where it touches no
label placed before, or is left out rather than overprint another.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from orchestrator.models import format_duration

from .evidence import Look
from .timeline import Hold, Mark, StageSpan, short_actor

ROWS = (0.95, 0.80, 0.65)  # label rows, in axes fraction from the top
PAD_PX = 6
HOLD_LABEL_PX = 200
LABEL_BOX = {"boxstyle": "round,pad=0.2", "facecolor": "white", "alpha": 0.85, "edgecolor": "none"}


def stage_labels(
    axis: Any, spans: Sequence[StageSpan], all_looks: Sequence[Look], renderer: Any
) -> None:
    """``stage 2 · 50% · 3,120 req`` at the top of each band, or a shorter form when the
    band is narrow; a label no form of which fits goes to the next row."""
    placed: list[Any] = []
    for span in spans:
        number = span.index + 1
        judged = _canary_requests(span, all_looks)
        requests = f" · {judged:,} canary req" if judged else ""
        head = f"stage {number} · {span.weight:g}%"
        schedule = (
            f" · bake {format_duration(span.bake)}, a look every {format_duration(span.interval)}"
            if span.bake and span.interval and span.weight < 100
            else ""
        )
        forms = [
            head + schedule + requests,
            head + requests,
            head,
            f"{number} · {span.weight:g}%",
            f"{number}",
        ]
        middle = span.start + (span.end - span.start) / 2
        left_px = axis.transData.transform((_num(span.start), 0))[0]
        right_px = axis.transData.transform((_num(span.end), 0))[0]
        text = axis.text(
            middle,
            ROWS[0],
            forms[0],
            ha="center",
            va="top",
            fontsize=8,
            fontweight="bold",
            color="#263238",
            transform=axis.get_xaxis_transform(),
            in_layout=False,
            zorder=5,
            bbox=LABEL_BOX,  # the decision lines pass behind it, not through it
        )
        _place(text, forms, right_px - left_px, placed, ROWS, renderer)


def hold_labels(axis: Any, held: Sequence[Hold], renderer: Any) -> None:
    """``paused 5s by cli:ana`` at the foot of each hold, as much of it as fits."""
    placed: list[Any] = []
    for hold in held:
        kind = "paused" if hold.kind == "paused" else "awaiting approval"
        took = _seconds(hold.end - hold.start)
        forms = [f"{kind} by {short_actor(hold.actor)} · {took}", f"{kind} · {took}", kind, "‖"]
        left_px = axis.transData.transform((_num(hold.start), 0))[0]
        right_px = axis.transData.transform((_num(hold.end), 0))[0]
        text = axis.text(
            hold.start + (hold.end - hold.start) / 2,
            0.04,
            forms[0],
            ha="center",
            va="bottom",
            fontsize=8,
            color="#37474f",
            transform=axis.get_xaxis_transform(),
            in_layout=False,
            zorder=5,
            bbox={"boxstyle": "round,pad=0.2", "facecolor": "white", "edgecolor": "none"},
        )
        # A hold's label may reach past a short hold: it sits low, where nothing else is.
        _place(text, forms, max(right_px - left_px, HOLD_LABEL_PX), placed, (0.04, 0.2), renderer)


def _seconds(span: timedelta) -> str:
    whole = round(span.total_seconds())
    minutes, seconds = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"


def _canary_requests(span: StageSpan, all_looks: Sequence[Look]) -> int:
    """Canary requests the stage's last look judged (first metric with counts)."""
    inside = [
        look for look in all_looks if look.stage == span.index and span.start <= look.at <= span.end
    ]
    for look in reversed(inside):
        for m in look.metrics:
            if m.canary is not None:
                return m.canary[1]
    return 0


def mark_numbers(axis: Any, marks: Sequence[Mark], renderer: Any) -> None:
    """Each decision's number above its line; decisions too close to tell apart share a
    label (``4-6``), which goes to a lower row if it would touch its neighbour."""
    clusters: list[list[int]] = []
    last_px = None
    for index, mark in enumerate(marks):
        px = axis.transData.transform((_num(mark.at), 0))[0]
        if clusters and last_px is not None and px - last_px < 14:
            clusters[-1].append(index)
        else:
            clusters.append([index])
            last_px = px
    placed: list[Any] = []
    for cluster in clusters:
        first, last = cluster[0] + 1, cluster[-1] + 1
        words = f"{first}" if first == last else f"{first}-{last}"
        text = axis.text(
            marks[cluster[0]].at,
            0.92,
            words,
            ha="center",
            va="top",
            fontsize=8,
            fontweight="bold",
            color=marks[cluster[0]].colour,
            transform=axis.get_xaxis_transform(),
            in_layout=False,
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"},
        )
        _place(text, [words, str(first)], math.inf, placed, (0.92, 0.48), renderer)


def _place(
    text: Any,
    forms: Sequence[str],
    width_px: float,
    placed: list[Any],
    rows: Sequence[float],
    renderer: Any,
) -> None:
    """Give ``text`` the longest of ``forms`` that fits ``width_px`` and a row where it
    touches no label placed before; failing that, the shortest form in any free row (a
    number wider than its sliver of a band still says which band it is); with no free row,
    leave it out rather than overprint."""
    tries = [(form, True) for form in forms] + [(forms[-1], False)]
    for form, within in tries:
        text.set_text(form)
        if within and text.get_window_extent(renderer).width + PAD_PX > width_px:
            continue
        for row in rows:
            text.set_y(row)
            _within_frame(text, renderer)
            box = text.get_window_extent(renderer).padded(2)
            if not any(box.overlaps(other.get_window_extent(renderer)) for other in placed):
                placed.append(text)
                return
    text.set_visible(False)


def _within_frame(text: Any, renderer: Any) -> None:
    """Slide ``text`` sideways so that it ends inside its axes, not over the tick labels
    beside them (a label centred on a band near the edge would reach past it)."""
    axis = text.axes
    box, frame = text.get_window_extent(renderer), axis.get_window_extent(renderer)
    shift = max(0.0, frame.x0 - box.x0) - max(0.0, box.x1 - frame.x1)
    if shift:
        x = text.get_position()[0]
        x_px = axis.transData.transform((_num(x) if isinstance(x, datetime) else x, 0))[0]
        text.set_x(float(axis.transData.inverted().transform((x_px + shift, 0))[0]))


def fit_width(text: Any, width_px: float, renderer: Any) -> None:
    """Cut ``text``'s last line with an ellipsis until it is at most ``width_px`` wide."""
    words = text.get_text()
    while words and text.get_window_extent(renderer).width > width_px:
        words = words[: max(0, len(words) - 4)]
        text.set_text(words.rstrip() + "…")


def _num(when: datetime) -> float:
    from matplotlib.dates import date2num

    return float(date2num(when))  # type: ignore[no-untyped-call]
