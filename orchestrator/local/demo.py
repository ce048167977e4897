"""Full local rollouts: a good canary must be PROMOTED and a bad one ROLLED_BACK, by the
real state machine judging real per-variant counts of simulated viewers.

``segment-regression`` breaks the canary only for IE 11, about 1% of the viewers: the totals
stay within the plan's tolerance, so only the plan's per-browser analysis
(``analysis.segments: [{by: browser}]``) can roll it back.

``split-mismatch`` switches on the CDN emulator's ``reassign_variant`` fault: viewers the
edge put on stable are assigned again under a second key, so the canary serves about
twice its weight. The plan's served-split check must see it and pause the rollout
(``policies.on_split_mismatch`` defaults to pause). A pause waits for a person, so once the
workflow has parked the rollout the demo records it, then aborts it to put stable back.

``flag-routing`` (``DEMO_SCENARIOS``, with the four above) starts no rollout: a LaunchDarkly
flag with 30% of users on ``true`` chooses the variant, and every viewer's served variant is
compared with the SDK's own evaluation (``orchestrator.local.flag_demo``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orchestrator.analysis.providers.datadog import HOST_OVERRIDE
from orchestrator.models import AuditEvent, RolloutPlan, RolloutStatus, RouteRule
from orchestrator.service import RolloutService

from .cloudfront import CloudFrontEmulator
from .datadog import API_KEY, APP_KEY, DatadogEndpoint
from .flag_demo import FlagScenario, run_flag_scenario
from .loopback import LOOPBACK
from .origins import DemoOrigin
from .stack import LocalStack
from .traffic import DATADOG_ERRORS, DATADOG_REQUESTS, NAMESPACE, TrafficGenerator

Stages = tuple[tuple[int, int], ...]  # (weight %, bake seconds)
DEFAULT_STAGES: Stages = ((10, 8), (50, 6), (100, 6))
# A value with 1% of the viewers needs time at a large canary share before its canary side
# has the segment's minimum sample: ~6 IE 11 requests/s of 600 arrive, half of them canary.
SEGMENT_STAGES: Stages = ((10, 8), (50, 20), (100, 6))


@dataclass(frozen=True)
class Scenario:
    name: str
    stable_error_rate: float
    canary_error_rate: float
    expected: RolloutStatus
    # ("browser=ie-11", 1.0): the canary origin fails that share of the segment's requests.
    canary_segment_errors: tuple[tuple[str, float], ...] = ()
    segments: tuple[str, ...] = ()  # the plan's analysis.segments, by these dimensions
    # The error-rate's absolute tolerance (None: the demo's 1.5 points).
    tolerance: float | None = None
    stages: Stages = DEFAULT_STAGES
    timeout: float = 90.0
    users: int = 2000
    # The CDN emulator's fault (CloudFrontEmulator's reassign_variant), None: a healthy edge.
    reassign_variant: str | None = None

    @property
    def host(self) -> str:
        return f"{self.name}.demo.edgeshift.test"


SCENARIOS = {
    "good-canary": Scenario("good-canary", 0.005, 0.005, RolloutStatus.PROMOTED),
    "bad-canary": Scenario("bad-canary", 0.005, 0.08, RolloutStatus.ROLLED_BACK),
    "segment-regression": Scenario(
        "segment-regression",
        0.005,
        0.005,
        RolloutStatus.ROLLED_BACK,
        canary_segment_errors=(("browser=ie-11", 1.0),),
        segments=("browser",),
        stages=SEGMENT_STAGES,
        timeout=120.0,
        # Each viewer sends many requests and keeps its variant: with 2,000 viewers only ~21
        # run IE 11, so the canary's IE share swings from 0 to 3% with a handful of them. Ten
        # times the viewers keeps it near 1%, so the totals stay within the plan's margin and
        # the browser cut is what finds the regression.
        users=20_000,
        # A one-point regression in the totals is within this plan's tolerance, as a
        # broken small browser usually is in a real fleet's aggregate: only the browser cut
        # can see it. (With 1.5 points an unlucky draw of IE viewers onto the canary lets
        # the totals fail first, for a reason that names no segment.)
        tolerance=0.04,
    ),
    "split-mismatch": Scenario(
        "split-mismatch",
        0.005,
        0.005,
        RolloutStatus.PAUSED,
        # At 10% the faulty edge serves the canary 19% of the requests, far outside the
        # 7.5-12.5% the default tolerance allows.
        reassign_variant="stable",
        timeout=60.0,
    ),
}


# What `rollout demo` runs: the rollouts above, then flag-routing (a route a LaunchDarkly
# flag chooses for, checked viewer by viewer against the SDK; orchestrator.local.flag_demo).
DEMO_SCENARIOS: dict[str, Scenario | FlagScenario] = {**SCENARIOS, "flag-routing": FlagScenario()}


def demo_route(host: str, stable_port: int, canary_port: int) -> RouteRule:
    def variant(name: str, version: str, port: int, weight: int) -> dict[str, Any]:
        return {
            "name": name,
            "version": version,
            "weight": weight,
            "actions": {
                "set_uri": "/releases/{version}{uri}",
                "set_origin": {"domain": LOOPBACK, "port": port, "protocol": "http"},
            },
        }

    return RouteRule.model_validate(
        {
            "host": host,
            "variants": [
                variant("canary", "v2", canary_port, 0),
                variant("stable", "v1", stable_port, 10_000),
            ],
        }
    )


DATADOG_API_SECRET = "edgeshift/datadog/demo-api-key"
DATADOG_APP_SECRET = "edgeshift/datadog/demo-app-key"


def demo_analysis(provider: str = "cloudwatch") -> dict[str, Any]:
    """One critical error-rate metric, judged the way a real plan is.

    The demo has a few hundred canary requests per stage, so the plan is honest about what
    they can show: a canary passes when it is confidently within 1.5 points of stable's
    error rate, fails as soon as it is confidently worse than stable (or confidently above
    5% errors), with at least 200 requests per variant before any pass.
    """
    metric: dict[str, Any] = {
        "name": "error-rate",
        "direction": "lower",
        "tolerance": {"absolute": 0.015},
        "min_samples": 200,
        "limit": 0.05,
        "critical": True,
    }
    if provider == "datadog":
        scope = "{host:{host},variant:{variant}}"
        metric |= {
            "numerator": f"default_zero(sum:{DATADOG_ERRORS}{scope}.as_count())",
            "denominator": f"sum:{DATADOG_REQUESTS}{scope}.as_count()",
        }
        return {
            "provider": "datadog",
            "datadog": {"api_key_secret": DATADOG_API_SECRET, "app_key_secret": DATADOG_APP_SECRET},
            # Per-second periods, as the CloudWatch demo: a 6-second bake of one 60-second
            # period has no intervals to measure its noise from, so nothing could pass.
            "period": 1,
            "metrics": [metric],
        }
    metric |= {"numerator": "Errors", "denominator": "Requests"}
    return {
        "provider": "cloudwatch",
        "namespace": NAMESPACE,
        "dimensions": {"Host": "{host}", "Variant": "{variant}"},
        "period": 1,
        "metrics": [metric],
    }


def demo_plan(
    route: RouteRule,
    bake: int = 6,
    interval: int = 2,
    provider: str = "cloudwatch",
    *,
    stages: Stages | None = None,
    segments: tuple[str, ...] = (),
    tolerance: float | None = None,
) -> RolloutPlan:
    """The demo's plan; ``segments`` adds ``analysis.segments`` (one entry per dimension),
    ``tolerance`` replaces the error-rate's absolute tolerance."""
    canary, stable = route.variant("canary"), route.variant("stable")
    stages = stages or ((10, bake + 2), (50, bake), (100, bake))
    analysis = demo_analysis(provider)
    if tolerance is not None:
        analysis["metrics"][0]["tolerance"] = {"absolute": tolerance}
    if segments:
        # Ten requests of a browser are plenty when every one of them fails; the default 20
        # would leave the demo's IE 11 canary (a few requests a second) unjudged for most of
        # a stage, and a stage that passes on its totals meanwhile would promote it.
        analysis["segments"] = [{"by": dimension, "min_samples": 10} for dimension in segments]
    return RolloutPlan.model_validate(
        {
            "target": {"host": route.host},
            "stable": {"name": stable.name, "version": stable.version},
            "canary": {"name": canary.name, "version": canary.version},
            "stages": [
                {"weight": weight, "bake": seconds, "interval": interval}
                for weight, seconds in stages
            ],
            "analysis": analysis,
        }
    )


