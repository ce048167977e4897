"""The report's panels, one function each, drawn on axes ``report.figure_of`` made.

Imported only by ``report`` once matplotlib is known to be there.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, PercentFormatter

from .evidence import Look, MetricEvidence, canary_weights
from .timeline import FAIL_COLOUR, OTHER_COLOUR, PASS_COLOUR, Hold, Mark, StageSpan, runs

if TYPE_CHECKING:
    from orchestrator.models import AuditEvent, Rollout
    from orchestrator.models.analysis import RatioMetric, ThresholdMetric

VERDICT_COLOURS = {"pass": PASS_COLOUR, "fail": FAIL_COLOUR, "inconclusive": "#f9a825"}
VERDICT_NAMES = ("pass", "fail", "inconclusive", "error")
CANARY_COLOUR, BASELINE_COLOUR = "#1565c0", "#616161"
TOLERANCE_COLOUR, LIMIT_COLOUR = "#ef6c00", "#b71c1c"
BAND_COLOURS = ("#e3ecf7", "#f4f4f4")
HOLD_FACE, HOLD_EDGE = "#d7d7d7", "#8d8d8d"
LEGEND = {"loc": "upper left", "bbox_to_anchor": (1.005, 1.0), "fontsize": 8, "frameon": False}
ROWS = (0.95, 0.80, 0.65)  # label rows, in axes fraction from the top
PAD_PX = 6
HOLD_LABEL_PX = 200


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
    axis.set_ylim(-5, 118)  # room above 100% for the stage labels
    axis.set_yticks([0, 25, 50, 75, 100])
    axis.yaxis.set_major_formatter(PercentFormatter(100))
    axis.set_ylabel("canary share")
    handles = [
        Line2D([], [], color=CANARY_COLOUR, linewidth=1.6, label="canary share of traffic"),
        *_verdict_handles("look: "),
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


# -- labels placed after the layout -------------------------------------------------------


def stage_labels(
    axis: Any, spans: Sequence[StageSpan], all_looks: Sequence[Look], renderer: Any
) -> None:
    """``stage 2 · 50% · 3,120 req`` at the top of each band, or a shorter form when the
    band is narrow; a label no form of which fits goes to the next row."""
    placed: list[Any] = []
    for span in spans:
        number = span.index + 1
        judged = _canary_requests(span, all_looks)
        forms = [
            f"stage {number} · {span.weight:g}%" + (f" · {judged:,} canary req" if judged else ""),
            f"stage {number} · {span.weight:g}%",
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
        )
        _place(text, forms, right_px - left_px, placed, ROWS, renderer)


def hold_labels(axis: Any, held: Sequence[Hold], renderer: Any) -> None:
    """``paused 5s by cli:ana`` at the foot of each hold, as much of it as fits."""
    placed: list[Any] = []
    for hold in held:
        kind = "paused" if hold.kind == "paused" else "awaiting approval"
        took = _seconds(hold.end - hold.start)
        forms = [f"{kind} by {hold.actor} · {took}", f"{kind} · {took}", kind, "‖"]
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
    touches no label placed before; with none, leave it out rather than overprint."""
    for form in forms:
        text.set_text(form)
        if text.get_window_extent(renderer).width + PAD_PX > width_px:
            continue
        for row in rows:
            text.set_y(row)
            box = text.get_window_extent(renderer).padded(2)
            if not any(box.overlaps(other.get_window_extent(renderer)) for other in placed):
                placed.append(text)
                return
    text.set_visible(False)


def fit_width(text: Any, width_px: float, renderer: Any) -> None:
    """Cut ``text``'s last line with an ellipsis until it is at most ``width_px`` wide."""
    words = text.get_text()
    while words and text.get_window_extent(renderer).width > width_px:
        words = words[: max(0, len(words) - 4)]
        text.set_text(words.rstrip() + "…")


def _num(when: datetime) -> float:
    from matplotlib.dates import date2num

    return float(date2num(when))  # type: ignore[no-untyped-call]
