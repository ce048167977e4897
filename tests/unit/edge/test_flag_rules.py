"""Flag-routed rules: the checks the edge and the route model share, and the edge's
fallbacks (no data, stale data, unknown flag, unmapped value, missing key, no SDK)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from edge import config, flags, rules, validate, viewer_request
from orchestrator.models import RouteRule

FLAG = {
    "key": "new-checkout",
    "version": 1,
    "on": True,
    "variations": [True, False],
    "offVariation": 1,
    "fallthrough": {"variation": 0},
    "salt": "s",
}


def _rule(**assignment: Any) -> dict[str, Any]:
    base = {
        "provider": "launchdarkly",
        "flag": "new-checkout",
        "context": {"kind": "user", "key_from": "cookie:ld_uid"},
        "variations": {"true": "canary", "false": "stable"},
        "fallback": "stable",
    }
    return {
        "host": "shop.example.com",
        "path_rule": "default",
        "salt": "",
        "variants": [
            {"name": "canary", "version": "v2", "weight": 0},
            {"name": "stable", "version": "v1", "weight": 10_000},
        ],
        "assignment": {**base, **assignment},
    }


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"flag": ""}, "assignment.flag: the flag key must not be empty"),
        ({"flag": "new checkout"}, "assignment.flag:"),
        ({"provider": "split"}, "assignment.provider:"),
        ({"fallback": "canry"}, "assignment.fallback: unknown variant 'canry'"),
        ({"variations": {"true": "beta"}}, "assignment.variations.true: unknown variant 'beta'"),
        ({"variations": {}}, "assignment.variations:"),
        ({"context": {"key_from": "cookie:"}}, "assignment.context.key_from:"),
        ({"context": {"key_from": "query:uid"}}, "assignment.context.key_from:"),
        ({"context": {"key_from": "header:Authorization"}}, "assignment.context.key_from:"),
        ({"context": {"key_from": "ip_ua", "when_missing": "x"}}, "when_missing"),
        ({"context": {"key_from": "ip_ua", "kind": "multi"}}, "assignment.context.kind:"),
        ({"extra": 1}, "assignment.extra: unknown field"),
    ],
)
def test_bad_assignments_are_refused_naming_the_field(change: dict[str, Any], named: str) -> None:
    """GIVEN a flag assignment with one bad field WHEN the edge checks it and the route
    model validates it THEN both refuse it, the edge naming the field."""
    item = _rule(**change)

    problem = validate.rule_problem(item)

    assert problem is not None and named in problem, problem
    with pytest.raises(ValidationError):
        RouteRule.model_validate(item)


def test_yaml_and_json_route_files_give_the_same_rule() -> None:
    """GIVEN the same flag-routed rule as YAML and as JSON WHEN validated THEN equal."""
    text_yaml = yaml.safe_dump(_rule())
    text_json = json.dumps(_rule())

    from_yaml = RouteRule.model_validate(yaml.safe_load(text_yaml))
    from_json = RouteRule.model_validate(yaml.safe_load(text_json))

    assert from_yaml == from_json
    assert from_yaml.flag_routed and from_yaml.assignment is not None
    assert from_yaml.assignment.variant_for(True) == "canary"
    assert validate.rule_problem(from_yaml.model_dump(mode="json", exclude_none=True)) is None


def test_a_rule_without_assignment_is_stored_as_before() -> None:
    """GIVEN a weighted rule WHEN dumped THEN it carries no assignment field at all."""
    item = _rule()
    del item["assignment"]

    dumped = RouteRule.model_validate(item).model_dump(mode="json", exclude_none=True)

    assert "assignment" not in dumped


def _items(flag: dict[str, Any] | None = FLAG) -> list[dict[str, Any]]:
    if flag is None:
        return []
    return [
        {
            "host": flags.FLAGS_PARTITION,
            "path_rule": f"flag:{flag['key']}",
            "data": json.dumps(flag),
        }
    ]


def _decide(
    flag_cache: flags.FlagCache,
    rule: dict[str, Any] | None = None,
    cookie: str | None = "u1",
    now: float = 0.0,
) -> str | None:
    request: dict[str, Any] = {
        "clientIp": "198.18.0.1",
        "uri": "/",
        "querystring": "",
        "headers": {"host": [{"value": "shop.example.com"}]},
    }
    if cookie is not None:
        request["headers"]["cookie"] = [{"value": f"ld_uid={cookie}"}]
    cache = rules.RuleCache(lambda host: [rule or _rule()], ttl_seconds=3600)
    decision = viewer_request.decide(
        request, config.EdgeConfig(), cache, now, flag_cache=flag_cache
    )
    return None if decision is None else decision.headers["x-edgeshift-variant"]


def test_the_flag_value_picks_the_variant() -> None:
    """GIVEN a flag serving true to everyone WHEN a viewer with the cookie asks THEN canary."""
    assert _decide(flags.FlagCache(lambda p: _items(), ttl_seconds=5)) == "canary"


@pytest.mark.parametrize(
    "items",
    [
        pytest.param(lambda p: [], id="no flag data"),
        pytest.param(lambda p: _items({**FLAG, "key": "other"}), id="unknown flag"),
        pytest.param(lambda p: _items({**FLAG, "variations": ["x", "y"]}), id="value not mapped"),
        pytest.param(lambda p: _items({**FLAG, "fallthrough": {"variation": 7}}), id="eval error"),
        pytest.param(lambda p: [{"path_rule": "flag:new-checkout", "data": "{"}], id="unreadable"),
    ],
)
def test_anything_missing_serves_the_fallback_and_logs(
    items: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN flag data that cannot decide WHEN a viewer asks THEN the fallback variant and
    a warning line, never an exception."""
    flags._last_logged.clear()

    assert _decide(flags.FlagCache(items, ttl_seconds=5)) == "stable"
    assert '"level": "warning"' in capsys.readouterr().out