def start_datadog(stack: LocalStack) -> DatadogEndpoint:
    """The local Datadog endpoint, its keys in moto's Secrets Manager, and the provider
    pointed at it (a deployment setting, like a proxy: never part of a plan)."""
    endpoint = DatadogEndpoint().start()
    secrets = stack.client("secretsmanager")
    for name, value in ((DATADOG_API_SECRET, API_KEY), (DATADOG_APP_SECRET, APP_KEY)):
        try:
            secrets.create_secret(Name=name, SecretString=value)
        except secrets.exceptions.ResourceExistsException:
            secrets.put_secret_value(SecretId=name, SecretString=value)
    os.environ[HOST_OVERRIDE] = endpoint.url
    return endpoint


def run_scenario(
    stack: LocalStack,
    scenario: Scenario | FlagScenario,
    emit: Callable[[str], None],
    timeout: float | None = None,
    provider: str = "cloudwatch",
) -> dict[str, Any]:
    if isinstance(scenario, FlagScenario):  # no rollout: the flag chooses, viewer by viewer
        return run_flag_scenario(stack, scenario, emit)
    started = time.monotonic()
    timeout = scenario.timeout if timeout is None else timeout
    datadog = start_datadog(stack) if provider == "datadog" else None
    stable = DemoOrigin("v1", scenario.stable_error_rate, seed=1).start()
    canary = DemoOrigin(
        "v2",
        scenario.canary_error_rate,
        seed=2,
        segment_errors=dict(scenario.canary_segment_errors),
    ).start()
    edge = CloudFrontEmulator(
        default_origin_port=stable.port, reassign_variant=scenario.reassign_variant
    ).start()
    traffic = None
    try:
        route = demo_route(scenario.host, stable.port, canary.port)
        stack.store().put_route(route, expected_revision=None)
        traffic = TrafficGenerator(
            edge.port,
            scenario.host,
            stack.client("cloudwatch"),
            users=scenario.users,
            # Only what the plan reads goes to CloudWatch: moto answers ListMetrics (how the
            # provider finds a dimension's values) by scanning every datapoint stored, so
            # each unread dimension would slow every later look of every scenario.
            segment_dimensions=scenario.segments,
            rate=600,
            max_seconds=timeout,
            datadog=datadog.store if datadog else None,
        ).start()
        service = RolloutService(
            stack.store(), stack.client("stepfunctions"), stack.state_machine_arn
        )
        plan = demo_plan(
            route,
            provider=provider,
            stages=scenario.stages,
            segments=scenario.segments,
            tolerance=scenario.tolerance,
        )
        rollout = service.start(plan, actor="demo")
        weights = " -> ".join(f"{weight}%" for weight, _ in scenario.stages)
        cut = f", per {', '.join(scenario.segments)}" if scenario.segments else ""
        emit(
            f"[{scenario.name}] rollout {rollout.rollout_id} started: {weights}, "
            f"judged from {provider}{cut}"
        )
        execution = execution_arn(stack, rollout.rollout_id)
        final = _follow(
            service, execution, rollout.rollout_id, scenario.name, emit, started + timeout
        )
        # The reason the workflow gave for how it ended (or paused), before any clean-up.
        reason = service.get(rollout.rollout_id).reason
        if final is RolloutStatus.PAUSED:
            _abort_paused(service, execution, rollout.rollout_id, scenario.name, emit)
    finally:
        if traffic:
            traffic.stop()
        for server in (edge, stable, canary):
            server.stop()
        if datadog:
            datadog.stop()
            os.environ.pop(HOST_OVERRIDE, None)
    events = service.events(rollout.rollout_id)
    return {
        "scenario": scenario.name,
        "provider": provider,
        "outcome": final.value,
        "expected": scenario.expected.value,
        "reason": reason,
        "rollout_id": rollout.rollout_id,
        "stages_completed": stages_completed(events, final),
        "requests": dict(traffic.totals.requests),
        "errors": dict(traffic.totals.errors),
        **_segment_counts(traffic, scenario),
        "edge_function_errors": edge.stats["function_errors"],
        "states": execution_states(stack, rollout.rollout_id),
        "seconds": round(time.monotonic() - started, 1),
    }


