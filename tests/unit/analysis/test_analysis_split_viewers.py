"""The served-split check counting viewers (``analysis.split.viewers``) instead of requests:
validation, measuring, preflight's prior, and a replay where one heavy client skews the
request share that the viewer share does not follow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.analysis import Counts
from orchestrator.analysis.evaluate import preflight, stable_noise
from orchestrator.analysis.providers.base import BaseProvider, Measurement, Query, Series, measure
from orchestrator.analysis.providers.fake import FakeProvider
from orchestrator.analysis.replay import ReplayError, Window, replay
from orchestrator.analysis.split import served_split
from orchestrator.models import Rollout, RolloutPlan
from orchestrator.models.analysis import SPLIT_VIEWERS, Noise
from tests.unit.analysis.analysis_plans import in_first_stage

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def _plan(split: dict[str, Any] | None = None, **analysis: Any) -> RolloutPlan:
    return RolloutPlan.model_validate(
        {
            "target": {"host": "shop.example.com"},
            "stable": {"name": "stable", "version": "v1"},
            "canary": {"name": "canary", "version": "v2"},
            "stages": [{"weight": w, "bake": 600, "interval": 60} for w in (10, 50)],
            "analysis": {
                "namespace": "N",
                "dimensions": {"Variant": "{variant}"},
                "requests_metric": "Requests",
                "errors_metric": "Errors",
                "split": {"viewers": "Viewers"} if split is None else split,
            }
            | analysis,
        }
    )


def _rollout(plan: RolloutPlan) -> Rollout:
    return in_first_stage(plan, T0)


def _series(per_period: int, share: float, side: str) -> dict[datetime, Counts]:
    canary = round(per_period * share)
    count = canary if side == "canary" else per_period - canary
    return {T0 + timedelta(minutes=m): Counts(0, count) for m in range(6)}


def _measured(requests_share: float, viewers_share: float) -> dict[tuple[str, str], Measurement]:
    found = {}
    for variant, side in (("canary", "canary"), ("stable", "baseline")):
        for name, total, share in (
            ("error-rate", 10_000, requests_share),
            (SPLIT_VIEWERS, 2_000, viewers_share),
        ):
            series = _series(total, share, side)
            counts = Counts(0, sum(c.total for c in series.values()))
            found[name, variant] = Measurement(counts=counts, series=series)
    return found


# -- the plan -------------------------------------------------------------------------------


def test_naming_both_a_split_metric_and_viewers_is_refused() -> None:
    """GIVEN split.metric and split.viewers WHEN validated THEN refused naming viewers."""
    with pytest.raises(ValidationError, match=r"analysis\.split\.viewers: .*not both"):
        _plan({"metric": "error-rate", "viewers": "Viewers"})


def test_a_metric_named_like_the_viewer_counts_is_refused() -> None:
    """GIVEN a metric named split-viewers WHEN validated THEN refused: the name is reserved."""
    metric = {"name": SPLIT_VIEWERS, "numerator": "E", "denominator": "R"}
    with pytest.raises(ValidationError, match=r"analysis\.metrics: the name 'split-viewers'"):
        _plan({}, requests_metric=None, errors_metric=None, metrics=[metric])


@pytest.mark.parametrize("bad", ["", "x" * 2001])
def test_a_viewers_query_out_of_bounds_is_refused(bad: str) -> None:
    """GIVEN an empty or over-long viewers query WHEN validated THEN the field is named."""
    with pytest.raises(ValidationError) as refused:
        _plan({"viewers": bad})
    assert any(e["loc"][-2:] == ("split", "viewers") for e in refused.value.errors())


# -- measuring ------------------------------------------------------------------------------


def test_measure_counts_each_variants_viewers_beside_the_metrics() -> None:
    """GIVEN a plan counting viewers WHEN measured THEN each variant's viewers are counted
    from their one query, in a batch after the ratio metrics' (its failure is its own)."""
    plan = _plan()
    rollout = _rollout(plan)
    provider = FakeProvider(
        values={
            ("Requests", "canary"): 1000.0,
            ("Errors", "canary"): 5.0,
            ("Requests", "stable"): 9000.0,
            ("Errors", "stable"): 40.0,
            ("Viewers", "canary"): 120.0,
            ("Viewers", "stable"): 1100.0,
        }
    )
    from orchestrator.analysis.evaluate import contexts

    found = measure(provider, plan.analysis, contexts(rollout), T0, T0 + timedelta(minutes=5))

    assert found[SPLIT_VIEWERS, "canary"].counts == Counts(0, 120)
    assert found[SPLIT_VIEWERS, "stable"].counts == Counts(0, 1100)
    assert found["error-rate", "canary"].counts == Counts(5, 1000)
    assert len(provider.calls) == 2  # the metrics' batch, then the viewer counts'
    assert all(q.text != "Viewers" for q in provider.calls[0])
    viewers = provider.calls[1]
    assert [q.context.variant for q in viewers] == ["canary", "stable"]


