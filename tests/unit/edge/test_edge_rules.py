"""Tests for edge.rules: validation, match precedence, URI templates and the TTL cache."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from edge import rules

HOST = "demo.example.com"
RouteItem = Callable[..., dict[str, Any]]


class FakeTable:
    """A query function that counts calls and can be told to fail."""

    def __init__(self, items: dict[str, list[dict[str, Any]]]) -> None:
        self.items = items
        self.calls: list[str] = []
        self.failing = False

    def __call__(self, host: str) -> list[dict[str, Any]]:
        self.calls.append(host)
        if self.failing:
            raise TimeoutError("table unreachable")
        return self.items.get(host, [])


def _rule(path_rule: str) -> dict[str, Any]:
    return {"path_rule": path_rule, "salt": "s", "variants": [{"name": path_rule, "weight": 1}]}


PRECEDENCE = [
    _rule("default"),
    _rule("prefix:/app/"),
    _rule("prefix:/app/admin/"),
    _rule("exact:/app/admin/index.html"),
]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("/app/admin/index.html", "exact:/app/admin/index.html"),
        ("/app/admin/users", "prefix:/app/admin/"),
        ("/app/main.js", "prefix:/app/"),
        ("/", "default"),
        ("/application", "default"),
    ],
)
def test_exact_beats_longest_prefix_beats_default(uri: str, expected: str) -> None:
    """GIVEN default, two nested prefixes and an exact rule WHEN matching THEN precedence holds."""
    for ordering in (PRECEDENCE, PRECEDENCE[::-1]):
        matched = rules.match(ordering, uri)
        assert matched is not None and matched["path_rule"] == expected


def test_no_default_means_no_match() -> None:
    """GIVEN only a prefix rule WHEN a URI falls outside it THEN no rule matches."""
    assert rules.match([_rule("prefix:/app/")], "/index.html") is None
    assert rules.match([], "/index.html") is None


def test_render_uri_fills_every_placeholder() -> None:
    """GIVEN a template with all placeholders WHEN rendering THEN each is substituted once."""
    variant = {"name": "canary", "version": "v2"}

    rendered = rules.render_uri(
        "/{host}/{variant}/{version}{uri}", uri="/a.js", variant=variant, host=HOST
    )

    assert rendered == "/demo.example.com/canary/v2/a.js"


def test_render_uri_tolerates_stray_braces_and_format_tricks() -> None:
    """GIVEN braces that str.format would choke on WHEN rendering THEN they pass through."""
    variant = {"name": "canary", "version": "v2"}

    rendered = rules.render_uri(
        "/{uri.__class__}{oops{uri}", uri="/{version}", variant=variant, host=HOST
    )

    assert rendered == "/{uri.__class__}{oops/{version}"


@pytest.mark.parametrize(
    ("header", "host"),
    [
        ("Demo.Example.com", HOST),
        ("demo.example.com:443", HOST),
        ("[::1]", "[::1]"),
        ("[::1]:8080", "[::1]"),
    ],
)
def test_normalize_host_lowercases_and_drops_the_port(header: str, host: str) -> None:
    """GIVEN a Host header value WHEN normalizing THEN the table's key form results."""
    assert rules.normalize_host(header) == host


def test_orchestrator_items_are_valid(route_item: RouteItem) -> None:
    """GIVEN the documented item format with actions WHEN validating THEN it is accepted."""
    item = route_item(
        canary_actions={
            "set_uri": "/releases/{version}{uri}",
            "set_origin": {
                "domain": "canary.internal",
                "port": 443,
                "protocol": "https",
                "path": "/v2",
            },
        }
    )
    del item["variants"][1]["actions"]

    assert rules.is_valid_rule(item)


def _broken(change: Callable[[dict[str, Any]], None]) -> Callable[[RouteItem], dict[str, Any]]:
    def build(route_item: RouteItem) -> dict[str, Any]:
        item = route_item(
            canary_actions={
                "set_origin": {"domain": "o", "port": 80, "protocol": "http", "path": ""}
            }
        )
        change(item)
        return item

    return build


