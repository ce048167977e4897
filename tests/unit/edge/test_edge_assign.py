"""Tests for edge.assign: sticky, monotonic, salted bucketing and variant choice."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge import assign


def _variants(canary_weight: int) -> list[dict[str, Any]]:
    return [
        {"name": "canary", "weight": canary_weight},
        {"name": "stable", "weight": assign.BUCKETS - canary_weight},
    ]


def _variant_name(salt: str, key: str, canary_weight: int) -> str:
    chosen = assign.choose_variant(_variants(canary_weight), assign.bucket_of(salt, key))
    assert chosen is not None
    return str(chosen["name"])


@given(salt=st.text(), key=st.text())
def test_bucket_is_in_range_and_deterministic(salt: str, key: str) -> None:
    """GIVEN any salt and key WHEN bucketing twice THEN the same bucket in [0, 10000) results."""
    bucket = assign.bucket_of(salt, key)

    assert 0 <= bucket < assign.BUCKETS
    assert assign.bucket_of(salt, key) == bucket


def test_assignment_is_sticky_across_calls() -> None:
    """GIVEN the same viewer and weight WHEN assigned many times THEN the variant never changes."""
    for user in range(200):
        key = f"198.51.100.{user}|agent"
        first = _variant_name("r-1", key, 2500)
        assert all(_variant_name("r-1", key, 2500) == first for _ in range(5))


@given(
    key=st.text(min_size=1),
    salt=st.text(),
    weights=st.tuples(st.integers(0, 10_000), st.integers(0, 10_000)).map(sorted),
)
def test_raising_the_canary_weight_never_moves_a_canary_viewer_back(
    key: str, salt: str, weights: list[int]
) -> None:
    """GIVEN a viewer in canary at weight w WHEN the weight rises to w' >= w THEN still canary."""
    low, high = weights
    if _variant_name(salt, key, low) == "canary":
        assert _variant_name(salt, key, high) == "canary"


@pytest.mark.parametrize("canary_weight", [100, 500, 2500, 5000])
def test_canary_share_matches_the_weight(canary_weight: int) -> None:
    """GIVEN 20k synthetic viewers WHEN assigned THEN the canary share is within 5 binomial sd."""
    users = 20_000
    p = canary_weight / assign.BUCKETS
    in_canary = sum(
        _variant_name("r-dist", f"10.{u // 256}.{u % 256}.1|ua", canary_weight) == "canary"
        for u in range(users)
    )

    # 5 standard deviations: a fair hash fails this about once in 1.7 million runs.
    assert abs(in_canary - users * p) <= 5 * math.sqrt(users * p * (1 - p))


def test_salt_reshuffles_the_cohort() -> None:
    """GIVEN two rollouts' salts WHEN bucketing the same viewers THEN the cohorts differ."""
    keys = [f"user-{i}" for i in range(2_000)]
    first = {k for k in keys if assign.bucket_of("r-a", k) < 1000}
    second = {k for k in keys if assign.bucket_of("r-b", k) < 1000}

    # Independent 10% cohorts overlap by ~1% of viewers; the same cohort would overlap by 10%.
    assert len(first & second) < 0.03 * len(keys)


@pytest.mark.parametrize(
    ("bucket", "expected"), [(0, "canary"), (999, "canary"), (1000, "stable"), (9999, "stable")]
)
def test_ranges_are_cumulative_with_canary_first(bucket: int, expected: str) -> None:
    """GIVEN canary 1000 then stable 9000 WHEN choosing at range edges THEN ranges are half-open."""
    chosen = assign.choose_variant(_variants(1000), bucket)

    assert chosen is not None and chosen["name"] == expected


@pytest.mark.parametrize(
    "variants",
    [
        [{"name": "canary", "weight": 1000}],
        [{"name": "canary", "weight": "1000"}, {"name": "stable", "weight": 9000}],
        [{"name": "canary", "weight": True}, {"name": "stable", "weight": 9999}],
        [{"name": "canary", "weight": -5}, {"name": "stable", "weight": 10_005}],
        [{"name": "canary"}],
        ["canary"],
        "canary",
        None,
    ],
)
def test_uncovered_or_malformed_weights_choose_nothing(variants: Any) -> None:
    """GIVEN weights that miss the bucket or are malformed WHEN choosing THEN None results."""
    assert assign.choose_variant(variants, 5000) is None