def test_no_viewer_data_is_missing_not_zero() -> None:
    """GIVEN a viewers query with no data WHEN measured THEN missing, naming the query."""
    plan = _plan()
    from orchestrator.analysis.evaluate import contexts

    found = measure(FakeProvider(), plan.analysis, contexts(_rollout(plan)), T0, T0)
    assert found[SPLIT_VIEWERS, "canary"].missing == "no data for 'Viewers'"


def test_a_plan_counting_requests_asks_for_no_viewers() -> None:
    """GIVEN no split.viewers WHEN measured THEN no viewer query is sent at all."""
    plan = _plan({})
    provider = FakeProvider()
    from orchestrator.analysis.evaluate import contexts

    found = measure(provider, plan.analysis, contexts(_rollout(plan)), T0, T0)
    assert not any(name == SPLIT_VIEWERS for name, _ in found)
    assert all(q.text != "Viewers" for batch in provider.calls for q in batch)


# -- the check ------------------------------------------------------------------------------


def test_the_viewer_share_is_judged_not_the_request_share() -> None:
    """GIVEN a heavy client on the canary (requests 20% at a 10% weight) while viewers are
    10% WHEN checked THEN ok, counted in viewers; and the other way round a mismatch."""
    plan = _plan()

    skewed = served_split(_rollout(plan), _measured(requests_share=0.2, viewers_share=0.1))
    assert skewed is not None and skewed.outcome == "ok" and skewed.unit == "viewers"
    assert skewed.weight == 0.1
    assert "of 12000 viewers" in skewed.reason

    served_2x = served_split(_rollout(plan), _measured(requests_share=0.1, viewers_share=0.2))
    assert served_2x is not None and served_2x.outcome == "mismatch"
    assert "canary served 20.00% of 12000 viewers" in served_2x.reason
    assert served_2x.as_dict()["unit"] == "viewers"


def test_without_viewers_the_request_share_is_judged() -> None:
    """GIVEN the same counts and a plan without split.viewers THEN requests are judged."""
    plan = _plan({})
    check = served_split(_rollout(plan), _measured(requests_share=0.2, viewers_share=0.1))
    assert check is not None and check.outcome == "mismatch" and check.unit == "requests"


def test_unmeasured_viewers_leave_the_split_unknown_naming_the_query() -> None:
    """GIVEN the viewer counts failed WHEN checked THEN unknown, naming the viewers query."""
    plan = _plan()
    measured = _measured(0.1, 0.1)
    measured[SPLIT_VIEWERS, "canary"] = Measurement(error="throttled")
    check = served_split(_rollout(plan), measured)
    assert check is not None and check.outcome == "unknown"
    assert check.reason == "split not known: Viewers: throttled"


# -- preflight --------------------------------------------------------------------------------


class _History(BaseProvider):
    """Per-minute series over the last hour; viewers bursty by ``swing``."""

    def __init__(self, swing: int) -> None:
        self.swing = swing

    def fetch(self, queries: Any, start: Any, end: Any, *, deadline: Any = None) -> Any:
        return {q.id: 1.0 for q in queries}

    def fetch_series(
        self,
        queries: Any,
        start: datetime,
        end: datetime,
        period: int,
        *,
        deadline: float | None = None,
    ) -> dict[str, Series]:
        minutes = [start + timedelta(minutes=m) for m in range(int((end - start).seconds / 60))]
        answers: dict[str, Series] = {}
        for query in queries:
            base = {"Requests": 10_000.0, "Errors": 50.0, "Viewers": 2_000.0}[query.text]
            swing = self.swing if query.text == "Viewers" else 0
            answers[query.id] = {
                m: base + (swing if i % 2 else -swing) for i, m in enumerate(minutes)
            }
        return answers


def test_preflight_measures_the_viewer_counts_burstiness_as_the_prior() -> None:
    """GIVEN a stable fleet whose viewers per minute swing by +-200 WHEN preflight reads
    its hour THEN the split's prior is their variance over mean, and the check uses it."""
    plan = _plan()
    rollout = _rollout(plan)
    noise = stable_noise(rollout, _History(swing=200), T0)

    prior = noise[SPLIT_VIEWERS]
    # successive differences of 400: variance 400²/2 = 80,000 over a mean of 2,000
    assert prior.requests_dispersion == pytest.approx(40.0, rel=0.05)
    assert prior.requests_per_minute == pytest.approx(2_000, rel=0.01)
    assert prior.rate is None  # no rate: the feasibility forecast leaves it out

    measured = _measured(0.1, 0.14)
    early = {
        key: Measurement(counts=m.counts, series=dict(list((m.series or {}).items())[:2]))
        for key, m in measured.items()
    }
    widened = served_split(rollout.model_copy(update={"noise": noise}), early)
    assert widened is not None and widened.dispersion == pytest.approx(40.0, rel=0.1)
    assert served_split(rollout, early).outcome == "unknown"  # type: ignore[union-attr]


