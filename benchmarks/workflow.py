"""Workflow figures on the local stack.

- ``transitions_per_rollout_hour``: Step Functions Standard bills per state transition
  ($0.025 per 1,000). We run a real rollout, count the states its execution entered,
  split them into per-look states (Wait, Analyze, Decide) and the rest, and scale to a
  3-hour plan with 1-minute looks.
- ``rollback_to_edge_seconds``: from the audit record of the decision to roll back until
  the CloudFront emulator (real edge handlers, 1 s rules TTL) stops serving the canary to a
  viewer that was in it.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from edge.assign import bucket_of
from orchestrator.local.cloudfront import CloudFrontEmulator
from orchestrator.local.demo import demo_plan, demo_route, execution_arn
from orchestrator.local.feeder import MetricsFeeder, constant
from orchestrator.local.loopback import LOOPBACK
from orchestrator.local.origins import VARIANT_HEADER, DemoOrigin
from orchestrator.local.stack import LocalStack
from orchestrator.models import RolloutPlan
from orchestrator.service import RolloutService

PRICE_PER_TRANSITION = 0.025 / 1000
PER_LOOK_STATES = ("Wait", "Analyze", "Decide")


def _plan(host: str, weights: list[float], bake: int) -> RolloutPlan:
    document = demo_plan(demo_route(host, 8001, 8002)).model_dump(mode="json")
    document["stages"] = [{"weight": w, "bake": bake, "interval": 1} for w in weights]
    return RolloutPlan.model_validate(document)


def _wait_final(service: RolloutService, rollout_id: str, timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rollout = service.get(rollout_id)
        if rollout.status.is_final:
            return rollout
        time.sleep(0.2)
    raise TimeoutError(rollout_id)


def _entered(stack: LocalStack, rollout_id: str) -> Counter[str]:
    sfn, counts = stack.client("stepfunctions"), Counter[str]()
    kwargs: dict[str, Any] = {"executionArn": execution_arn(stack, rollout_id), "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        for event in page["events"]:
            if details := event.get("stateEnteredEventDetails"):
                counts[details["name"]] += 1
        if not page.get("nextToken"):
            return counts
        kwargs["nextToken"] = page["nextToken"]


def transitions(stack: LocalStack, service: RolloutService) -> dict[str, Any]:
    host = "transitions.bench.edgeshift.test"
    stack.store().put_route(demo_route(host, 8001, 8002), expected_revision=None)
    feeder = MetricsFeeder(stack.store(), stack.client("cloudwatch"), host, constant(0.005)).start()
    try:
        rollout = service.start(_plan(host, [5, 25, 50, 100], bake=6), "bench")
        final = _wait_final(service, rollout.rollout_id)
    finally:
        feeder.stop()
    entered = _entered(stack, rollout.rollout_id)
    looks = entered["Analyze"]
    per_look = sum(entered[s] for s in PER_LOOK_STATES) / looks
    fixed = sum(entered.values()) - sum(entered[s] for s in PER_LOOK_STATES)
    stages = entered["ApplyStage"]
    three_hours = fixed + per_look * 180  # the same stages, 180 one-minute looks in all
    return {
        "measured_rollout": final.status.value,
        "measured_transitions": sum(entered.values()),
        "measured_looks": looks,
        "measured_stages": stages,
        "transitions_per_look": round(per_look, 2),
        "transitions_per_rollout_hour": round(three_hours / 3, 1),
        "dollars_per_3h_rollout": round(three_hours * PRICE_PER_TRANSITION, 5),
        "history_events_per_3h_rollout_estimate": round(three_hours * 3),
    }


def _canary_viewer(salt: str, weight_bp: int) -> tuple[str, str]:
    agent = "bench-probe"
    for i in range(100_000):
        ip = f"198.18.{i // 256 % 256}.{i % 256}"
        if bucket_of(salt, f"{ip}|{agent}") < weight_bp:
            return ip, agent
    raise RuntimeError("no viewer in the canary range")


def rollback_to_edge(stack: LocalStack, service: RolloutService) -> dict[str, Any]:
    stable, canary = DemoOrigin("v1", 0.0).start(), DemoOrigin("v2", 0.0).start()
    edge = CloudFrontEmulator(default_origin_port=stable.port).start()
    host = "rollback.bench.edgeshift.test"
    stack.store().put_route(demo_route(host, stable.port, canary.port), expected_revision=None)
    bad = {"rate": 0.005}  # the canary turns bad once the probe has seen it
    feeder = MetricsFeeder(
        stack.store(), stack.client("cloudwatch"), host, lambda weight: bad["rate"]
    ).start()
    seen: list[tuple[float, str]] = []
    stop = threading.Event()
    try:
        rollout = service.start(_plan(host, [20, 100], bake=30), "bench")
        viewer = _canary_viewer(rollout.salt, 2000)
        probe = threading.Thread(target=_probe, args=(edge.port, host, viewer, seen, stop))
        probe.start()
        deadline = time.monotonic() + 30
        while not any(v == "canary" for _, v in seen) and time.monotonic() < deadline:
            time.sleep(0.05)
        bad["rate"] = 0.2
        _wait_final(service, rollout.rollout_id)
        time.sleep(3)  # a few TTLs, to see the canary is really gone
    finally:
        stop.set()
        feeder.stop()
        for server in (edge, stable, canary):
            server.stop()
    decided = next(
        e.at.timestamp()
        for e in service.events(rollout.rollout_id)
        if e.kind == "analysis" and e.detail["decision"]["action"] == "rollback"
    )
    last_canary = max(t for t, v in seen if v == "canary")
    return {
        "rollback_to_edge_seconds": round(last_canary - decided, 3),
        "edge_ttl_seconds": stack.edge_ttl_seconds,
        "probe_requests": len(seen),
        "probe_seconds_after_last_canary": round(seen[-1][0] - last_canary, 2),
    }


def _probe(
    port: int,
    host: str,
    viewer: tuple[str, str],
    seen: list[tuple[float, str]],
    stop: threading.Event,
) -> None:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=5)
    headers = {"Host": host, "User-Agent": viewer[1], "X-Forwarded-For": viewer[0]}
    while not stop.is_set():
        connection.request("GET", "/app.js", headers=headers)
        response = connection.getresponse()
        response.read()
        seen.append((time.time(), response.getheader(VARIANT_HEADER) or "none"))
        time.sleep(0.02)
    connection.close()


def run() -> Iterator[dict[str, Any]]:
    with LocalStack() as stack:
        service = RolloutService(
            stack.store(), stack.client("stepfunctions"), stack.state_machine_arn
        )
        yield {"name": "workflow_transitions", **transitions(stack, service)}
        yield {"name": "rollback_to_edge", **rollback_to_edge(stack, service)}