def test_viewer_key_is_ip_and_user_agent() -> None:
    """GIVEN a request with clientIp and User-Agent WHEN keying THEN they are joined by a bar."""
    request = {
        "clientIp": "203.0.113.7",
        "headers": {"user-agent": [{"key": "User-Agent", "value": "curl/8.5"}]},
    }

    assert assign.viewer_key(request) == "203.0.113.7|curl/8.5"
    assert assign.viewer_key({"clientIp": "203.0.113.7", "headers": {}}) == "203.0.113.7|"


# -- distribution properties -------------------------------------------------------------


def _chi_square_critical(df: int, quantile: float) -> float:
    """Upper ``quantile`` of the chi-square distribution, by Wilson-Hilferty.

    The cube-root normal approximation is within 0.1% of the exact quantile for df >= 100
    (stdlib only, no scipy); both uses below have df of 99 and 9999.
    """
    from statistics import NormalDist

    z = NormalDist().inv_cdf(quantile)
    return float(df * (1 - 2 / (9 * df) + z * math.sqrt(2 / (9 * df))) ** 3)


def _keys(count: int) -> list[str]:
    # Fixed, viewer-shaped keys: the test is deterministic, so it passes or fails every run.
    return [f"198.{18 + i // 65536}.{i // 256 % 256}.{i % 256}|Mozilla/5.0" for i in range(count)]


@pytest.mark.parametrize("bins", [assign.BUCKETS, 100])
def test_buckets_are_uniform_by_chi_square(bins: int) -> None:
    """GIVEN 100k viewer keys and one salt WHEN bucketed THEN the counts per bucket (and per
    1% band, which catches coarse skew with more power) pass a chi-square goodness-of-fit
    test at the 99.9% quantile: a fair hash fails it once in a thousand salts."""
    keys = _keys(100_000)
    counts = [0] * bins
    for key in keys:
        counts[assign.bucket_of("r-uniform", key) * bins // assign.BUCKETS] += 1
    expected = len(keys) / bins

    statistic = sum((c - expected) ** 2 / expected for c in counts)

    assert statistic < _chi_square_critical(bins - 1, 0.999)


def test_chi_square_critical_value_matches_known_quantiles() -> None:
    """GIVEN the approximation WHEN compared with tabulated quantiles THEN within 0.1%."""
    # Tabulated upper quantiles (NIST/SEMATECH e-Handbook, table 1.3.6.7.4): df=100, p=0.999
    # is 149.449; df=100, p=0.95 is 124.342.
    assert _chi_square_critical(100, 0.999) == pytest.approx(149.449, rel=1e-3)
    assert _chi_square_critical(100, 0.95) == pytest.approx(124.342, rel=1e-3)


def test_known_buckets_never_change() -> None:
    """GIVEN fixed key and salt pairs WHEN bucketed THEN the published values: a change to
    the hash would silently move every viewer to another cohort on the next deploy."""
    assert assign.bucket_of("r-2024-06-01", "203.0.113.7|Mozilla/5.0") == 2139
    assert assign.bucket_of("", "") == 4368
    assert assign.bucket_of("salt", "c:abc") == 4517


@given(key=st.text(max_size=64), salt=st.text(max_size=32))
def test_bucket_is_a_pure_function_of_key_and_salt(key: str, salt: str) -> None:
    """GIVEN any key and salt WHEN bucketed in a fresh computation THEN the same bucket."""
    assert assign.bucket_of(salt, key) == assign.bucket_of(str(salt), str(key))
    assert 0 <= assign.bucket_of(salt, key) < assign.BUCKETS


@given(salts=st.lists(st.text(min_size=1, max_size=16), min_size=2, max_size=2, unique=True))
def test_different_salts_give_different_buckets(salts: list[str]) -> None:
    """GIVEN two different salts WHEN 200 viewers are bucketed under each THEN the bucket
    sequences differ (identical sequences would mean the same cohort every rollout)."""
    keys = _keys(200)
    first = [assign.bucket_of(salts[0], k) for k in keys]
    second = [assign.bucket_of(salts[1], k) for k in keys]

    # Equal by chance with probability 10000^-200; more than 5 equal means correlation.
    assert sum(a == b for a, b in zip(first, second, strict=True)) <= 5


def test_salted_cohorts_are_independent() -> None:
    """GIVEN 10% cohorts under two salts WHEN intersected THEN ~1% overlap (independent),
    within 5 binomial standard deviations, not the 10% a shared cohort would give."""
    keys = _keys(20_000)
    first = {k for k in keys if assign.bucket_of("r-a", k) < 1000}
    second = {k for k in keys if assign.bucket_of("r-b", k) < 1000}
    p = 0.1 * 0.1

    overlap = len(first & second)

    assert abs(overlap - len(keys) * p) <= 5 * math.sqrt(len(keys) * p * (1 - p))
