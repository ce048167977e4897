"""Tests for the local stack's segments: viewer mix, per-segment tallies and their publishing,
origins that fail one segment, and the metrics feeder's segment mix."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from edge import segments
from orchestrator.local import traffic
from orchestrator.local.datadog import PointStore
from orchestrator.local.feeder import MetricsFeeder, constant
from orchestrator.local.origins import DemoOrigin

IE = "browser=ie-11;device=desktop;country=us"
CHROME = "browser=chrome-131;device=mobile;country=de"


def _shares(labels: list[str]) -> dict[str, float]:
    counts = Counter(labels)
    return {name: count / len(labels) for name, count in counts.items()}


def test_population_has_realistic_browsers_devices_and_countries() -> None:
    """GIVEN the default population WHEN labelled by the edge THEN the browser, device and
    country shares are those of a consumer site, IE 11 about 1% of viewers."""
    viewers = traffic.population(20_000)
    labels = [segments.classify(v.user_agent) for v in viewers]
    family = _shares([browser.split("-")[0] for browser, _ in labels])
    device = _shares([device for _, device in labels])
    country = _shares([v.country for v in viewers])

    assert 0.60 < family["chrome"] < 0.68
    assert 0.16 < family["safari"] < 0.22
    assert 0.04 < family["edge"] < 0.06
    assert 0.007 < _shares([b for b, _ in labels])["ie-11"] < 0.013
    assert 0.51 < device["mobile"] < 0.59 and 0.39 < device["desktop"] < 0.47
    assert 0.01 < device["tablet"] < 0.03
    assert 0.28 < country["US"] < 0.36 and len(country) >= 20


def test_population_is_deterministic_from_the_seed() -> None:
    """GIVEN a seed WHEN the population is built twice THEN it is the same; another seed
    gives other viewers."""
    assert traffic.population(500, seed=3) == traffic.population(500, seed=3)
    assert traffic.population(500, seed=3) != traffic.population(500, seed=4)
    assert len({v.ip for v in traffic.population(500)}) == 500


def _tally() -> traffic.Tally:
    tally = traffic.Tally()
    for _ in range(90):
        tally.add("canary", False, CHROME)
    for _ in range(10):
        tally.add("canary", True, IE)
    tally.add("canary", True)  # no segment: the edge answered nothing, say
    for _ in range(50):
        tally.add("stable", False, IE)
    return tally


def test_tally_keeps_the_totals_and_counts_each_segment_value() -> None:
    """GIVEN requests with and without a segment WHEN tallied THEN the totals count them all
    and each dimension's values add up to the labelled ones."""
    tally = _tally()

    assert tally.requests == {"canary": 101, "stable": 50}
    assert tally.errors == {"canary": 11}
    assert tally.by_dimension("canary", "browser") == {"chrome-131": (90, 0), "ie-11": (10, 10)}
    assert tally.by_dimension("canary", "country") == {"de": (90, 0), "us": (10, 10)}
    assert tally.by_dimension("stable", "device") == {"desktop": (50, 0)}


def test_take_hands_over_the_counts_and_resets() -> None:
    """GIVEN a tally WHEN taken THEN the copy holds the counts and the tally is empty."""
    tally = _tally()

    taken = tally.take()

    assert taken.segment_requests["canary", IE] == 10
    assert not tally.requests and not tally.segment_requests


def test_cloudwatch_data_has_totals_and_one_dimension_per_segment_metric() -> None:
    """GIVEN a tally WHEN turned into MetricData THEN {Host, Variant} totals are unchanged
    and each segment value is published under {Host, Variant, <dimension>}."""
    data = traffic.tally_data("h", _tally(), 0.0)

    def value(name: str, **dims: str) -> float:
        wanted = {"Host": "h", **dims}
        (found,) = [
            d["Value"]
            for d in data
            if d["MetricName"] == name
            and {x["Name"]: x["Value"] for x in d["Dimensions"]} == wanted
        ]
        return float(found)

    assert value("Requests", Variant="canary") == 101
    assert value("Errors", Variant="canary") == 11
    assert value("Requests", Variant="canary", browser="ie-11") == 10
    assert value("Errors", Variant="canary", browser="ie-11") == 10
    assert value("Requests", Variant="stable", country="us") == 50
    assert value("Requests", Variant="canary", device="mobile") == 90


def test_batches_stay_within_put_metric_data_limits() -> None:
    """GIVEN more data than one call takes WHEN batched THEN no batch holds over 1,000
    metrics or about 1 MB, and nothing is lost or reordered."""
    data = [
        datum
        for n in range(1700)
        for datum in traffic.count_data("h", "canary", n, 0, 0.0, segment=("browser", f"b-{n}"))
    ]

    runs = list(traffic.batches(data))

    assert [d for run in runs for d in run] == data
    assert all(len(run) <= 1000 for run in runs)
    assert all(sum(len(repr(d)) + 400 for d in run) < 1_000_000 for run in runs)
    assert len(runs) == 4


