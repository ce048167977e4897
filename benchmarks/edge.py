"""Edge benchmarks: warm decision latency, cold import against boto3, table reads, zip size.

Each figure is measured here, in one run, on this machine; none is asserted (the machines are
shared). What each means:

- ``edge_warm_p50_us`` / ``edge_warm_p99_us``: ``viewer_request.handler`` on a warm container
  (rules cached, 50 rules on the host, 1000 distinct viewers), one timed call per request,
  segment labelling on: the viewers carry the local stack's realistic User-Agent mix.
  ``segment_label_uncached_p50_us`` / ``_p99_us`` time ``edge.segments.label`` on each of
  those User-Agents with the container's remembered labels cleared (a first sight).
- ``edge_cold_import_ms``: importing the three handler modules in a fresh interpreter (median
  of 5), next to ``boto3_import_ms`` (``import boto3``) and ``boto3_client_ms`` (``import
  boto3`` plus a DynamoDB client), which is what reading the table with boto3 would cost.
  ``edge_cold_start_ms`` adds ``edge.dynamo`` (the first table read's imports) and the first
  decision.
- ``edge_table_reads_per_100k_requests``: 100,000 requests of 1000 viewers through all three
  triggers' decisions on one container, over simulated time (100 requests/s, so 1000 s) with
  the default TTL; ``edge_table_reads_per_host_per_ttl`` divides by the TTL windows.
- ``edge_viewer_zip_bytes``: the zip ``make edge-bundle`` builds (``stacks.bundle.build``).
- ``edge_slow_table`` (one line for ``trickle``: one byte every 0.2 s; one for ``paginate``:
  every page 0.25 s, always another): 40 viewer requests in a row through
  ``viewer_request.handler`` against a fake DynamoDB on 127.0.0.1, once with rules already
  cached (the TTL just expired: served stale) and once cold (served stable).
  ``first_ms`` is the request that waited on the table, ``rest_max_ms`` the slowest after
  it, ``within_deadline_plus_20pct`` whether every request stayed under the deadline + 20%.
- ``edge_flag_routing`` (rules whose variant comes from a LaunchDarkly flag, ``edge.flags``;
  the flag is ``examples/flags.json``'s ``new-checkout``: a target list, a segment rule, a
  prerequisite and a 30% rollout): ``flag_zip_bytes`` is ``edge-flags.zip`` (the edge code
  plus the SDK, attached only to behaviours that route by flag); ``flag_cold_start_ms`` is
  the handlers, ``edge.dynamo`` and the first flag-routed decision (which imports the SDK,
  starts its offline client and loads the flag data) in a fresh interpreter, median of 5,
  beside ``flag_sdk_import_ms`` (``import edge.flag_sdk`` alone); ``flag_warm_p50_us`` /
  ``_p99_us`` time ``viewer_request.handler`` on 20,000 flag-routed requests of 1000
  viewers (context key in a cookie) on a warm container. The other lines above measure
  weighted rules only and do not load the SDK.
"""

from __future__ import annotations

import functools
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "bench.example.com"
USERS = 1000
WARM_REQUESTS = 20_000
SIM_REQUESTS = 100_000
SIM_RATE_PER_S = 100.0
COLD_RUNS = 5


def run() -> Iterator[dict[str, Any]]:
    yield warm_latency()
    yield cold_import()
    yield table_reads()
    yield viewer_zip()
    for mode in ("trickle", "paginate"):
        yield slow_table(mode)
    yield flag_routing()


def _rules(count: int = 50) -> list[dict[str, Any]]:
    """One default rule, and prefix and exact rules, all with a set_uri and a set_origin."""
    paths = ["default"] + [f"prefix:/app{i}/" for i in range(24)]
    paths += [f"exact:/page{i}.html" for i in range(count - len(paths))]
    actions = {
        "set_uri": "/releases/{version}{uri}",
        "set_origin": {"domain": "canary.example.org", "port": 443, "protocol": "https"},
    }
    return [
        {
            "host": HOST,
            "path_rule": path,
            "salt": f"r-{i}",
            "cache_control": "no-cache",
            "variants": [
                {"name": "canary", "version": "v2", "weight": 1000, "actions": actions},
                {"name": "stable", "version": "v1", "weight": 9000, "actions": {}},
            ],
        }
        for i, path in enumerate(paths)
    ]


