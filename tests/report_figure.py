"""Reading a drawn report back from its matplotlib artists, for the report's tests (the
functional ones on a committed trail, the integration one on a local-stack rollout)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from itertools import combinations, pairwise
from typing import Any

from matplotlib.collections import PolyCollection
from matplotlib.dates import date2num
from matplotlib.lines import Line2D
from matplotlib.text import Text


def data_lines(axis: Any) -> list[Line2D]:
    """Lines drawn in data coordinates (not axvline/axhline) with at least two points."""
    return [
        line
        for line in axis.get_lines()
        if line.get_transform() == axis.transData and len(line.get_xdata()) >= 2
    ]


def reference_levels(axis: Any) -> list[float]:
    """The y of every axhline (drawn in the y axis' blended transform)."""
    return [
        float(line.get_ydata()[0])
        for line in axis.get_lines()
        if line.get_transform() != axis.transData
        and line.get_ydata()[0] == line.get_ydata()[1]
        and list(line.get_xdata()) == [0, 1]
    ]


def crossings(lines: Iterable[Line2D], cuts: Sequence[datetime]) -> list[tuple[float, float]]:
    """Segments (x0, x1) of ``lines`` that some instant of ``cuts`` falls within."""
    numbers = [float(date2num(cut)) for cut in cuts]
    found = []
    for line in lines:
        xs = [float(date2num(x)) if isinstance(x, datetime) else float(x) for x in line.get_xdata()]
        for x0, x1 in pairwise(xs):
            if any(x0 < cut <= x1 for cut in numbers):
                found.append((x0, x1))
    return found


def bands(axis: Any) -> list[PolyCollection]:
    """Shaded areas between two curves (fill_between), such as an interval."""
    return [c for c in axis.collections if isinstance(c, PolyCollection)]


def legend_texts(axis: Any) -> list[str]:
    legend = axis.get_legend()
    return [text.get_text() for text in legend.get_texts()] if legend is not None else []


def visible_texts(figure: Any) -> list[Text]:
    """Every piece of text a person reads on the figure: titles, labels, tick labels,
    legends, annotations."""
    texts: list[Text] = [figure._suptitle] if figure._suptitle is not None else []
    for axis in figure.axes:
        texts += [*axis.texts, axis.title, axis._left_title]
        if axis.axison:  # an axes drawn without its axis shows no ticks or axis labels
            texts += [axis.xaxis.label, axis.yaxis.label]
            texts += _in_view(axis.get_xticklabels(), axis.get_xlim(), 0)
            texts += _in_view(axis.get_yticklabels(), axis.get_ylim(), 1)
        legend = axis.get_legend()
        if legend is not None:
            texts += [*legend.get_texts(), legend.get_title()]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def _in_view(labels: Sequence[Text], limits: tuple[float, float], coordinate: int) -> list[Text]:
    """The tick labels matplotlib draws: those of ticks inside the view limits."""
    low, high = sorted(limits)
    return [label for label in labels if low <= label.get_position()[coordinate] <= high]


def overlapping(figure: Any) -> list[tuple[str, str]]:
    """Pairs of visible texts whose rendered boxes overlap."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    boxes = [(text.get_text(), text.get_window_extent(renderer)) for text in visible_texts(figure)]
    return [(a, b) for (a, box_a), (b, box_b) in combinations(boxes, 2) if box_a.overlaps(box_b)]


def outside(figure: Any) -> list[str]:
    """Visible texts that run past the figure's edges."""
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    edge = figure.bbox
    return [
        text.get_text()
        for text in visible_texts(figure)
        if not edge.contains(*text.get_window_extent(renderer).min)
        or not edge.contains(*text.get_window_extent(renderer).max)
    ]
