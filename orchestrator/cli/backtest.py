"""``rollout backtest PLAN``: what a plan would have decided on counts that already exist.

The counts come from a CSV a user exported (``--counts``) or from the audit trail of a past
rollout (``--rollout``). Either way they become a per-interval source for
``orchestrator.analysis.replay.replay``, which runs the Analyze task's own step, so the
answer is the one a deployed rollout of PLAN would have reached; nothing here judges.

When the counts end before the plan decides, the looks that had all their counts are kept
and the outcome is ``UNDECIDED``: the backtest ran, the data was too short to decide.
"""

from __future__ import annotations

import bisect
import csv
import json
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .aws import Target
from .exits import fail

if TYPE_CHECKING:
    from orchestrator.analysis.replay import Window
    from orchestrator.models import AuditEvent, RolloutPlan

COLUMNS = ("window_start", "metric", "variant", "numerator", "denominator")
ARMS = ("canary", "baseline")

Pair = tuple[float, float]
Counts = dict[str, dict[str, Pair]]


class BadCounts(ValueError):
    """Counts the backtest cannot use; the message names the line and the column."""


@dataclass(frozen=True)
class Row:
    at: datetime
    metric: str
    arm: str
    numerator: float
    denominator: float


@dataclass
class Backtest:
    """The replay's answer, cut at the first look whose counts did not exist."""

    outcome: str  # PROMOTED, ROLLED_BACK, PAUSED or UNDECIDED
    stage: int  # 0-based
    looks: int
    reason: str
    steps: list[dict[str, Any]]
    counts_end: datetime | None = None
    not_replayed: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "stage": self.stage,
            "looks": self.looks,
            "reason": self.reason,
            "counts_end": self.counts_end.isoformat() if self.counts_end else None,
            "not_replayed": self.not_replayed,
            "steps": self.steps,
        }


# -- the CSV ----------------------------------------------------------------------------------