def test_preflight_checks_the_viewers_query_too() -> None:
    """GIVEN a provider refusing the viewers query WHEN preflight runs THEN a problem."""

    class Refusing(FakeProvider):
        def check(self, queries: Any, now: datetime) -> list[str]:
            return [f"unknown metric {q.text}" for q in queries if q.text == "Viewers"]

    problems, _ = preflight(_rollout(_plan()), Refusing(), now=T0, sleep=lambda _: None)
    assert problems == ["unknown metric Viewers"]


# -- replay -----------------------------------------------------------------------------------


def _source(requests_over_weight: float, viewers_over_weight: float) -> Any:
    """Windows whose canary shares are the weight times these factors (at most 90%)."""

    def source(window: Window) -> dict[str, Any]:
        weight = window.weight / 100
        requests, viewers = 20_000, 4_000
        r = round(requests * min(0.9, requests_over_weight * weight))
        v = round(viewers * min(0.9, viewers_over_weight * weight))
        return {
            "error-rate": {
                "canary": (r // 200, r),
                "baseline": ((requests - r) // 200, requests - r),
            },
            SPLIT_VIEWERS: {"canary": (0, v), "baseline": (0, viewers - v)},
        }

    return source


def test_replay_promotes_when_only_a_heavy_client_skews_the_requests() -> None:
    """GIVEN a canary whose requests run at twice the weight (a heavy client) while its
    viewers match it WHEN replayed THEN promoted, with every look's split ok in viewers."""
    result = replay(_plan(), _source(requests_over_weight=2, viewers_over_weight=1))
    assert result.outcome == "PROMOTED", result.reason
    splits = [v["split"] for v in result.verdicts if "split" in v]
    assert splits and all(s["unit"] == "viewers" and s["outcome"] != "mismatch" for s in splits)


def test_replay_pauses_when_the_edge_serves_twice_the_viewers() -> None:
    """GIVEN twice the weight's viewers on the canary WHEN replayed THEN paused for it."""
    result = replay(_plan(), _source(requests_over_weight=1, viewers_over_weight=2))
    assert result.outcome == "PAUSED" and result.reason.startswith("split_mismatch:")
    assert "viewers" in result.reason


def test_replay_refuses_viewer_counts_for_a_plan_that_does_not_count_them() -> None:
    """GIVEN viewer counts from a source and a plan without split.viewers THEN refused."""
    with pytest.raises(ReplayError, match="unknown metric 'split-viewers'"):
        replay(_plan({}), _source(1, 1))


def test_a_query_id_of_the_viewer_counts_never_reads_as_a_metric() -> None:
    """The viewer counts' ids (sv<variant>_den) are apart from the metrics' (m<i>v<j>_...)."""
    from orchestrator.analysis.evaluate import contexts
    from orchestrator.analysis.providers.base import metric_queries, viewer_queries

    plan = _plan()
    context = contexts(_rollout(plan))["canary"]
    ids = {q.id for q in metric_queries(plan.analysis.judged_metrics()[0], context, "m0v0")}
    viewers: list[Query] = viewer_queries("Viewers", context, 0)
    assert ids.isdisjoint({q.id for q in viewers}) and viewers[0].id == "sv0_den"
    assert Noise().requests_dispersion is None


def test_the_dashboard_says_what_the_split_counted() -> None:
    """GIVEN looks whose split counted viewers, requests, or an unknown unit WHEN the
    dashboard's split view is built THEN each says viewers or requests (never anything else)."""
    from orchestrator.dashboard.views import split
    from orchestrator.models import AuditEvent

    def look(seq: int, unit: object) -> AuditEvent:
        found = {"weight": 0.1, "low": 0.075, "high": 0.125, "share": 0.1, "outcome": "ok"}
        verdict = {"split": found | ({} if unit is None else {"unit": unit})}
        return AuditEvent(
            rollout_id="r", seq=seq, at=T0, actor="a", kind="analysis", detail={"verdict": verdict}
        )

    units = [row["unit"] for row in split([look(1, "viewers"), look(2, None), look(3, "<b>")])]
    assert units == ["viewers", "requests", "requests"]


def test_returning_viewers_widen_the_viewer_share_by_the_periods_counted() -> None:
    """GIVEN ten periods of the same 2,000 viewers, 14% of them on the canary at a 10%
    weight (band up to 12.5%) WHEN checked in viewers THEN ok: the same viewers counted ten
    times are 2,000 draws, not 20,000 (the dispersion is the ten periods); counted in
    requests the very same counts are a mismatch; twice the weight is one in viewers too."""
    from orchestrator.analysis.split import check_split

    same = [(280, 1720)] * 10
    viewers = check_split(same, 0.1, 0.25, look=10, looks=10, unit="viewers")
    assert viewers.outcome == "ok" and viewers.dispersion == 10.0, viewers.reason
    assert "dispersion 10.0" in viewers.reason
    requests = check_split(same, 0.1, 0.25, look=10, looks=10, unit="requests")
    assert requests.outcome == "mismatch"
    doubled = check_split([(400, 1600)] * 10, 0.1, 0.25, look=10, looks=10, unit="viewers")
    assert doubled.outcome == "mismatch", doubled.reason