def test_stale_flag_data_past_the_bound_serves_the_fallback() -> None:
    """GIVEN flag data read once WHEN the table fails for longer than max_stale_seconds THEN
    stale data is used within the bound and the fallback after it."""
    answers: list[Any] = [_items()]

    def query(partition: str) -> list[dict[str, Any]]:
        if not answers:
            raise OSError("table unreachable")
        return answers.pop()

    cache = flags.FlagCache(query, ttl_seconds=5, max_stale_seconds=60, retry_seconds=1)
    assert _decide(cache, now=0.0) == "canary"
    assert _decide(cache, now=30.0) == "canary"  # stale, within the bound
    assert _decide(cache, now=90.0) == "stable"  # past it


def test_a_viewer_without_the_key_gets_what_the_rule_says() -> None:
    """GIVEN no cookie WHEN when_missing is fallback THEN stable; WHEN ip_ua THEN the flag
    is evaluated (keyed by IP and User-Agent), here serving canary."""
    cache = flags.FlagCache(lambda p: _items(), ttl_seconds=5)
    ip_ua = _rule(context={"key_from": "cookie:ld_uid", "when_missing": "ip_ua"})

    assert _decide(cache, cookie=None) == "stable"
    assert _decide(cache, rule=ip_ua, cookie=None) == "canary"


def test_without_the_sdk_the_rule_serves_its_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """GIVEN a bundle without the SDK (edge.flag_sdk cannot import) WHEN a flag-routed
    request comes THEN the fallback, no exception."""
    import sys

    import edge

    monkeypatch.setitem(sys.modules, "edge.flag_sdk", None)  # import fails, as in that bundle
    monkeypatch.delattr(edge, "flag_sdk", raising=False)
    flags._last_logged.clear()

    assert _decide(flags.FlagCache(lambda p: _items(), ttl_seconds=5)) == "stable"


_WEIGHTED_ONLY = """
import json, sys
from edge import config, rules, viewer_request
rule = {"host": "h", "path_rule": "default", "salt": "s", "variants": [
    {"name": "canary", "version": "v2", "weight": 5000},
    {"name": "stable", "version": "v1", "weight": 5000}]}
request = {"clientIp": "1.2.3.4", "uri": "/", "querystring": "",
           "headers": {"host": [{"value": "h"}]}}
decision = viewer_request.decide(request, config.EdgeConfig(),
    rules.RuleCache(lambda h: [rule], ttl_seconds=5), 0.0)
loaded = sorted(m for m in sys.modules if m.startswith(("ldclient", "edge.flag")))
print(json.dumps({"routed": decision is not None, "loaded": loaded}))
"""


def test_weighted_rules_never_load_the_flag_modules() -> None:
    """GIVEN a fresh interpreter WHEN a weighted rule routes a request THEN neither
    edge.flags, edge.flag_sdk nor the SDK was imported: that path and its budgets are as
    before flags existed."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    out = subprocess.run(
        [sys.executable, "-c", _WEIGHTED_ONLY], cwd=root, capture_output=True, text=True, check=True
    ).stdout

    assert json.loads(out) == {"routed": True, "loaded": []}


def test_the_flag_read_shares_the_requests_table_deadline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN a request that began longer ago than the deadline (its route read took it
    all) WHEN its flag data must be read THEN the read is given up at once, without a call,
    and the rule falls back."""
    import time

    from edge import dynamo

    calls: list[str] = []
    monkeypatch.setattr(dynamo, "_call", lambda *a, **k: calls.append("call") or {"Items": []})
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    cache = flags.FlagCache(ttl_seconds=5, deadline_seconds=0.25)
    flags._last_logged.clear()

    assert _decide(cache, now=time.monotonic() - 1.0) == "stable"
    assert calls == []
    fresh = flags.FlagCache(ttl_seconds=5, deadline_seconds=0.25)
    assert _decide(fresh, now=time.monotonic()) == "stable"  # read, found no flags
    assert calls == ["call"]


