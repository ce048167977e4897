"""The report's panels, one function each, drawn on axes ``report.figure_of`` made.

Imported only by ``report`` once matplotlib is known to be there.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, PercentFormatter

from .evidence import Look, MetricEvidence, canary_weights
from .timeline import FAIL_COLOUR, OTHER_COLOUR, PASS_COLOUR, Hold, StageSpan, runs

if TYPE_CHECKING:
    from orchestrator.models import AuditEvent, Rollout
    from orchestrator.models.analysis import RatioMetric, ThresholdMetric

VERDICT_COLOURS = {"pass": PASS_COLOUR, "fail": FAIL_COLOUR, "inconclusive": "#f9a825"}
VERDICT_NAMES = ("pass", "fail", "inconclusive", "error")
CANARY_COLOUR, BASELINE_COLOUR = "#1565c0", "#616161"
SERVED_MISMATCH = "#c62828"  # a served share the split check flagged
TOLERANCE_COLOUR, LIMIT_COLOUR = "#ef6c00", "#b71c1c"
BAND_COLOURS = ("#e3ecf7", "#f4f4f4")
HOLD_FACE, HOLD_EDGE = "#d7d7d7", "#8d8d8d"
LEGEND = {"loc": "upper left", "bbox_to_anchor": (1.005, 1.0), "fontsize": 8, "frameon": False}


def verdict_colour(outcome: str) -> str:
    return VERDICT_COLOURS.get(outcome, OTHER_COLOUR)


def backdrop(axis: Any, spans: Sequence[StageSpan], held: Sequence[Hold]) -> None:
    """Stage bands, alternately tinted, and the holds shaded and hatched over them."""
    for position, span in enumerate(spans):
        colour = BAND_COLOURS[position % 2]
        axis.axvspan(span.start, span.end, color=colour, zorder=0, linewidth=0)
    for hold in held:
        axis.axvspan(
            hold.start,
            hold.end,
            facecolor=HOLD_FACE,
            edgecolor=HOLD_EDGE,
            hatch="//",
            alpha=0.7,
            zorder=0.5,
            linewidth=0,
        )
    axis.grid(True, alpha=0.25)


def weights(
    axis: Any, rollout: Rollout, events: Sequence[AuditEvent], all_looks: Sequence[Look]
) -> None:
    steps = canary_weights(rollout, events)
    end = max([rollout.updated_at, *(e.at for e in events)])
    times = [at for at, _ in steps] + [end]
    shares = [share for _, share in steps] + [steps[-1][1]]
    axis.step(times, shares, where="post", color=CANARY_COLOUR, linewidth=1.6)
    dots = [look for look in all_looks if look.weight is not None]
    axis.scatter(
        [look.at for look in dots],
        [look.weight for look in dots],
        c=[verdict_colour(look.outcome) for look in dots],
        s=26,
        zorder=3,
        edgecolors="white",
        linewidths=0.5,
    )
    # What the edge actually served at each look (the split check's measured share),
    # beside the weight it was told: a gap between the two is an edge fault, not a verdict.
    served = [look for look in all_looks if look.split is not None and look.split.share is not None]
    axis.scatter(
        [look.at for look in served],
        [look.split.share for look in served if look.split is not None],
        c=[
            SERVED_MISMATCH if look.split and look.split.outcome == "mismatch" else CANARY_COLOUR
            for look in served
        ],
        marker="x",
        s=22,
        linewidths=1.0,
        zorder=4,
    )
    axis.set_ylim(-5, 118)  # room above 100% for the stage labels
    axis.set_yticks([0, 25, 50, 75, 100])
    axis.yaxis.set_major_formatter(PercentFormatter(100))
    axis.set_ylabel("canary share")
    handles = [
        Line2D([], [], color=CANARY_COLOUR, linewidth=1.6, label="canary share of traffic"),
        *_verdict_handles("look: "),
        Line2D([], [], marker="x", linestyle="", color=CANARY_COLOUR, label="served share"),
        Line2D(
            [], [], marker="x", linestyle="", color=SERVED_MISMATCH, label="served: split mismatch"
        ),
        Patch(facecolor=BAND_COLOURS[0], label="stage (numbered)"),
        Patch(facecolor=HOLD_FACE, edgecolor=HOLD_EDGE, hatch="//", label="paused / awaiting"),
        Line2D([], [], color="#455a64", linestyle="--", label="decision (numbered above)"),
    ]
    axis.legend(handles=handles, **LEGEND)


def _verdict_handles(prefix: str) -> list[Line2D]:
    return [
        Line2D(
            [],
            [],
            marker="o",
            linestyle="",
            markersize=6,
            color=verdict_colour(name),
            label=f"{prefix}{name}",
        )
        for name in VERDICT_NAMES
    ]


def metric(
    axis: Any,
    name: str,
    spec: RatioMetric | ThresholdMetric | None,
    all_looks: Sequence[Look],
    cuts: Sequence[datetime],
) -> None:
    points = [(look, m) for look in all_looks for m in look.metrics if m.metric == name]
    if any(m.canary_rate is not None for _, m in points):
        _ratio(axis, spec, [(look, m) for look, m in points if m.canary_rate is not None], cuts)
    else:
        _threshold(axis, spec, points, cuts)
    label = f"{name} (critical)" if spec is not None and spec.critical else name
    axis.set_ylabel(label)
    failing = [s.reason for _, m in points for s in m.segments if s.outcome == "fail"]
    if failing:  # the segment that failed the canary, as the verdict states it
        axis.set_title(failing[-1], fontsize=8, color=FAIL_COLOUR, loc="left")


def _ratio(
    axis: Any,
    spec: Any,
    points: list[tuple[Look, MetricEvidence]],
    cuts: Sequence[datetime],
) -> None:
    higher = spec is not None and getattr(spec, "direction", "lower") == "higher"
    for run in runs(points, lambda p: p[0].at, cuts):
        at = [look.at for look, _ in run]
        axis.plot(at, [m.canary_rate for _, m in run], color=CANARY_COLOUR, linewidth=1.6)
        based = [(look.at, m, m.baseline_rate) for look, m in run if m.baseline_rate is not None]
        axis.plot(
            [when for when, _, _ in based],
            [rate for _, _, rate in based],
            color=BASELINE_COLOUR,
            marker="s",
            markersize=3,
            linewidth=1.2,
        )
        spread = [
            (when, *_canary_interval(rate, m.interval, higher))
            for when, m, rate in based
            if m.interval is not None
        ]
        if len(spread) == 1:  # a run of one look: its interval as a bar
            when, low, high = spread[0]
            axis.vlines(when, low, high, color=CANARY_COLOUR, alpha=0.3, linewidth=4)
        elif spread:
            axis.fill_between(
                [when for when, _, _ in spread],
                [low for _, low, _ in spread],
                [high for _, _, high in spread],
                color=CANARY_COLOUR,
                alpha=0.15,
                linewidth=0,
            )
        axis.plot(
            [when for when, m, _ in based if m.margin is not None],
            [
                rate + (-m.margin if higher else m.margin)
                for _, m, rate in based
                if m.margin is not None
            ],
            color=TOLERANCE_COLOUR,
            linestyle="--",
            linewidth=1.2,
            marker="_",
            markersize=9,
        )
    axis.scatter(
        [look.at for look, _ in points],
        [m.canary_rate for _, m in points],
        c=[verdict_colour(m.outcome) for _, m in points],
        s=22,
        zorder=3,
        edgecolors="white",
        linewidths=0.5,
    )
    handles = [
        Line2D([], [], color=CANARY_COLOUR, linewidth=1.6, label="canary (cumulative in stage)"),
        Line2D([], [], color=BASELINE_COLOUR, marker="s", markersize=3, label="baseline"),
        Patch(facecolor=CANARY_COLOUR, alpha=0.15, label="canary interval (pass confidence)"),
        Line2D(
            [], [], color=TOLERANCE_COLOUR, linestyle="--", label=_tolerance_label(spec, higher)
        ),
    ]
    limit = getattr(spec, "limit", None)
    if limit is not None:
        axis.axhline(limit, color=LIMIT_COLOUR, linewidth=1.2, label="limit")
        handles.append(
            Line2D([], [], color=LIMIT_COLOUR, label=f"limit {limit:.2%} (absolute guard)")
        )
    axis.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=None))
    axis.set_ylim(bottom=0)
    axis.legend(handles=[*handles, *_verdict_handles("verdict: ")], **LEGEND)


def _canary_interval(
    baseline: float, effect: tuple[float, float], higher: bool
) -> tuple[float, float]:
    """The effect's interval (canary - baseline in the bad direction) as canary rates."""
    low, high = effect
    return (baseline - high, baseline - low) if higher else (baseline + low, baseline + high)


