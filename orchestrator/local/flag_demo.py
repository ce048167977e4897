"""The ``flag-routing`` demo: a route whose variant comes from a LaunchDarkly flag.

``examples/flags.json`` holds ``new-checkout``: a prerequisite (``checkout-enabled``), a
target list, a segment rule and a 30% rollout of ``true``. The demo syncs the file into the
local routes table the way ``rollout flags sync`` does, writes a rule for its host routed
by that flag (``true`` -> canary, ``false`` -> stable, the viewer's key in the ``ld_uid``
cookie), sends every viewer of the population once through the CloudFront emulator and
records the variant the origin says it served. It then asks the SDK itself (an
``LDClient`` on the same file through its file data source) what each viewer's flag
value is, and counts the viewers the edge served accordingly: all of them, or the
scenario ends ``MISMATCHED``.
"""

from __future__ import annotations

import http.client
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.models import RouteRule

from .cloudfront import EMULATED_COUNTRY_HEADER, CloudFrontEmulator
from .loopback import LOOPBACK
from .origins import VARIANT_HEADER, DemoOrigin
from .traffic import Viewer, population

if TYPE_CHECKING:
    from .stack import LocalStack

FLAG_FILE = Path(__file__).resolve().parents[2] / "examples" / "flags.json"
FLAG = "new-checkout"
COOKIE = "ld_uid"
AGREED, MISMATCHED = "ALL_AGREED", "MISMATCHED"


@dataclass(frozen=True)
class FlagScenario:
    name: str = "flag-routing"
    users: int = 2000
    expected: str = AGREED
    flag_file: Path = FLAG_FILE

    @property
    def host(self) -> str:
        return f"{self.name}.demo.edgeshift.test"


def flag_route(host: str, stable_port: int, canary_port: int) -> RouteRule:
    """The demo's route (stable v1, canary v2 on their own origins) with the flag choosing:
    its weights are not used."""
    from .demo import demo_route  # demo.py runs this scenario, so imported at call time

    document = demo_route(host, stable_port, canary_port).model_dump(mode="json")
    document["assignment"] = {
        "provider": "launchdarkly",
        "flag": FLAG,
        "context": {"kind": "user", "key_from": f"cookie:{COOKIE}"},
        "variations": {"true": "canary", "false": "stable"},
        "fallback": "stable",
    }
    return RouteRule.model_validate(document)


def _key(index: int) -> str:
    return f"viewer-{index:05d}"


def _serve_all(port: int, host: str, viewers: list[Viewer]) -> list[str | None]:
    """One request per viewer through the emulator; the variant the origin served each."""
    served: list[str | None] = []
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        for index, viewer in enumerate(viewers):
            connection.request(
                "GET",
                "/checkout.js",
                headers={
                    "Host": host,
                    "User-Agent": viewer.user_agent,
                    "X-Forwarded-For": viewer.ip,
                    EMULATED_COUNTRY_HEADER: viewer.country,
                    "Cookie": f"{COOKIE}={_key(index)}",
                },
            )
            response = connection.getresponse()
            response.read()
            served.append(response.getheader(VARIANT_HEADER) if response.status < 400 else None)
    finally:
        connection.close()
    return served


def _sdk_values(flag_file: Path, viewers: list[Viewer]) -> list[Any]:
    """The flag's value for each viewer as the SDK evaluates it from the same file."""
    from ldclient import Config, Context, LDClient
    from ldclient.integrations import Files

    from edge import segments

    client = LDClient(
        Config(
            "edgeshift-demo",
            update_processor_class=Files.new_data_source(paths=[str(flag_file)]),
            send_events=False,
        )
    )
    try:
        values = []
        for index, viewer in enumerate(viewers):
            browser, device = segments.classify(viewer.user_agent)
            context = (
                Context.builder(_key(index)).set("browser", browser).set("device", device).build()
            )
            values.append(client.variation(FLAG, context, None))
        return values
    finally:
        client.close()  # type: ignore[no-untyped-call]


def run_flag_scenario(
    stack: LocalStack, scenario: FlagScenario, emit: Callable[[str], None]
) -> dict[str, Any]:
    from edge import flags as edge_flags
    from edge import rules as edge_rules
    from edge.flags import value_key
    from orchestrator.flags import FlagStore, load_file

    started = time.monotonic()
    data = load_file(scenario.flag_file)
    synced = FlagStore(stack.client("dynamodb")).sync(
        data, actor="demo", source=f"file {scenario.flag_file.name}"
    )
    emit(
        f"[{scenario.name}] flag data synced from {scenario.flag_file.name}: "
        f"{len(synced.written)} written, {synced.unchanged} unchanged"
    )
    stable = DemoOrigin("v1", 0.0, seed=1).start()
    canary = DemoOrigin("v2", 0.0, seed=2).start()
    edge = CloudFrontEmulator(default_origin_port=stable.port).start()
    try:
        route = flag_route(scenario.host, stable.port, canary.port)
        existing = stack.store().get_route(scenario.host)
        stack.store().put_route(
            route, expected_revision=existing.revision if existing else None, actor="demo"
        )
        # Fresh edge caches, as in a new container: an earlier run's route (its origins are
        # gone) or flag data must not be served for a TTL.
        edge_rules.reset_default_cache()
        edge_flags.reset_default_cache()
        viewers = population(scenario.users)
        served = _serve_all(edge.port, scenario.host, viewers)
    finally:
        for server in (edge, stable, canary):
            server.stop()
    assignment = route.assignment
    assert assignment is not None
    values = _sdk_values(scenario.flag_file, viewers)
    expected = [
        assignment.variations.get(value_key(v), assignment.fallback) if v is not None else None
        for v in values
    ]
    agreed = sum(1 for got, want in zip(served, expected, strict=True) if got == want)
    counts = Counter(name or "none" for name in served)
    outcome = AGREED if agreed == len(viewers) else MISMATCHED
    share = {name: round(count / len(viewers), 4) for name, count in sorted(counts.items())}
    flag_true = sum(1 for v in values if v is True) / len(viewers)
    emit(
        f"[{scenario.name}] {len(viewers)} viewers: served {share}; the SDK put "
        f"{flag_true:.1%} on true; {agreed}/{len(viewers)} served as the SDK evaluates"
    )
    return {
        "scenario": scenario.name,
        "outcome": outcome,
        "expected": scenario.expected,
        "reason": f"{agreed}/{len(viewers)} viewers served the variant the SDK's own "
        f"evaluation of {FLAG} gives them"
        + ("" if outcome == AGREED else f"; {len(viewers) - agreed} differ"),
        "flag": FLAG,
        "viewers": len(viewers),
        "served_share": share,
        "sdk_true_share": round(flag_true, 4),
        "sdk_agreed": agreed,
        "requests": dict(counts),
        "errors": {},
        "edge_function_errors": edge.stats["function_errors"],
        "seconds": round(time.monotonic() - started, 1),
    }
