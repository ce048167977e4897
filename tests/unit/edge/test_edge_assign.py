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