def _segment_counts(traffic: TrafficGenerator, scenario: Scenario) -> dict[str, Any]:
    """Requests and errors per variant of each broken segment value, as the viewers saw."""
    if not scenario.canary_segment_errors:
        return {}
    found: dict[str, dict[str, dict[str, int]]] = {}
    for key, _ in scenario.canary_segment_errors:
        dimension, _, value = key.partition("=")
        found[key] = {}
        for variant in traffic.totals.requests:
            counts = traffic.totals.by_dimension(variant, dimension).get(value)
            if counts is not None:
                found[key][variant] = {"requests": counts[0], "errors": counts[1]}
    return {"segments": found}


def _abort_paused(
    service: RolloutService, execution: str, rollout_id: str, name: str, emit: Callable[[str], None]
) -> None:
    """Abort a rollout the workflow paused, and wait until its execution has rolled it back:
    the demo leaves every route on stable, as a person answering the pause would."""
    service.abort(rollout_id, actor="demo", reason="demo over: the pause was the expected end")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status = service.sfn.describe_execution(executionArn=execution)["status"]
        rollout = service.get(rollout_id)
        if rollout.status.is_final and status != "RUNNING":
            emit(f"[{name}] aborted after the pause: {rollout.status.value}")
            return
        time.sleep(0.25)
    emit(f"[{name}] abort not carried out in 30 s: rollout {service.get(rollout_id).status.value}")


