"""``rollout report ID --out FILE.png``: the rollout's timeline as a picture.

From the top: a strip numbering the decisions; the canary's share of traffic with each
look as a dot in its verdict's colour; one panel per metric (canary and baseline, the
canary's interval, the tolerance and the limit); the requests each look judged; and the
numbered decisions written out, with who took them and why. Every panel shows the stages
as numbered bands and the pauses shaded, and per-stage lines break at both (``timeline``).

Labels are placed after the layout, measured with the renderer, so none overlaps another:
a label too wide for its place takes a shorter form or the next row.

matplotlib is an optional extra, imported only here and only when a report is drawn; it
renders with the Agg backend on a figure of its own, so no display and no global state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .evidence import FINAL_KINDS, looks, metric_names
from .timeline import (
    Mark,
    breaks,
    decision_marks,
    final_instant,
    holds,
    stage_spans,
    who_and_why,
)

if TYPE_CHECKING:
    from orchestrator.models import AuditEvent, Rollout

__all__ = ["INSTALL_HINT", "Mark", "MissingMatplotlib", "decision_marks", "draw", "figure_of"]

INSTALL_HINT = "pip install 'edgeshift[report]'"
WIDTH_INCHES, DPI = 13.0, 110
NOTE_LINE_INCHES = 0.2


class MissingMatplotlib(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "`rollout report` draws with matplotlib, which is not installed; install the "
            f"report extra: {INSTALL_HINT}"
        )


def _figure_class() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingMatplotlib() from None
    return Figure, FigureCanvasAgg


@dataclass(frozen=True)
class _Axes:
    strip: Any
    weights: Any
    metrics: list[Any]
    requests: Any
    notes: Any

    def timed(self) -> list[Any]:
        return [self.strip, self.weights, *self.metrics, self.requests]


def draw(rollout: Rollout, events: Sequence[AuditEvent], out: Path) -> Path:
    """Write the timeline of ``rollout`` to ``out`` as a PNG and return ``out``."""
    figure = figure_of(rollout, events)
    figure.savefig(out, format="png", dpi=DPI)
    return out


def figure_of(rollout: Rollout, events: Sequence[AuditEvent]) -> Any:
    """The report's matplotlib figure, laid out and with every label placed."""
    figure_class, canvas_class = _figure_class()
    # matplotlib is there: _figure_class checked
    from . import report_labels as labels
    from . import report_panels as panels

    all_looks = looks(events)
    names = metric_names(all_looks)
    marks = decision_marks(rollout, events)
    columns = 2 if len(marks) > 10 else 1
    note_rows = max(1, -(-len(marks) // columns))
    heights = [0.45, 2.0, *([2.4] * max(1, len(names))), 1.5, NOTE_LINE_INCHES * note_rows + 0.3]
    figure = figure_class(figsize=(WIDTH_INCHES, sum(heights) + 0.9), layout="constrained")
    canvas_class(figure)
    grid = figure.add_gridspec(len(heights), 1, height_ratios=heights)
    strip = figure.add_subplot(grid[0])
    timed = [strip] + [
        figure.add_subplot(grid[i], sharex=strip) for i in range(1, len(heights) - 1)
    ]
    axes = _Axes(timed[0], timed[1], timed[2:-1], timed[-1], figure.add_subplot(grid[-1]))

    plan = rollout.plan
    end = final_instant(rollout, events)
    spans = stage_spans(rollout, events, end)
    held = holds(events, end)
    cuts = breaks(spans, held)
    figure.suptitle(_title(rollout, events), fontsize=12, x=0.01, ha="left")
    for axis in axes.timed():
        panels.backdrop(axis, spans, held)
        for mark in marks:
            axis.axvline(mark.at, color=mark.colour, linewidth=0.9, linestyle="--", alpha=0.8)
    panels.weights(axes.weights, rollout, events, all_looks)
    specs = {metric.name: metric for metric in plan.analysis.judged_metrics()}
    if names:
        for axis, name in zip(axes.metrics, names, strict=True):
            panels.metric(axis, name, specs.get(name), all_looks, cuts)
    else:
        panels.nothing(axes.metrics[0], "no analysis recorded")
    panels.requests(axes.requests, all_looks, names, cuts)
    panels.strip(axes.strip)
    panels.time_axis(axes.requests, rollout.created_at, end)
    for axis in axes.timed()[:-1]:
        axis.tick_params(labelbottom=False)

    canvas = figure.canvas
    canvas.draw()  # the layout is settled: labels can now be measured where they will be
    renderer = canvas.get_renderer()
    labels.stage_labels(axes.weights, spans, all_looks, renderer)
    labels.hold_labels(axes.weights, held, renderer)
    labels.mark_numbers(axes.strip, marks, renderer)
    _notes(axes.notes, marks, columns, renderer, labels.fit_width)
    # A rollback's reason can be long: the title keeps to the figure's width.
    labels.fit_width(figure._suptitle, figure.bbox.width * 0.98, renderer)
    return figure


def _title(rollout: Rollout, events: Sequence[AuditEvent]) -> str:
    """What, where, how it stands; then who started it and, once it ended, the end's own
    reason (the rollout's reason is the last decision's, which may be older)."""
    plan = rollout.plan
    title = (
        f"{rollout.rollout_id}   {plan.target.host} {plan.target.path_rule}   "
        f"{plan.stable.version} → {plan.canary.version}   {rollout.status.value}"
    )
    ended = [e for e in events if e.kind in FINAL_KINDS]
    why = ended[-1].reason if ended else rollout.reason
    return f"{title}\nstarted by {rollout.created_by}" + (f"; {why}" if why else "")


def _notes(axis: Any, marks: Sequence[Mark], columns: int, renderer: Any, fit: Any) -> None:
    """The numbered decisions written out: when, what, who and why; each line cut to its
    column so that none runs into the next."""
    axis.set_axis_off()
    if not marks:
        axis.text(0, 0.5, "no decisions recorded", fontsize=8, va="center")
        return
    rows = -(-len(marks) // columns)
    box = axis.get_window_extent(renderer)
    column_px = box.width / columns - 12
    for number, mark in enumerate(marks, start=1):
        column, row = divmod(number - 1, rows)
        who = who_and_why(mark)
        line = f"{number:>2}  {mark.at:%H:%M:%S}  {mark.label}" + (f"  {who}" if who else "")
        text = axis.text(
            column / columns,
            1 - (row + 0.5) / rows,
            line,
            fontsize=8,
            va="center",
            color=mark.colour,
            transform=axis.transAxes,
            in_layout=False,
        )
        fit(text, column_px, renderer)
