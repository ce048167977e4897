"""A rollout replayed in-process on a simulated clock: what a plan decides on given counts.

``replay`` runs the Analyze task's own step (``orchestrator.workflow.step.take_look``:
counts, dispersion, judge, limits and tally, warm-up, ``decide``, extensions and the
inconclusive policy) and carries its decisions out the way the state machine does (apply
a stage, wait, look again, promote, roll back), with no AWS call. The benchmark, the
``rollout backtest`` command and tests use it, so there is no second decision loop.

``source(window)`` is asked once per look interval, in time order, for that interval's
counts only: ``{metric: {"canary": (numerator, denominator), "baseline": (...)}}``, or
``None`` when it has no more (``CountsEnded`` is raised, with the looks so far). For a
plan with ``analysis.segments`` a metric's counts may carry its segments' beside the
totals: ``"segments": {"browser=ie-11": {"canary": (n, d), "baseline": (n, d)}, ...}``
(a value absent from a window had no traffic in it). A plan with
``analysis.split.viewers`` takes each variant's viewers as ``"split-viewers": {"canary":
(0, viewers), "baseline": (0, viewers)}``, in the windows and the history. What a
source raises, and counts the replay cannot use (``ReplayError``), reach the caller. The
optional ``history`` is the stable fleet's counts per interval before the first shift,
``[{metric: (numerator, denominator)}, ...]`` oldest first, which preflight would read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from orchestrator.models import Rollout, RolloutPlan, RolloutStatus
from orchestrator.models.analysis import SPLIT_VIEWERS, Noise

from .providers.base import VIEWERS_PREFIX, BaseProvider, Query, SegmentSeries, Series

Pair = tuple[float, float]
WindowCounts = Mapping[str, Mapping[str, Pair]]
EPOCH = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday; any instant works


@dataclass(frozen=True)
class Window:
    stage: int  # 0-based
    weight: float  # the canary's percent
    start: datetime
    end: datetime
    look: int  # 0-based within the stage


@dataclass
class ReplayResult:
    outcome: str  # PROMOTED, ROLLED_BACK or PAUSED
    stage: int
    looks: int
    reason: str
    verdicts: list[dict[str, Any]] = field(default_factory=list)
    steps: list[dict[str, Any]] = field(default_factory=list)  # audit details, per look

    def as_dict(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "stage": self.stage,
            "looks": self.looks,
            "reason": self.reason,
            "steps": self.steps,
        }


class ReplayError(ValueError):
    """The source answered something the replay cannot use (named in the message)."""


class CountsEnded(ReplayError):
    """The source had no counts for ``window`` (it returned ``None``) before the plan
    decided; ``partial`` holds the looks taken until then."""

    def __init__(self, window: Window, partial: ReplayResult) -> None:
        super().__init__(
            f"counts end at {window.start.isoformat()}, before look {window.look + 1} of "
            f"stage {window.stage + 1}: the plan had not decided after {partial.looks} looks"
        )
        self.window, self.partial = window, partial


def replay(
    plan: RolloutPlan | Mapping[str, Any],
    source: Callable[[Window], WindowCounts | None],
    *,
    history: Sequence[Mapping[str, Pair]] = (),
    noise: Mapping[str, Noise] | None = None,
    start: datetime = EPOCH,
    approve: bool = True,
) -> ReplayResult:
    """Run ``plan`` against ``source``. ``noise``: the stable fleet's noise as a past
    rollout's preflight recorded it (used instead of ``history``). ``approve``: a stage
    that waits for approval is approved at once (a backtest asks what the analysis
    decides, not when people answer); otherwise the replay ends PAUSED there, as it does
    for a pause."""
    from orchestrator.workflow.decide import Action, advance, first_step
    from orchestrator.workflow.step import stage_started, take_look

    from .evaluate import stable_noise

    plan = plan if isinstance(plan, RolloutPlan) else RolloutPlan.model_validate(plan)
    if plan.analysis.edge_settle is None:
        # A source's windows hold what the edge served at each stage's weight: there is no
        # edge cache to wait for, whatever this process's edge TTL is.
        analysis = plan.analysis.model_copy(update={"edge_settle": 0})
        plan = plan.model_copy(update={"analysis": analysis})
    provider = _WindowProvider(plan, source)
    rollout = Rollout.start(plan, "replay", now=start).model_copy(
        update={"status": RolloutStatus.RUNNING}
    )
    if noise:  # what a past rollout's preflight measured, instead of a history to measure
        rollout = rollout.model_copy(update={"noise": dict(noise)})
    elif history:
        rollout = rollout.model_copy(
            update={"noise": stable_noise(rollout, _HistoryProvider(plan, history, start), start)}
        )
    now, decision = start, first_step()
    result = ReplayResult("ROLLED_BACK", 0, 0, "")
    while True:
        if decision.action is Action.APPLY:
            rollout = rollout.model_copy(update=stage_started(decision.stage, now, rollout))
            provider.stage(decision.stage, now)
            wait = plan.stages[decision.stage].interval
        elif decision.action is Action.BAKE:
            wait = decision.wait_seconds
        elif decision.action is Action.AWAIT_APPROVAL and approve:
            decision = advance(rollout, decision.stage)
            continue
        else:
            outcome = {Action.PROMOTE: "PROMOTED", Action.ROLLBACK: "ROLLED_BACK"}
            result.outcome = outcome.get(decision.action, "PAUSED")
            result.stage, result.reason = decision.stage, decision.reason
            return result
        now += timedelta(seconds=wait)
        step = take_look(rollout, now, provider)
        if provider.failure is not None:  # measure() turns errors into verdicts: not here
            failure, provider.failure = provider.failure, None
            if isinstance(failure, _NoMoreCounts):
                raise CountsEnded(failure.window, result) from None
            raise failure
        rollout = rollout.model_copy(update=step.changes)
        result.looks += 1
        result.verdicts.append(step.detail["verdict"])
        result.steps.append(step.detail)
        decision = step.decision


class _Arms:
    """Which metric, arm and part a query asks for: its id is ``m<metric>...`` and it ends
    ``_num`` or ``_den`` (see ``providers.base.metric_queries``); the arm is its variant."""

    def __init__(self, plan: RolloutPlan) -> None:
        self.names = [metric.name for metric in plan.analysis.judged_metrics()]
        self.counted = self.names + ([SPLIT_VIEWERS] if plan.analysis.split_viewers() else [])
        self.canary = plan.canary.name

    def of(self, query: Query) -> tuple[str, str, int]:
        head, _, part = query.id.rpartition("_")
        arm = "canary" if query.context.variant == self.canary else "baseline"
        if head.startswith(VIEWERS_PREFIX):  # the split's viewer count: a denominator only
            return SPLIT_VIEWERS, arm, 1
        index = int(head[1:].split("v")[0])
        return self.names[index], arm, 0 if part == "num" else 1


class _WindowProvider(BaseProvider):
    """Answers the Analyze step's queries from the source's windows, asking each once."""

    def __init__(self, plan: RolloutPlan, source: Callable[[Window], WindowCounts | None]) -> None:
        self.plan, self.source, self.arms = plan, source, _Arms(plan)
        self.windows: list[tuple[Window, WindowCounts]] = []
        self._stage, self._started = 0, EPOCH
        self.failure: Exception | None = None
        spec = plan.analysis
        self._by = {
            (s.datadog_tag if spec.provider == "datadog" else s.cloudwatch_dimension): s.by
            for s in spec.segments
        }

    def stage(self, index: int, now: datetime) -> None:
        self._stage, self._started, self.windows = index, now, []

    def fetch_series(
        self,
        queries: Sequence[Query],
        start: datetime,
        end: datetime,
        period: int,
        *,
        deadline: float | None = None,
    ) -> dict[str, Series]:
        interval = timedelta(seconds=self.plan.stages[self._stage].interval)
        while True:  # every window that has ended by ``end`` is asked for, in order
            look = len(self.windows)
            opens = self._started + look * interval
            if opens + interval > end:
                break
            window = Window(
                self._stage, self.plan.stages[self._stage].weight, opens, opens + interval, look
            )
            try:
                counts = self.source(window)
                if counts is None:
                    raise _NoMoreCounts(window)
                self.windows.append((window, _checked(counts, window, self.arms)))
            except Exception as exc:
                self.failure = exc
                raise
        answers: dict[str, Series] = {query.id: {} for query in queries}
        for query in queries:
            name, arm, part = self.arms.of(query)
            for window, counts in self.windows:
                if window.start >= start and name in counts and arm in counts[name]:
                    answers[query.id][window.start] = float(counts[name][arm][part])
        return answers

    def fetch_segment_series(
        self,
        queries: Sequence[Query],
        dimension: str,
        start: datetime,
        end: datetime,
        period: int,
        *,
        deadline: float | None = None,
        max_values: int = 50,
    ) -> SegmentSeries:
        """From the windows ``fetch_series`` has read (it runs first in every look)."""
        prefix = f"{self._by.get(dimension, dimension)}="
        answers: SegmentSeries = {query.id: {} for query in queries}
        for query in queries:
            name, arm, part = self.arms.of(query)
            for window, counts in self.windows:
                if window.start < start or name not in counts:
                    continue
                cut: Mapping[str, Mapping[str, Pair]] = counts[name].get("segments") or {}  # type: ignore[assignment]
                for key, arms in cut.items():
                    if key.startswith(prefix) and arm in arms:
                        by_value = answers[query.id].setdefault(key[len(prefix) :], {})
                        by_value[window.start] = float(arms[arm][part])
        return answers


class _NoMoreCounts(Exception):
    def __init__(self, window: Window) -> None:
        super().__init__(window)
        self.window = window


class _HistoryProvider(BaseProvider):
    """The stable fleet's intervals before the first shift, one per ``period`` up to ``end``."""

    def __init__(
        self, plan: RolloutPlan, history: Sequence[Mapping[str, Pair]], end: datetime
    ) -> None:
        self.arms, self.history, self.end = _Arms(plan), history, end
        self.period = timedelta(seconds=plan.analysis.period)

    def fetch_series(
        self,
        queries: Sequence[Query],
        start: datetime,
        end: datetime,
        period: int,
        *,
        deadline: float | None = None,
    ) -> dict[str, Series]:
        answers: dict[str, Series] = {query.id: {} for query in queries}
        first = self.end - len(self.history) * self.period
        for query in queries:
            name, _, part = self.arms.of(query)
            for offset, counts in enumerate(self.history):
                moment = first + offset * self.period
                if moment >= start and name in counts:
                    answers[query.id][moment] = float(counts[name][part])
        return answers