def _tolerance_label(spec: Any, higher: bool) -> str:
    tolerance = getattr(spec, "tolerance", None)
    side = "-" if higher else "+"
    if tolerance is None:
        return f"tolerance: baseline {side} margin"
    parts = []
    if tolerance.relative:
        parts.append(f"{tolerance.relative:.0%} of it")
    if tolerance.absolute:
        parts.append(f"{tolerance.absolute * 100:.2f} pts")
    worth = " or ".join(parts) if parts else "0"
    larger = "the larger of " if len(parts) > 1 else ""
    return f"tolerance: baseline {side} {larger}{worth}"


def _threshold(
    axis: Any,
    spec: Any,
    points: list[tuple[Look, MetricEvidence]],
    cuts: Sequence[datetime],
) -> None:
    values = [(look, m) for look, m in points if m.value is not None]
    for run in runs(values, lambda p: p[0].at, cuts):
        axis.plot(
            [look.at for look, _ in run],
            [m.value for _, m in run],
            color=CANARY_COLOUR,
            linewidth=1.6,
        )
    axis.scatter(
        [look.at for look, _ in values],
        [m.value for _, m in values],
        c=[verdict_colour(m.outcome) for _, m in values],
        s=22,
        zorder=3,
    )
    bounds = {("max", spec.max), ("min", spec.min)} if spec is not None else set()
    bounds = {(side, b) for side, b in bounds if b is not None}
    if not bounds:
        bounds = {("max", m.threshold) for _, m in values if m.threshold is not None}
    handles = [Line2D([], [], color=CANARY_COLOUR, linewidth=1.6, label="canary")]
    for side, bound in sorted(bounds, key=lambda b: b[1]):
        axis.axhline(bound, color=LIMIT_COLOUR, linewidth=1.2, label="limit")
        handles.append(Line2D([], [], color=LIMIT_COLOUR, label=f"limit: {side} {bound:g}"))
    if not values:
        nothing(axis, "no value measured")
    axis.legend(handles=[*handles, *_verdict_handles("verdict: ")], **LEGEND)


