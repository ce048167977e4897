"""``rollout report ID --out FILE.png``: the rollout's timeline as a picture.

Top: the canary's share of traffic over time, each look as a dot coloured by its verdict.
Below: one panel per metric, canary against baseline at every look. Decisions (stage
changes, pauses, approvals, the end) are vertical lines across all panels.

matplotlib is an optional extra, imported only here and only when a report is drawn; it
renders with the Agg backend on a figure of its own, so no display and no global state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .evidence import Look, canary_weights, looks, metric_names

if TYPE_CHECKING:
    from orchestrator.models import AuditEvent, Rollout

INSTALL_HINT = "pip install 'edgeshift[report]'"
OUTCOME_COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "inconclusive": "#f9a825"}
OTHER_COLOUR = "#6a1b9a"
CANARY_COLOUR, BASELINE_COLOUR = "#1565c0", "#757575"
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


class MissingMatplotlib(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "`rollout report` draws with matplotlib, which is not installed; install the "
            f"report extra: {INSTALL_HINT}"
        )


@dataclass(frozen=True)
class Mark:
    at: datetime
    label: str
    colour: str


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
                colour = OUTCOME_COLOURS["fail"] if action == "rollback" else OTHER_COLOUR
                marks.append(Mark(event.at, f"→ {action}", colour))
        elif event.kind in _MARKED_KINDS:
            label = _MARKED_KINDS[event.kind]
            stage = detail.get("stage")
            if event.kind == "stage_applied" and isinstance(stage, int) and stage < len(stages):
                label = f"{stages[stage].weight:g}%"
            if event.kind == "control_requested":
                control = detail.get("control")
                action = control.get("action") if isinstance(control, dict) else ""
                label = f"{action} requested"
            colour = {
                "promoted": OUTCOME_COLOURS["pass"],
                "rolled_back": OUTCOME_COLOURS["fail"],
                "failed": OUTCOME_COLOURS["fail"],
            }.get(event.kind, "#455a64")
            marks.append(Mark(event.at, label, colour))
    return marks


def _figure_class() -> tuple[Any, Any]:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise MissingMatplotlib() from None
    return Figure, FigureCanvasAgg


def draw(rollout: Rollout, events: Sequence[AuditEvent], out: Path) -> Path:
    """Write the timeline of ``rollout`` to ``out`` as a PNG and return ``out``."""
    figure_class, canvas_class = _figure_class()
    all_looks = looks(events)
    names = metric_names(all_looks)
    rows = 1 + max(1, len(names))
    figure = figure_class(figsize=(11, 2.6 * rows), layout="constrained")
    canvas_class(figure)
    axes = figure.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    plan = rollout.plan
    figure.suptitle(
        f"{rollout.rollout_id}  {plan.target.host} {plan.target.path_rule}  "
        f"{plan.stable.version} → {plan.canary.version}: {rollout.status.value}",
        fontsize=11,
    )
    end = max([rollout.updated_at, *(e.at for e in events)])
    _weights_panel(axes[0], rollout, events, all_looks, end)
    if names:
        for axis, name in zip(axes[1:], names, strict=True):
            _metric_panel(axis, name, all_looks)
    else:
        axes[1].text(
            0.5, 0.5, "no analysis recorded", ha="center", va="center", transform=axes[1].transAxes
        )
        axes[1].set_yticks([])
    marks = decision_marks(rollout, events)
    for axis in axes:
        for mark in marks:
            axis.axvline(mark.at, color=mark.colour, linewidth=0.8, linestyle="--", alpha=0.7)
        axis.grid(True, alpha=0.25)
    for mark in marks:
        axes[0].annotate(
            mark.label,
            (mark.at, 1.0),
            xycoords=("data", "axes fraction"),
            xytext=(2, -2),
            textcoords="offset points",
            rotation=90,
            va="top",
            fontsize=7,
            color=mark.colour,
        )
    _time_axis(axes[-1])
    figure.savefig(out, format="png", dpi=110)
    return out


def _weights_panel(
    axis: Any, rollout: Rollout, events: Sequence[AuditEvent], all_looks: Sequence[Look], end: Any
) -> None:
    steps = canary_weights(rollout, events)
    times = [at for at, _ in steps] + [end]
    shares = [share for _, share in steps] + [steps[-1][1]]
    axis.step(times, shares, where="post", color=CANARY_COLOUR, label="canary weight")
    dots = [look for look in all_looks if look.weight is not None]
    axis.scatter(
        [look.at for look in dots],
        [look.weight for look in dots],
        c=[OUTCOME_COLOURS.get(look.outcome, OTHER_COLOUR) for look in dots],
        s=22,
        zorder=3,
        label="look (verdict colour)",
    )
    axis.set_ylim(-5, 105)
    axis.set_ylabel("canary %")
    axis.legend(loc="center left", fontsize=8)


def _metric_panel(axis: Any, name: str, all_looks: Sequence[Look]) -> None:
    points = [(look.at, m) for look in all_looks for m in look.metrics if m.metric == name]
    rates = [(at, m) for at, m in points if m.canary_rate is not None]
    if rates:
        from matplotlib.ticker import PercentFormatter

        at = [when for when, _ in rates]
        axis.plot(at, [m.canary_rate for _, m in rates], color=CANARY_COLOUR, label="canary")
        baseline = [(when, m.baseline_rate) for when, m in rates if m.baseline_rate is not None]
        axis.plot(
            [when for when, _ in baseline],
            [rate for _, rate in baseline],
            color=BASELINE_COLOUR,
            marker="s",
            markersize=4,
            label="baseline",
        )
        axis.yaxis.set_major_formatter(PercentFormatter(1.0))
    else:  # a threshold metric: the canary's value against its bound
        values = [(when, m) for when, m in points if m.value is not None]
        axis.plot(
            [w for w, _ in values],
            [m.value for _, m in values],
            color=CANARY_COLOUR,
            label="canary",
        )
        bounds = {m.threshold for _, m in values if m.threshold is not None}
        for bound in bounds:
            axis.axhline(bound, color=OUTCOME_COLOURS["fail"], linewidth=0.8, label="limit")
    axis.scatter(
        [when for when, _ in points],
        [_y(m) for _, m in points],
        c=[OUTCOME_COLOURS.get(m.outcome, OTHER_COLOUR) for _, m in points],
        s=18,
        zorder=3,
    )
    axis.set_ylabel(name)
    axis.legend(loc="upper left", fontsize=8)
    failing = [s.reason for _, m in points for s in m.segments if s.outcome == "fail"]
    if failing:  # the segment that failed the canary, as the verdict states it
        axis.set_title(failing[-1], fontsize=8, color=OUTCOME_COLOURS["fail"], loc="left")


def _y(metric: Any) -> float:
    for value in (metric.canary_rate, metric.value):
        if value is not None:
            return float(value)
    return float("nan")


def _time_axis(axis: Any) -> None:
    from matplotlib.dates import DateFormatter

    axis.xaxis.set_major_formatter(DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]
    axis.set_xlabel("time (UTC)")