def _checked(counts: WindowCounts, window: Window, arms: _Arms) -> WindowCounts:
    for name, by_arm in counts.items():
        if name not in arms.counted:
            raise ReplayError(f"window {window.start.isoformat()}: unknown metric {name!r}")
        _check_pairs(name, by_arm, window)
    return counts


def _check_pairs(name: str, by_arm: Mapping[str, Any], window: Window) -> None:
    for arm, pair in by_arm.items():
        if arm == "segments" and "=" not in name:  # one level: segments have no segments
            if not isinstance(pair, Mapping):
                raise ReplayError(f"{name}: segments must map 'dimension=value' to arms")
            for segment, inner in pair.items():
                if not isinstance(inner, Mapping) or "=" not in str(segment):
                    raise ReplayError(
                        f"{name}: segment {segment!r} must be 'dimension=value' with arms"
                    )
                _check_pairs(f"{name} {segment}", inner, window)
            continue
        if arm not in ("canary", "baseline"):
            raise ReplayError(f"{name}: unknown arm {arm!r} (canary or baseline)")
        try:
            numerator, denominator = (float(x) for x in pair)
        except (TypeError, ValueError):
            raise ReplayError(
                f"{name} {arm} at {window.start.isoformat()}: {pair!r} is not a "
                "(numerator, denominator) pair of numbers"
            ) from None
        if not 0 <= numerator <= denominator:
            raise ReplayError(
                f"{name} {arm} at {window.start.isoformat()}: numerator {numerator} "
                f"must be between 0 and its denominator {denominator}"
            )