@functools.cache
def _agents() -> tuple[str, ...]:
    """One User-Agent per viewer, in the local stack's realistic browser mix."""
    from orchestrator.local.traffic import population

    return tuple(viewer.user_agent for viewer in population(USERS))


def _event(user: int, uri: str) -> dict[str, Any]:
    agent = _agents()[user % USERS]
    request = {
        "clientIp": f"198.18.{user // 256}.{user % 256}",
        "headers": {
            "host": [{"key": "Host", "value": HOST}],
            "user-agent": [{"key": "User-Agent", "value": agent}],
        },
        "method": "GET",
        "querystring": "",
        "uri": uri,
    }
    config = {"eventType": "viewer-request", "distributionId": "EDFDVBD6EXAMPLE"}
    return {"Records": [{"cf": {"config": config, "request": request}}]}


def _uri(n: int) -> str:
    # A mix of the three rule kinds, including the longest-prefix scan.
    return ("/index.html", f"/app{n % 24}/main.js", f"/page{n % 25}.html")[n % 3]


def warm_latency() -> dict[str, Any]:
    from edge import rules, viewer_request

    table = _rules()
    rules._default = rules.RuleCache(lambda host: table, ttl_seconds=3600)
    try:
        viewer_request.handler(_event(0, "/index.html"), None)  # fills the cache
        events = [_event(n % USERS, _uri(n)) for n in range(WARM_REQUESTS)]
        timings = _handler_timings(events)
    finally:
        rules.reset_default_cache()
    timings.sort()
    labelled = sum(
        "x-edgeshift-segment" in e["Records"][0]["cf"]["request"]["headers"] for e in events
    )
    return {
        "edge_warm_p50_us": round(timings[len(timings) // 2] / 1000, 2),
        "edge_warm_p99_us": round(timings[int(len(timings) * 0.99)] / 1000, 2),
        "edge_warm_max_us": round(timings[-1] / 1000, 2),
        "segment_labelling": labelled == len(events),
        "distinct_user_agents": len(set(_agents())),
        **_uncached_labels(),
        "rules_on_host": len(table),
        "requests": WARM_REQUESTS,
        # Tail latency on a shared machine is mostly preemption: report the load beside it.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "cpus": os.cpu_count(),
    }


def _uncached_labels(rounds: int = 200) -> dict[str, float]:
    from edge import segments

    agents = sorted(set(_agents()))
    timings: list[int] = []
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for agent in agents:
            segments._seen.clear()
            started = clock()
            segments.label(agent)
            timings.append(clock() - started)
    segments._seen.clear()
    timings.sort()
    return {
        "segment_label_uncached_p50_us": round(timings[len(timings) // 2] / 1000, 2),
        "segment_label_uncached_p99_us": round(timings[int(len(timings) * 0.99)] / 1000, 2),
    }


_PROBE = """
import time
started = time.perf_counter()
{statement}
print(time.perf_counter() - started)
"""
_EDGE_IMPORT = "import edge.viewer_request, edge.origin_request, edge.viewer_response"
_EDGE_COLD_START = f"""{_EDGE_IMPORT}, edge.dynamo
from edge import rules, viewer_request
rules._default = rules.RuleCache(lambda host: [], ttl_seconds=5)
viewer_request.handler({{"Records": [{{"cf": {{"request": {{"clientIp": "1.2.3.4",
    "headers": {{"host": [{{"value": "h"}}]}}, "uri": "/", "querystring": ""}}}}}}]}}, None)"""
_BOTO3_CLIENT = """import boto3
boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x",
             aws_secret_access_key="x")"""


def _probe_ms(statement: str) -> float:
    runs = []
    for _ in range(COLD_RUNS):
        out = subprocess.run(
            [sys.executable, "-c", _PROBE.format(statement=statement)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs.append(float(out) * 1000)
    return round(statistics.median(runs), 1)


def cold_import() -> dict[str, Any]:
    return {
        "edge_cold_import_ms": _probe_ms(_EDGE_IMPORT),
        "edge_cold_start_ms": _probe_ms(_EDGE_COLD_START),
        "boto3_import_ms": _probe_ms("import boto3"),
        "boto3_client_ms": _probe_ms(_BOTO3_CLIENT),
        "runs": COLD_RUNS,
        "statistic": "median",
    }


def table_reads() -> dict[str, Any]:
    from edge import config, origin_request, rules, viewer_request, viewer_response

    cfg = config.load()
    table = _rules()
    reads: list[str] = []

    def query(host: str) -> list[dict[str, Any]]:
        reads.append(host)
        return table

    cache = rules.RuleCache(query, ttl_seconds=cfg.ttl_seconds)
    duration = SIM_REQUESTS / SIM_RATE_PER_S
    for n in range(SIM_REQUESTS):
        now = n / SIM_RATE_PER_S  # simulated monotonic clock
        request = _event(n % USERS, _uri(n))["Records"][0]["cf"]["request"]
        decision = viewer_request.decide(request, cfg, cache, now)
        if decision is not None and decision.response is None:
            decision.apply(request)
        origin_request.decide(request, cfg, cache, now)
        viewer_response.decide(request, cfg, cache, now)
    windows = duration / cfg.ttl_seconds
    return {
        "edge_table_reads_per_100k_requests": len(reads) * 100_000 // SIM_REQUESTS,
        "edge_table_reads_per_host_per_ttl": round(len(reads) / windows, 3),
        "ttl_seconds": cfg.ttl_seconds,
        "simulated_seconds": duration,
        "users": USERS,
        "triggers": 3,
    }


def viewer_zip() -> dict[str, Any]:
    try:
        from stacks import bundle
    except ImportError:  # stacks/bundle.py missing: zip edge/*.py + config.json ourselves
        return _own_zip()
    with tempfile.TemporaryDirectory() as tmp:
        zip_path = bundle.build(
            Path(tmp) / "bundle", table="edgeshift-routes", regions=["us-east-1"]
        )
        import zipfile

        with zipfile.ZipFile(zip_path) as archive:
            names = archive.namelist()
        return {
            "edge_viewer_zip_bytes": zip_path.stat().st_size,
            "files": len(names),
            "only_edge_code": all(n.startswith("edge/") for n in names),
            "limit_bytes": bundle.MAX_ZIP_BYTES,
            "built_by": "stacks.bundle.build",
        }


def _own_zip() -> dict[str, Any]:
    import io
    import zipfile

    buffer = io.BytesIO()
    edge_dir = REPO_ROOT / "edge"
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(edge_dir.glob("*.py")):
            archive.writestr(f"edge/{path.name}", path.read_bytes())
        archive.writestr(
            "edge/config.json", json.dumps(json.loads((edge_dir / "config.json").read_text()))
        )
    return {
        "edge_viewer_zip_bytes": len(buffer.getvalue()),
        "built_by": "benchmarks.edge (fallback)",
    }


def _slow_server(mode: str) -> tuple[Any, int]:
    """A fake DynamoDB on 127.0.0.1 that trickles or paginates slowly; (stop, port)."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.1)
    stop = threading.Event()
    body = json.dumps({"Items": [], "LastEvaluatedKey": {"host": {"S": HOST}}}).encode()
    answer = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body

    def handle(conn: Any) -> None:
        with conn:
            conn.settimeout(1.0)
            try:
                while not stop.is_set() and conn.recv(65536):
                    if mode == "trickle":
                        for byte in answer:
                            if stop.wait(0.2):
                                return
                            conn.sendall(bytes([byte]))
                    elif not stop.wait(0.25):
                        conn.sendall(answer)
            except OSError:
                return

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()

    def close() -> None:
        stop.set()
        server.close()

    return close, server.getsockname()[1]


def _same(cache: Any) -> Any:
    return cache


def slow_table(mode: str, requests: int = 40) -> dict[str, Any]:
    from edge import config, dynamo, rules, viewer_request

    close, port = _slow_server(mode)
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
    cfg = config.EdgeConfig(endpoint_url=f"http://127.0.0.1:{port}")
    figures: dict[str, Any] = {"edge_slow_table": mode, "deadline_ms": cfg.deadline_seconds * 1e3}
    try:
        for start in ("stale", "cold"):
            cache = rules.RuleCache(
                lambda host: dynamo.query_host(host, cfg=cfg), ttl_seconds=cfg.ttl_seconds
            )
            if start == "stale":  # rules read 6 s ago; the TTL (5 s) has just expired
                read_at = time.monotonic() - 6.0
                cache._store(HOST, rules._Entry(rules.Matcher(_rules()), read_at + 5, read_at))
            saved = (config.load, rules.default_cache)
            config.load = lambda: cfg
            rules.default_cache = functools.partial(_same, cache)
            try:
                took, routed = [], 0
                for n in range(requests):
                    event = _event(n, _uri(n))
                    started = time.perf_counter()
                    out = viewer_request.handler(event, None)
                    took.append((time.perf_counter() - started) * 1e3)
                    routed += "x-edgeshift-variant" in out.get("headers", {})
            finally:
                config.load, rules.default_cache = saved
                dynamo.close_connections()
            rest = sorted(took[1:])
            figures[start] = {
                "first_ms": round(took[0], 1),
                "rest_max_ms": round(rest[-1], 3),
                "rest_p50_ms": round(rest[len(rest) // 2], 3),
                "served": "rules (stale)" if routed else "stable",
                "routed_requests": routed,
                "within_deadline_plus_20pct": max(took) <= cfg.deadline_seconds * 1e3 * 1.2,
            }
    finally:
        close()
    figures["requests"] = requests
    figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    return figures


FLAG_FILE = REPO_ROOT / "examples" / "flags.json"
_FLAG_SETUP = """
import json
from edge import flags, rules, viewer_request
flag_file = json.load(open({path!r}))
items = [{{"path_rule": kind + ":" + key, "data": json.dumps(value)}}
         for kind, section in (("flag", "flags"), ("segment", "segments"))
         for key, value in flag_file[section].items()]
rule = {rule!r}
rules._default = rules.RuleCache(lambda host: [rule], ttl_seconds=3600)
flags._default = flags.FlagCache(lambda partition: items, ttl_seconds=3600)
"""


def _flag_rule() -> dict[str, Any]:
    rule = _rules(1)[0]
    rule["assignment"] = {
        "provider": "launchdarkly",
        "flag": "new-checkout",
        "context": {"kind": "user", "key_from": "cookie:ld_uid"},
        "variations": {"true": "canary", "false": "stable"},
        "fallback": "stable",
    }
    return rule


def _flag_event(user: int) -> dict[str, Any]:
    event = _event(user, "/index.html")
    headers = event["Records"][0]["cf"]["request"]["headers"]
    headers["cookie"] = [{"key": "Cookie", "value": f"ld_uid=viewer-{user}"}]
    return event


def flag_routing() -> dict[str, Any]:
    from edge import flags, rules, viewer_request

    setup = _FLAG_SETUP.format(path=str(FLAG_FILE), rule=_flag_rule())
    first = f"""{_EDGE_IMPORT}, edge.dynamo
{setup}
viewer_request.handler({_flag_event(1)!r}, None)"""
    namespace: dict[str, Any] = {}
    exec(setup, namespace)  # the same caches, for the warm run in this interpreter
    try:
        events = [_flag_event(n % USERS) for n in range(WARM_REQUESTS)]
        viewer_request.handler(_flag_event(0), None)  # imports the SDK, loads the snapshot
        timings = _handler_timings(events)
        canary = sum(
            e["Records"][0]["cf"]["request"]["headers"]["x-edgeshift-variant"][0]["value"]
            == "canary"
            for e in events
        )
    finally:
        rules.reset_default_cache()
        flags.reset_default_cache()
    timings.sort()
    return {
        "edge_flag_routing": "new-checkout",
        "flag_zip_bytes": _flag_zip_bytes(),
        "flag_cold_start_ms": _probe_ms(first),
        "flag_sdk_import_ms": _probe_ms("import edge.flag_sdk"),
        "flag_warm_p50_us": round(timings[len(timings) // 2] / 1000, 2),
        "flag_warm_p99_us": round(timings[int(len(timings) * 0.99)] / 1000, 2),
        "flag_warm_max_us": round(timings[-1] / 1000, 2),
        "canary_share": round(canary / len(events), 4),
        "requests": WARM_REQUESTS,
        "users": USERS,
        "runs": COLD_RUNS,
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def _flag_zip_bytes() -> int:
    from stacks import bundle

    with tempfile.TemporaryDirectory() as tmp:
        zip_path = bundle.build(
            Path(tmp) / "bundle", table="edgeshift-routes", regions=["us-east-1"], flags=True
        )
        return zip_path.stat().st_size


def _handler_timings(events: list[dict[str, Any]]) -> list[int]:
    """Nanoseconds viewer_request.handler took for each event, after a collection so that
    no earlier garbage is collected inside the run."""
    from edge import viewer_request  # imported where it is timed, as the callers do

    timings: list[int] = []
    gc.collect()
    clock = time.perf_counter_ns
    for event in events:
        started = clock()
        viewer_request.handler(event, None)
        timings.append(clock() - started)
    return timings