def test_put_counts_makes_one_call_per_batch() -> None:
    """GIVEN 2,500 metrics WHEN published THEN three calls carry them."""
    calls: list[int] = []

    class CloudWatch:
        def put_metric_data(self, Namespace: str, MetricData: list[Any]) -> None:
            assert Namespace == traffic.NAMESPACE
            calls.append(len(MetricData))

    data = traffic.count_data("h", "canary", 1, 0, 0.0) * 1250
    assert traffic.put_counts(CloudWatch(), data) == 3
    assert sum(calls) == 2500


def test_datadog_points_sum_back_to_the_totals_and_group_by_segment() -> None:
    """GIVEN a tally WHEN its points go to the local Datadog THEN the variant's query sums
    to the totals and ``by {browser}`` splits them by browser."""
    store = PointStore()
    traffic.datadog_points(store, "h", _tally(), 100)
    scope = {"host:h", "variant:canary"}

    total = store.series(traffic.DATADOG_REQUESTS, scope, 0, 200)
    errors = store.series(traffic.DATADOG_ERRORS, scope, 0, 200)
    by_browser = store.groups(traffic.DATADOG_ERRORS, scope, "browser", 0, 200)

    assert total == {100: 101.0} and errors == {100: 11.0}
    assert by_browser[("browser:ie-11",)] == {100: 10.0}
    assert by_browser[("browser:chrome-131",)] == {100: 0.0}


def test_demo_origin_fails_only_the_configured_segment() -> None:
    """GIVEN an origin failing IE 11 only WHEN asked for the rate of each segment THEN IE 11
    gets it and others the origin's own rate; malformed keys are refused."""
    origin = DemoOrigin("v2", 0.01, segment_errors={"browser=ie-11": 1.0}).start()
    try:
        assert origin.error_rate_for(IE) == 1.0
        assert origin.error_rate_for(CHROME) == 0.01
        assert origin.error_rate_for(None) == 0.01
        assert all(origin.fails(IE) for _ in range(50))
    finally:
        origin.stop()
    for bad in ({"ie-11": 1.0}, {"browser=ie-11": 1.5}, {"browser=a;device=b": 0.5}):
        with pytest.raises(ValueError):
            DemoOrigin("v2", 0.0, segment_errors=bad)


def test_segment_mix_is_the_population_labelled_by_the_edge() -> None:
    """GIVEN the default population WHEN mixed THEN the shares add to 1 and every label is
    one the edge writes, with real countries."""
    mix = traffic.segment_mix()

    assert sum(share for share, _ in mix) == pytest.approx(1.0)
    assert all(segments.is_valid(label) for _, label in mix)
    assert not any(label.endswith("country=xx") for _, label in mix)


def test_feeder_spreads_requests_over_the_mix_and_breaks_one_segment() -> None:
    """GIVEN a feeder with a segment mix and IE 11 broken on the canary WHEN one tick is
    drawn THEN the totals keep the rate, IE 11 canary requests all fail and stable's do not."""
    feeder = MetricsFeeder(
        store=None,  # type: ignore[arg-type]
        cloudwatch=None,
        host="h",
        canary_errors=constant(0.0),
        stable_errors=constant(0.0),
        rate=20_000,
        tick=1.0,
        segments=[(0.9, CHROME), (0.1, IE)],
        segment_canary_errors={"browser=ie-11": constant(1.0)},
    )

    tally = feeder.tick_tally({"canary": 5000, "stable": 5000}, random.Random(1))

    assert tally.requests == {"canary": 10_000, "stable": 10_000}
    ie_canary = tally.by_dimension("canary", "browser")["ie-11"]
    assert ie_canary[0] == ie_canary[1] and 800 < ie_canary[0] < 1200
    assert tally.by_dimension("stable", "browser")["ie-11"][1] == 0
    assert tally.errors["canary"] == ie_canary[1]


def test_feeder_without_a_mix_publishes_only_totals() -> None:
    """GIVEN a feeder without segments WHEN a tick is drawn THEN only {Host, Variant} data."""
    feeder = MetricsFeeder(
        store=None,  # type: ignore[arg-type]
        cloudwatch=None,
        host="h",
        canary_errors=constant(0.1),
    )

    data = feeder.tick_data({"canary": 1000, "stable": 9000}, random.Random(1), 0.0)

    assert {len(d["Dimensions"]) for d in data} == {2}
    assert len(data) == 4
