"""Junk where a flag assignment, a viewer's key or the flag data should be: the checks
answer with a reason instead of raising (tested under the edge's catch-all, not through
it), and a flag-routed request is always served a variant of the rule."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edge import flags, validate

junk = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
NAMES = ["canary", "stable"]
VALID = {
    "provider": "launchdarkly",
    "flag": "f",
    "context": {"key_from": "cookie:ld_uid"},
    "variations": {"true": "canary"},
    "fallback": "stable",
}


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(sorted(VALID)), value=junk)
def test_a_junk_assignment_field_gets_a_reason_not_an_exception(field: str, value: Any) -> None:
    """GIVEN one assignment field replaced by junk WHEN checked (below the catch-all) THEN a
    string naming a field, or None when the junk happens to be valid."""
    problem = validate.assignment_problem({**VALID, field: value}, NAMES)

    assert problem is None or (isinstance(problem, str) and ":" in problem)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(headers=junk, client_ip=junk)
def test_any_request_shape_gives_a_key_or_none(headers: Any, client_ip: Any) -> None:
    """GIVEN junk headers and client IP WHEN the context key is read THEN a string or None."""
    request = {"headers": headers, "clientIp": client_ip}
    for key_from in ("cookie:ld_uid", "header:X-User-Id", "ip_ua"):
        for when_missing in ("fallback", "ip_ua"):
            context = {"key_from": key_from, "when_missing": when_missing}
            key = flags.context_key(request, context)

            assert key is None or isinstance(key, str)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(data=junk, name=st.text(max_size=12))
def test_junk_flag_data_serves_a_variant_of_the_rule(data: Any, name: str) -> None:
    """GIVEN a flag item holding junk JSON WHEN a viewer is routed THEN one of the rule's
    variants, never an exception."""
    items = [{"path_rule": "flag:f", "data": json.dumps(data)}, {"path_rule": name, "data": "{"}]
    rule = {
        "path_rule": "default",
        "variants": [{"name": n, "weight": 5000} for n in NAMES],
        "assignment": VALID,
    }
    request = {"clientIp": "1.2.3.4", "headers": {"cookie": [{"value": "ld_uid=u1"}]}}

    variant = flags.choose(rule, request, flags.FlagCache(lambda p: items, ttl_seconds=5), 0.0)

    assert variant is not None and variant["name"] in NAMES