def _follow(
    service: RolloutService,
    execution: str,
    rollout_id: str,
    name: str,
    emit: Callable[[str], None],
    deadline: float,
) -> RolloutStatus:
    """Print each new audit event until the rollout ends, its execution dies, or time is up."""
    seen = 0
    while True:
        # Execution status first: if it has ended, the rollout read after it is final too.
        execution_status = service.sfn.describe_execution(executionArn=execution)["status"]
        rollout = service.get(rollout_id)
        events = service.events(rollout_id)
        for event in events[seen:]:
            line = describe(event, rollout.plan)
            if line:
                emit(f"[{name}] {line}")
        seen = len(events)
        if rollout.status.is_final or rollout.status is RolloutStatus.PAUSED:
            # A pause waits for a person, however long: it ends what the demo can watch.
            return rollout.status
        if execution_status != "RUNNING":
            emit(
                f"[{name}] execution ended {execution_status}, rollout still {rollout.status.value}"
            )
            return RolloutStatus.FAILED
        if time.monotonic() > deadline:
            emit(f"[{name}] gave up waiting: rollout still {rollout.status.value}")
            return rollout.status
        time.sleep(0.25)


def describe(event: AuditEvent, plan: RolloutPlan) -> str | None:
    detail = event.detail
    if event.kind == "stage_applied":
        stage = detail["stage"]
        return f"stage {stage + 1}/{len(plan.stages)}: canary weight {plan.stages[stage].weight}%"
    if event.kind == "analysis":
        verdict, decision = detail["verdict"], detail["decision"]
        canary, baseline = verdict["canary"], verdict["baseline"]
        return (
            f"stage {detail['stage'] + 1} {detail['weight']:g}% | "
            f"canary {canary['total']} req {_rate(canary)} err | "
            f"stable {baseline['total']} req {_rate(baseline)} err | "
            f"{verdict['outcome']} -> {decision['action']}{_served(verdict.get('split'))}"
        )
    if event.kind in ("promoted", "rolled_back", "paused"):
        return f"{event.kind.upper()}: {event.reason}"
    return None


def _served(split: dict[str, Any] | None) -> str:
    if not split or split.get("share") is None:
        return ""
    mark = " SPLIT MISMATCH" if split["outcome"] == "mismatch" else ""
    return f" | canary served {split['share']:.1%} of requests{mark}"


def _rate(counts: dict[str, int]) -> str:
    return f"{counts['errors'] / counts['total']:.2%}" if counts["total"] else "n/a"


def stages_completed(events: list[AuditEvent], final: RolloutStatus) -> int:
    """Stages that passed their bake, plus the 100% stage when the rollout was promoted."""
    passed = sum(
        1
        for e in events
        if e.kind == "analysis" and e.detail["decision"]["action"] in ("apply", "promote")
    )
    return passed + (1 if final is RolloutStatus.PROMOTED else 0)


def execution_arn(stack: LocalStack, rollout_id: str) -> str:
    """The execution is named after the rollout, so its ARN follows from the id."""
    return stack.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{rollout_id}"


def execution_states(stack: LocalStack, rollout_id: str) -> list[str]:
    """The states the execution really entered, read back from Step Functions."""
    sfn = stack.client("stepfunctions")
    names: list[str] = []
    kwargs: dict[str, Any] = {"executionArn": execution_arn(stack, rollout_id), "maxResults": 1000}
    while True:
        page = sfn.get_execution_history(**kwargs)
        for event in page["events"]:
            entered = event.get("stateEnteredEventDetails")
            if entered and (not names or names[-1] != entered["name"]):
                names.append(entered["name"])
        if not page.get("nextToken"):
            return names
        kwargs["nextToken"] = page["nextToken"]