def _origin(item: dict[str, Any]) -> dict[str, Any]:
    origin: dict[str, Any] = item["variants"][0]["actions"]["set_origin"]
    return origin


MALFORMED: dict[str, Callable[[dict[str, Any]], None]] = {
    "no path_rule": lambda i: i.pop("path_rule"),
    "unknown path_rule": lambda i: i.update(path_rule="regex:.*"),
    "prefix without slash": lambda i: i.update(path_rule="prefix:app"),
    "no salt": lambda i: i.pop("salt"),
    "variants not a list": lambda i: i.update(variants={"canary": 1}),
    "no variants": lambda i: i.update(variants=[]),
    "variant not a dict": lambda i: i["variants"].append("stable"),
    "no name": lambda i: i["variants"][0].pop("name"),
    "weight as string": lambda i: i["variants"][0].update(weight="1000"),
    "weight as float": lambda i: i["variants"][0].update(weight=1000.0),
    "weight as bool": lambda i: i["variants"][0].update(weight=True),
    "negative weight": lambda i: i["variants"][0].update(weight=-1),
    "version not str": lambda i: i["variants"][0].update(version=2),
    "actions not dict": lambda i: i["variants"][0].update(actions=["set_uri"]),
    "set_uri not str": lambda i: i["variants"][0]["actions"].update(set_uri=1),
    "origin port str": lambda i: _origin(i).update(port="80"),
    "origin port 0": lambda i: _origin(i).update(port=0),
    "origin protocol ftp": lambda i: _origin(i).update(protocol="ftp"),
    "origin no domain": lambda i: _origin(i).pop("domain"),
    "origin path trailing slash": lambda i: _origin(i).update(path="/v2/"),
}