def nothing(axis: Any, words: str) -> None:
    axis.text(0.5, 0.5, words, ha="center", va="center", transform=axis.transAxes, color="#616161")
    axis.set_yticks([])


def requests(
    axis: Any, all_looks: Sequence[Look], names: Sequence[str], cuts: Sequence[datetime]
) -> None:
    """Requests each look judged, canary and baseline: the counts behind every rate."""
    counted = [
        (look.at, m.canary[1], m.baseline[1])
        for look in all_looks
        for m in look.metrics[:1]
        if m.canary is not None and m.baseline is not None
    ]
    for run in runs(counted, lambda p: p[0], cuts):
        at = [when for when, _, _ in run]
        axis.plot(at, [c for _, c, _ in run], color=CANARY_COLOUR, marker="o", markersize=3)
        axis.plot(at, [b for _, _, b in run], color=BASELINE_COLOUR, marker="s", markersize=3)
    axis.set_ylabel("requests judged")
    if not counted:
        nothing(axis, "no counts recorded")
        return
    axis.set_yscale("log")
    axis.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:,.0f}"))
    axis.legend(
        handles=[
            Line2D([], [], color=CANARY_COLOUR, marker="o", markersize=3, label="canary"),
            Line2D([], [], color=BASELINE_COLOUR, marker="s", markersize=3, label="baseline"),
        ],
        title=f"{names[0]}, cumulative in stage" if names else None,
        title_fontsize=8,
        **LEGEND,
    )


def strip(axis: Any) -> None:
    axis.set_ylim(0, 1)
    axis.set_yticks([])
    axis.set_ylabel("decisions", rotation=0, ha="right", va="center", fontsize=8)
    axis.grid(False)


def time_axis(axis: Any, start: datetime, end: datetime) -> None:
    from matplotlib.dates import DateFormatter

    pad = max(timedelta(seconds=1), (end - start) * 0.01)
    axis.set_xlim(start - pad, end + pad)
    axis.xaxis.set_major_formatter(DateFormatter("%H:%M:%S"))  # type: ignore[no-untyped-call]
    axis.set_xlabel("time (UTC)")