def read_counts(path: Path, plan: RolloutPlan) -> list[Row]:
    """Every row of ``path``, checked: known metrics and variants, counts that can be
    counts, windows in time order. Extra columns are ignored."""
    names = ratio_names(plan)
    arms = {
        plan.stable.name: "baseline",
        "baseline": "baseline",
        "canary": "canary",
        plan.canary.name: "canary",
    }
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                listed = ", ".join(missing)
                raise BadCounts(f"{path} line 1 (header): missing column(s) {listed}")
            rows = [_row(path, reader.line_num, raw, names, arms) for raw in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise BadCounts(f"{path}: cannot be read: {exc}") from None
    if not rows:
        raise BadCounts(f"{path}: no rows after the header")
    _check_order(path, rows)
    _check_coverage(path, rows, names)
    return [row for row, _ in rows]


def _row(
    path: Path, line: int, raw: Mapping[str, str | None], names: list[str], arms: dict[str, str]
) -> tuple[Row, int]:
    def bad(column: str, why: str) -> BadCounts:
        return BadCounts(f"{path} line {line}, column {column}: {why}")

    cells = {column: (raw.get(column) or "").strip() for column in COLUMNS}
    try:
        at = datetime.fromisoformat(cells["window_start"].replace("Z", "+00:00"))
    except ValueError:
        raise bad("window_start", f"{cells['window_start']!r} is not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise bad("window_start", f"{cells['window_start']!r} needs a UTC offset or Z")
    if cells["metric"] not in names:
        raise bad(
            "metric",
            f"unknown metric {cells['metric']!r}; the plan's counted (ratio) metrics are {names}",
        )
    if cells["variant"] not in arms:
        known = sorted(arms)
        raise bad("variant", f"unknown variant {cells['variant']!r}; expected one of {known}")
    numerator, denominator = (_count(cells[c], bad, c) for c in ("numerator", "denominator"))
    if numerator > denominator:
        why = f"numerator {cells['numerator']} is over its denominator {cells['denominator']}"
        raise bad("numerator", why)
    return Row(at, cells["metric"], arms[cells["variant"]], numerator, denominator), line


def _count(text: str, bad: Callable[[str, str], BadCounts], column: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise bad(column, f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise bad(column, f"{text!r} is not a finite number")
    if value < 0:
        raise bad(column, f"{text} is negative")
    return value


def _check_order(path: Path, rows: list[tuple[Row, int]]) -> None:
    for (before, _), (row, line) in pairwise(rows):
        if row.at < before.at:
            raise BadCounts(
                f"{path} line {line}, column window_start: {row.at.isoformat()} is earlier "
                f"than the previous row's {before.at.isoformat()} (rows must be in time order)"
            )


def _check_coverage(path: Path, rows: list[tuple[Row, int]], names: list[str]) -> None:
    seen = {(row.metric, row.arm) for row, _ in rows}
    for name in names:
        for arm in ARMS:
            if (name, arm) not in seen:
                raise BadCounts(f"{path} column metric: no {arm} rows for {name!r}")


class CsvCounts:
    """Each replay window's counts: the rows whose window_start falls in it, summed. The
    counts end one row period (the smallest gap between two rows) after the last row."""

    def __init__(self, rows: list[Row], default_period: int) -> None:
        self.rows = rows
        self.starts = [row.at for row in rows]
        gaps = [b - a for a, b in pairwise(self.starts) if b > a]
        self.start = self.starts[0]
        self.end = self.starts[-1] + (min(gaps) if gaps else timedelta(seconds=default_period))

    def __call__(self, window: Window) -> Counts | None:
        if window.end > self.end:
            return None
        first = bisect.bisect_left(self.starts, window.start)
        last = bisect.bisect_left(self.starts, window.end)
        counts: Counts = {}
        for row in self.rows[first:last]:
            numerator, denominator = counts.setdefault(row.metric, {}).get(row.arm, (0.0, 0.0))
            counts[row.metric][row.arm] = (
                numerator + row.numerator,
                denominator + row.denominator,
            )
        return counts


# -- a past rollout ---------------------------------------------------------------------------


class RecordedCounts:
    """A past rollout's counts per look: the differences between successive looks of a
    stage (its audit trail records the stage's counts so far). Look k of the plan's stage i
    gets the k-th recorded look of recorded stage i. A plan whose split counts viewers
    (``analysis.split.viewers``) gets them from each look's recorded split check (its share
    of the stage's viewers so far), as no metric's denominators count them."""

    def __init__(self, events: Iterable[AuditEvent], plan: RolloutPlan) -> None:
        from .evidence import OVERALL, metric_evidence

        names = ratio_names(plan)
        viewers = plan.analysis.split_viewers() is not None
        self.looks: dict[int, list[Counts]] = {}
        self.start: datetime | None = None
        self.noise: dict[str, Any] = {}  # what preflight measured, from the "started" event
        totals: dict[int, tuple[str, Counts]] = {}  # stage -> (window start, counts so far)
        seen: dict[int, Counts] = {}  # stage -> its viewers so far (their own window)
        for event in events:
            if event.kind == "started" and isinstance(event.detail.get("noise"), dict):
                self.noise = event.detail["noise"]
            stage, window = event.detail.get("stage"), event.detail.get("window")
            verdict = event.detail.get("verdict")
            if event.kind != "analysis" or not isinstance(stage, int):
                continue
            if not isinstance(window, list | tuple) or len(window) != 2:
                continue
            opened = str(window[0])
            try:
                self.start = self.start or datetime.fromisoformat(opened)
            except ValueError:  # a trail is read defensively, like the live view reads it
                continue
            so_far: Counts = {}
            for metric in metric_evidence(verdict if isinstance(verdict, dict) else {}):
                name = names[0] if metric.metric == OVERALL else metric.metric
                if name in names and metric.canary and metric.baseline:
                    so_far[name] = {"canary": metric.canary, "baseline": metric.baseline}
            previous = totals.get(stage)
            before = previous[1] if previous and previous[0] == opened else {}
            added = _increments(so_far, before)
            counted = _viewers(verdict.get("split")) if isinstance(verdict, dict) else {}
            if viewers and counted:
                added |= _increments(counted, seen.get(stage, {}))
                seen[stage] = counted
            self.looks.setdefault(stage, []).append(added)
            totals[stage] = (opened, {**before, **so_far})

    def __call__(self, window: Window) -> Counts | None:
        looks = self.looks.get(window.stage, [])
        return looks[window.look] if window.look < len(looks) else None


def _viewers(split: object) -> Counts:
    """The viewers so far of each arm a look's split check counted, or {} (it counted
    requests, or too little to say)."""
    from orchestrator.models.analysis import SPLIT_VIEWERS

    if not isinstance(split, dict) or split.get("unit") != "viewers":
        return {}
    share, total = split.get("share"), split.get("requests")
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in (share, total)):
        return {}
    assert isinstance(share, int | float) and isinstance(total, int | float)
    if not (0 <= share <= 1 and total > 0 and math.isfinite(total)):
        return {}
    canary = float(round(share * total))
    return {SPLIT_VIEWERS: {"canary": (0.0, canary), "baseline": (0.0, total - canary)}}


def _increments(so_far: Counts, before: Counts) -> Counts:
    """What a look added; a count that went down starts a new window (a warm-up ended)."""
    added: Counts = {}
    for name, arms in so_far.items():
        added[name] = {}
        for arm, (numerator, denominator) in arms.items():
            old_numerator, old_denominator = before.get(name, {}).get(arm, (0.0, 0.0))
            if numerator < old_numerator or denominator < old_denominator:
                old_numerator, old_denominator = 0.0, 0.0
            more = max(0.0, denominator - old_denominator)
            added[name][arm] = (min(more, max(0.0, numerator - old_numerator)), more)
    return added


# -- the replay -------------------------------------------------------------------------------


def ratio_names(plan: RolloutPlan) -> list[str]:
    from orchestrator.models.analysis import RatioMetric

    return [m.name for m in plan.analysis.judged_metrics() if isinstance(m, RatioMetric)]


def replayable(plan: RolloutPlan) -> tuple[RolloutPlan, list[str]]:
    """The plan without its threshold metrics (they have no counts to replay), and their
    names."""
    from orchestrator.models.analysis import RatioMetric

    kept = [m for m in plan.analysis.metrics if isinstance(m, RatioMetric)]
    dropped = [m.name for m in plan.analysis.metrics if not isinstance(m, RatioMetric)]
    if not dropped:
        return plan, []
    if not kept:
        raise BadCounts(f"the plan judges only threshold metrics ({dropped}); nothing to replay")
    analysis = plan.analysis.model_copy(update={"metrics": kept})
    return plan.model_copy(update={"analysis": analysis}), dropped


def without_split_check(plan: RolloutPlan) -> RolloutPlan:
    """Counts from a file may come from any experiment (two equal arms, a sample of the
    fleet): judging whether they were served at the plan's weights would only pause."""
    split = plan.analysis.split.model_copy(update={"enabled": False})
    analysis = plan.analysis.model_copy(update={"split": split})
    return plan.model_copy(update={"analysis": analysis})


def run(
    plan: RolloutPlan,
    counts: Callable[[Window], Counts | None],
    start: datetime,
    noise: dict[str, Any] | None = None,
) -> Backtest:
    """Replay ``plan`` on ``counts`` (None: the counts have ended) from ``start``, with the
    stable fleet's ``noise`` when a past rollout recorded it."""
    from orchestrator.analysis.replay import CountsEnded, replay

    try:
        result = replay(plan, counts, start=start, noise=noise)
    except CountsEnded as ended:
        partial, last = ended.partial, ended.window
        return Backtest(
            "UNDECIDED", last.stage, partial.looks, str(ended), partial.steps, last.start
        )
    return Backtest(result.outcome, result.stage, result.looks, result.reason, result.steps)


# -- the command ------------------------------------------------------------------------------


def render(backtest: Backtest, plan: RolloutPlan, name: str) -> None:
    """One table row per look, then what the plan would have done."""
    from rich.console import Console
    from rich.table import Table

    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = max(console.width, 140)
    main = ratio_names(plan)[0]
    table = Table(box=None, pad_edge=False)
    for title in ("stage", "weight", "look", "window end (UTC)", f"{main} canary", "baseline"):
        table.add_column(title, no_wrap=True)
    for title in ("dispersion", "outcome", "decision"):
        table.add_column(title, no_wrap=True)
    for step in backtest.steps:
        verdict, decision = step["verdict"], step["decision"]
        metrics: list[dict[str, Any]] = verdict.get("metrics", [])
        metric = next((m for m in metrics if m.get("metric") == main), {})
        dispersion = metric.get("dispersion")
        table.add_row(
            str(step["stage"] + 1),
            f"{step['weight']:g}%",
            str(verdict.get("look", "")),
            f"{datetime.fromisoformat(step['window'][1]):%Y-%m-%d %H:%M:%S}",
            _fraction(metric.get("canary")),
            _fraction(metric.get("baseline")),
            f"{dispersion:.2f}" if isinstance(dispersion, int | float) else "-",
            str(verdict.get("outcome", "")),
            str(decision.get("action", "")),
        )
    console.print(table)
    if backtest.outcome == "UNDECIDED":
        click.echo(f"{name}: {backtest.reason}")
    else:
        click.echo(
            f"{name} would have: {backtest.outcome} at stage {backtest.stage + 1} after "
            f"{backtest.looks} looks: {backtest.reason}"
        )


def _fraction(counts: object) -> str:
    if isinstance(counts, dict) and "errors" in counts and "total" in counts:
        return f"{counts['errors']:g}/{counts['total']:g}"
    return "-"


@click.command(
    epilog="Exit status: 0 when the replay ran, whatever PLAN decided (also when the counts "
    "end before it decides: outcome UNDECIDED, with the looks so far); 2 for an invalid plan "
    "or invalid counts (naming the field, or the line and column); 4 when --rollout names "
    "no rollout."
)
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--counts",
    "counts_file",
    type=click.Path(path_type=Path, dir_okay=False),
    help="CSV of per-interval counts with the header window_start,metric,variant,numerator,"
    "denominator (other columns are ignored), rows in time order.",
)
@click.option("--rollout", "rollout_id", help="Replay the counts a past rollout recorded.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@click.pass_obj
def backtest(
    target: Target, plan_file: Path, counts_file: Path | None, rollout_id: str | None, as_json: bool
) -> None:
    """What PLAN_FILE would have decided on existing counts, look by look.

    --counts: window_start is ISO 8601 with an offset (Z allowed); variant is the plan's
    canary or stable name, or canary/baseline. Each replay window sums the rows whose
    window_start falls in it; the replay starts at the first row. --rollout: look k of
    each stage gets what the rollout's k-th look of that stage added. Threshold metrics
    have no counts and are left out (named on stderr). --counts replays no history of the
    stable fleet, so the first three intervals of each stage only measure the noise
    (nothing fails or passes on them, as in a rollout whose preflight found no history);
    --rollout uses the noise the rollout's preflight recorded. The served-split check runs
    for --rollout only: a file's arms need not have been served at the plan's weights."""
    from orchestrator.plans import InvalidPlan, load_plan

    if (counts_file is None) == (rollout_id is None):
        fail("give exactly one of --counts FILE.csv or --rollout ID", 2)
    try:
        plan, dropped = replayable(load_plan(plan_file))
        if counts_file is not None:
            source = CsvCounts(read_counts(counts_file, plan), plan.analysis.period)
            result = run(without_split_check(plan), source, source.start)
            if plan.analysis.split.enabled:
                click.echo(
                    "note: the served-split check is off for --counts: a file's arms need "
                    "not have been served at the plan's weights",
                    err=True,
                )
        else:
            result = _past(target, plan, str(rollout_id))
    except (InvalidPlan, BadCounts) as exc:
        fail(str(exc), 2)
    for name in dropped:
        click.echo(f"note: threshold metric {name!r} has no counts; not replayed", err=True)
    result.not_replayed = dropped
    if as_json:
        click.echo(json.dumps(result.as_dict(), default=str))
    else:
        render(result, plan, plan_file.name)


def _past(target: Target, plan: RolloutPlan, rollout_id: str) -> Backtest:
    from orchestrator.store import NotFoundError

    store = target.store()
    try:
        store.get_rollout(rollout_id)
    except NotFoundError as exc:
        fail(str(exc), 4)
    recorded = RecordedCounts(store.events(rollout_id), plan)
    if recorded.start is None:
        raise BadCounts(f"rollout {rollout_id} recorded no analysis looks to replay")
    if not any(counts for looks in recorded.looks.values() for counts in looks):
        names = ratio_names(plan)
        raise BadCounts(f"rollout {rollout_id} recorded no counts of the plan's metrics {names}")
    return run(plan, recorded, recorded.start, noise=recorded_noise(recorded.noise))


def recorded_noise(found: dict[str, Any]) -> dict[str, Any]:
    """The stable fleet's noise a past rollout's preflight recorded, read defensively."""
    from pydantic import ValidationError

    from orchestrator.models.analysis import Noise

    noise = {}
    for name, value in found.items():
        try:
            noise[str(name)] = Noise.model_validate(value)
        except ValidationError:
            continue
    return noise