@pytest.mark.parametrize("change", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_items_are_rejected(
    change: Callable[[dict[str, Any]], None], route_item: RouteItem
) -> None:
    """GIVEN an item with a missing or mistyped field WHEN validating THEN it is rejected."""
    assert not rules.is_valid_rule(_broken(change)(route_item))


def test_non_dict_items_are_rejected() -> None:
    """GIVEN values that are not items at all WHEN validating THEN they are rejected quietly."""
    values: tuple[object, ...] = (None, "default", [], 3)
    assert not any(rules.is_valid_rule(v) for v in values)


def test_cache_queries_each_host_once_per_ttl(route_item: RouteItem) -> None:
    """GIVEN a 5 s TTL WHEN a host is asked for 1000 times within it THEN one query is made."""
    table = FakeTable({HOST: [route_item()], "b.example.com": []})
    cache = rules.RuleCache(table, ttl_seconds=5)

    for tick in range(1000):
        cache.rules_for(HOST, 100 + tick * 0.004)
        cache.rules_for("b.example.com", 100 + tick * 0.004)

    assert table.calls == [HOST, "b.example.com"]


def test_cache_refreshes_after_the_ttl(route_item: RouteItem) -> None:
    """GIVEN cached rules WHEN the TTL passes and the table changed THEN new rules are served."""
    table = FakeTable({HOST: [route_item(canary_weight=100)]})
    cache = rules.RuleCache(table, ttl_seconds=5, clock=lambda: 0.0)  # reads take no time
    cache.rules_for(HOST, 0.0)
    table.items[HOST] = [route_item(canary_weight=500)]

    assert cache.rules_for(HOST, 4.9)[0]["variants"][0]["weight"] == 100
    assert cache.rules_for(HOST, 5.0)[0]["variants"][0]["weight"] == 500
    assert len(table.calls) == 2


def test_stale_rules_are_served_while_the_table_fails(route_item: RouteItem) -> None:
    """GIVEN cached rules WHEN the table starts failing THEN the stale rules keep being served
    and the table is retried after the backoff, not on every request."""
    table = FakeTable({HOST: [route_item()]})
    cache = rules.RuleCache(table, ttl_seconds=5, retry_seconds=1)
    good = cache.rules_for(HOST, 0.0)
    table.failing = True

    served = [cache.rules_for(HOST, 5.0 + tick * 0.01) for tick in range(300)]

    assert all(r == good for r in served)
    # Failures at 5.0, 6.0 and 7.0 (and the first success at 0.0): one try per backoff.
    assert len(table.calls) == 4


def test_failure_without_cached_rules_serves_nothing_and_backs_off() -> None:
    """GIVEN a host never read WHEN the table fails THEN [] is served and retried later."""
    table = FakeTable({})
    table.failing = True
    cache = rules.RuleCache(table, ttl_seconds=5, retry_seconds=1, clock=lambda: 0.0)

    assert cache.rules_for(HOST, 0.0) == []
    assert cache.rules_for(HOST, 0.5) == []
    assert len(table.calls) == 1
    table.failing = False
    cache.rules_for(HOST, 1.0)
    assert len(table.calls) == 2


def test_hosts_without_rules_are_negatively_cached() -> None:
    """GIVEN a host with no items WHEN asked repeatedly within the TTL THEN one query is made."""
    table = FakeTable({})
    cache = rules.RuleCache(table, ttl_seconds=5)

    assert all(cache.rules_for("unknown.example.com", t / 10) == [] for t in range(40))
    assert table.calls == ["unknown.example.com"]


def test_malformed_items_are_dropped_and_valid_ones_kept(route_item: RouteItem) -> None:
    """GIVEN one valid and two malformed items WHEN cached THEN only the valid one is served."""
    bad_weight = route_item(path_rule="exact:/x")
    bad_weight["variants"][0]["weight"] = "lots"
    good = route_item()
    table = FakeTable({HOST: [bad_weight, good, {"host": HOST}]})

    assert rules.RuleCache(table, ttl_seconds=5).rules_for(HOST, 0.0) == [good]


def test_cache_size_is_bounded(route_item: RouteItem) -> None:
    """GIVEN more hosts than max_hosts WHEN caching THEN hosts with rules outlive empty ones."""
    table = FakeTable({HOST: [route_item()]})
    cache = rules.RuleCache(table, ttl_seconds=5, max_hosts=3)
    cache.rules_for(HOST, 0.0)
    for i in range(10):
        cache.rules_for(f"h{i}.example.com", 0.0)

    assert cache.rules_for(HOST, 1.0) != []
    assert table.calls.count(HOST) == 1


def test_default_cache_is_shared_and_resettable() -> None:
    """GIVEN the container-wide cache WHEN asked twice THEN it is the same until reset."""
    cache = rules.default_cache()

    assert rules.default_cache() is cache
    rules.reset_default_cache()
    assert rules.default_cache() is not cache


def test_other_callers_serve_stale_while_one_refreshes(route_item: RouteItem) -> None:
    """GIVEN expired rules and a slow refresh in one thread WHEN another thread asks THEN it
    gets the stale rules at once instead of queueing behind the refresh."""
    import threading

    table = FakeTable({HOST: [route_item()]})
    cache = rules.RuleCache(table, ttl_seconds=5)
    stale = cache.rules_for(HOST, 0.0)
    entered, release = threading.Event(), threading.Event()

    def slow_query(host: str) -> list[dict[str, Any]]:
        entered.set()
        release.wait(5)
        return table(host)

    cache._query = slow_query
    refresher = threading.Thread(target=cache.rules_for, args=(HOST, 10.0))
    refresher.start()
    entered.wait(5)
    try:
        assert cache.rules_for(HOST, 10.0) is stale
    finally:
        release.set()
        refresher.join(5)
    assert len(table.calls) == 2


def test_stale_rules_stop_after_the_maximum_staleness(route_item: RouteItem) -> None:
    """GIVEN cached rules and a table that keeps failing WHEN the rules grow older than
    max_stale_seconds THEN the cache serves nothing (stable), until the table answers."""
    table = FakeTable({HOST: [route_item()]})
    cache = rules.RuleCache(table, ttl_seconds=5, retry_seconds=1, max_stale_seconds=30)
    good = cache.rules_for(HOST, 0.0)
    table.failing = True

    assert cache.rules_for(HOST, 29.0) == good
    assert cache.rules_for(HOST, 31.0) == []
    assert cache.rules_for(HOST, 40.0) == []
    table.failing = False
    assert cache.rules_for(HOST, 50.0) == good