@pytest.mark.parametrize(
    "junk",
    [
        pytest.param({"path_rule": "flag:other", "data": json.dumps({"key": "other"})}, id="flag"),
        pytest.param(
            {"path_rule": "segment:s", "data": json.dumps({"key": "s", "rules": 5})}, id="segment"
        ),
    ],
)
def test_one_undecodable_item_does_not_take_the_other_flags_down(
    junk: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    """GIVEN a good flag beside an item the SDK cannot decode (a flag without its version, a
    segment whose rules are a number) WHEN a viewer asks for the good flag's rule THEN the
    good flag decides (canary), and the bad item is named in a warning line."""
    flags._last_logged.clear()
    cache = flags.FlagCache(lambda p: [*_items(), junk], ttl_seconds=5)

    assert _decide(cache) == "canary"
    assert junk["path_rule"].partition(":")[2] in capsys.readouterr().out


def test_a_rule_whose_flag_the_sdk_rejected_falls_back_naming_why(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """GIVEN the rule's own flag undecodable (rules is a number) WHEN a viewer asks THEN the
    fallback, and the warning carries the SDK's reason."""
    flags._last_logged.clear()
    cache = flags.FlagCache(lambda p: _items({**FLAG, "rules": 5}), ttl_seconds=5)

    assert _decide(cache) == "stable"
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    fallback = [line for line in lines if line["message"] == "flag-routed rule served its fallback"]
    assert len(fallback) == 1
    assert '"rules"' in fallback[0]["error"]


def test_changed_flag_data_is_evaluated_after_the_next_read() -> None:
    """GIVEN flag data serving true WHEN a sync turns the flag off (version bump) and the
    cache reads again after its TTL THEN the next request is evaluated on the new data;
    reverting brings the first value back (no request sees another's data)."""
    answers = [_items(), _items({**FLAG, "version": 2, "on": False}), _items()]
    cache = flags.FlagCache(lambda p: answers[0], ttl_seconds=5)

    assert _decide(cache, now=0.0) == "canary"
    answers.pop(0)
    assert _decide(cache, now=1.0) == "canary"  # within the TTL: the data read at 0
    assert _decide(cache, now=10.0) == "stable"
    answers.pop(0)
    assert _decide(cache, now=20.0) == "canary"


def test_unquoted_yaml_booleans_as_variations_keys_read_as_the_flag_values() -> None:
    """GIVEN a YAML route file writing ``variations: {true: canary, false: stable}`` (YAML
    reads the keys as booleans) WHEN it is read as a rule THEN the keys are "true" and
    "false", as when quoted."""
    document = yaml.safe_load(
        """
host: shop.example.com
variants:
  - {name: canary, version: v2, weight: 0}
  - {name: stable, version: v1, weight: 10000}
assignment:
  provider: launchdarkly
  flag: new-checkout
  context: {key_from: "cookie:ld_uid"}
  variations: {true: canary, false: stable, 3: canary}
  fallback: stable
"""
    )

    rule = RouteRule.model_validate(document)

    assert rule.assignment is not None
    assert rule.assignment.variations == {"true": "canary", "false": "stable", "3": "canary"}


def test_unchanged_flag_data_is_not_decoded_again_at_each_read() -> None:
    """GIVEN flag data read once WHEN the TTL passes and the table returns the same items
    THEN the cache keeps the same snapshot (nothing decoded again); WHEN an item changes
    THEN a new snapshot holds it."""
    answers = [_items(), _items(), _items({**FLAG, "version": 2, "on": False})]
    reads: list[int] = []

    def query(partition: str) -> list[dict[str, Any]]:
        reads.append(1)
        return answers.pop(0)

    cache = flags.FlagCache(query, ttl_seconds=5)
    first = cache.snapshot(0.0)
    again = cache.snapshot(10.0)
    changed = cache.snapshot(20.0)

    assert len(reads) == 3
    assert first is not None and again is first
    assert changed is not None and changed is not first
    assert changed.flags["new-checkout"]["on"] is False
