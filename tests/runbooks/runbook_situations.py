"""The situation each runbook is for, built on the local stack, and its documented end.

``setup`` puts the stack into the situation and returns the placeholder values (``ID``,
``HOST``, ``PLAN``); ``before`` waits, per runbook section, for what the runbook says has
happened by then (an abort is honoured within an interval); ``check`` asserts the end
state the runbook promises. Everything waits with a deadline.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from orchestrator.analysis.evaluate import _datadog as _datadog_client
from orchestrator.local.datadog import API_KEY, APP_KEY, DatadogEndpoint
from orchestrator.local.demo import demo_analysis, demo_plan, demo_route
from orchestrator.local.stack import LocalStack
from orchestrator.models import Rollout, RolloutPlan, RolloutStatus
from orchestrator.service import RolloutService

# Long bakes: nothing moves by itself while the commands run. Steering commands are sent
# just after an analysis, inside the Wait that follows it: a request committed while the
# Analyze task runs makes that task fail and the rollout roll back (a product bug, pinned
# by tests/reliability/test_control_races.py), which is not what these runbooks are about.
BAKE, INTERVAL = 300, 10


@dataclass
class World:
    """What every situation shares: the stack, a service, faults keyed by host."""

    stack: LocalStack
    service: RolloutService
    workdir: Path
    failing: dict[str, set[str]] = field(default_factory=dict)  # host -> task suffixes
    datadog: FaultyDatadog | None = None


@dataclass
class Situation:
    setup: Callable[[World, str], dict[str, str]]
    check: Callable[[World, dict[str, str]], None]
    before: dict[str, Callable[[World, dict[str, str]], None]] = field(default_factory=dict)


def wait_for(
    world: World, rollout_id: str, check: Callable[[Rollout], bool], timeout: float = 45
) -> Rollout:
    deadline = time.monotonic() + timeout
    while True:
        rollout = world.service.get(rollout_id)
        if check(rollout):
            return rollout
        if time.monotonic() > deadline:
            raise AssertionError(f"{rollout_id} never reached the expected state: {rollout}")
        time.sleep(0.2)


def plan_for(host: str, provider: str = "cloudwatch", **analysis: Any) -> RolloutPlan:
    document = demo_plan(demo_route(host, 8001, 8002), provider=provider).model_dump(mode="json")
    document["stages"] = [{"weight": w, "bake": BAKE, "interval": INTERVAL} for w in (10, 50, 100)]
    document["analysis"] = {**demo_analysis(provider), **analysis}
    return RolloutPlan.model_validate(document)


def _start(world: World, host: str, plan: RolloutPlan | None = None) -> dict[str, str]:
    """A route for ``host``, a rollout on it at its first stage, and its plan file."""
    plan = plan or plan_for(host)
    world.stack.store().put_route(demo_route(host, 8001, 8002), expected_revision=None)
    plan_file = world.workdir / f"{host}.plan.json"
    plan_file.write_text(plan.model_dump_json(exclude_none=True))
    rollout = world.service.start(plan, "runbook-tests")
    wait_for(
        world,
        rollout.rollout_id,
        lambda r: r.status is RolloutStatus.RUNNING and r.stage_started_at is not None,
    )
    return {"ID": rollout.rollout_id, "HOST": host, "PLAN": str(plan_file)}


def _status(*statuses: RolloutStatus) -> Callable[[Rollout], bool]:
    return lambda r: r.status in statuses


def _weights(world: World, host: str) -> dict[str, int]:
    return world.stack.store().get_route(host).weights()


def _kinds(world: World, rollout_id: str) -> list[str]:
    return [e.kind for e in world.service.events(rollout_id)]


def _active(world: World, host: str) -> list[Rollout]:
    rollouts, _ = world.service.list(
        host=host, statuses=frozenset(s for s in RolloutStatus if not s.is_final)
    )
    return rollouts


# -- steering -------------------------------------------------------------------------------


def _running(world: World, host: str) -> dict[str, str]:
    return _start(world, host)


def _paused(world: World, host: str) -> dict[str, str]:
    values = _start(world, host)
    world.service.pause(values["ID"], "oncall", "looking")
    wait_for(world, values["ID"], _status(RolloutStatus.PAUSED))
    return values


def _just_analysed(world: World, values: dict[str, str]) -> None:
    """Until the rollout has just recorded an analysis: the next one is an interval away."""
    seen = [e.seq for e in world.service.events(values["ID"]) if e.kind == "analysis"]
    _first_analysis(world, values["ID"], after=max(seen, default=0))


def _await(*statuses: RolloutStatus) -> Callable[[World, dict[str, str]], None]:
    def wait(world: World, values: dict[str, str]) -> None:
        wait_for(world, values["ID"], _status(*statuses))

    return wait


def _check_paused(world: World, values: dict[str, str]) -> None:
    rollout = world.service.get(values["ID"])
    assert rollout.status is RolloutStatus.PAUSED, rollout
    assert _weights(world, values["HOST"]) == {"canary": 1000, "stable": 9000}
    assert "paused" in _kinds(world, values["ID"])


def _check_resumed(world: World, values: dict[str, str]) -> None:
    rollout = world.service.get(values["ID"])
    assert rollout.status is RolloutStatus.RUNNING and rollout.control is None, rollout
    kinds = _kinds(world, values["ID"])
    assert kinds.index("paused") < kinds.index("resumed")


def _check_aborted(world: World, values: dict[str, str]) -> None:
    rollout = world.service.get(values["ID"])
    assert rollout.status is RolloutStatus.ROLLED_BACK and "aborted by" in rollout.reason, rollout
    assert _weights(world, values["HOST"])["canary"] == 0
    assert world.stack.store().lock_holder(values["HOST"], "default") is None


def _check_promoted(world: World, values: dict[str, str]) -> None:
    rollout = world.service.get(values["ID"])
    assert rollout.status is RolloutStatus.PROMOTED and "promoted by" in rollout.reason, rollout
    route = world.stack.store().get_route(values["HOST"])
    assert route.variant("stable").version == "v2" and route.weights()["stable"] == 10_000


# -- after the end --------------------------------------------------------------------------


def _rolled_back(world: World, host: str) -> dict[str, str]:
    values = _start(world, host)
    world.service.abort(values["ID"], "oncall", "bad canary")
    wait_for(world, values["ID"], _status(RolloutStatus.ROLLED_BACK))
    return values


def _check_started_again(world: World, values: dict[str, str]) -> None:
    active = _active(world, values["HOST"])
    assert [r.rollout_id != values["ID"] for r in active] == [True], active


def _failed_rollback(world: World, host: str) -> dict[str, str]:
    world.failing[host] = {"analyze", "rollback"}
    try:
        values = _start(world, host)
        wait_for(world, values["ID"], _status(RolloutStatus.FAILED), timeout=60)
    finally:
        world.failing.pop(host, None)  # the cause is gone: recover can now succeed
    return values


def _check_recovered(world: World, values: dict[str, str]) -> None:
    rollout = world.service.get(values["ID"])
    assert rollout.status is RolloutStatus.FAILED
    last = world.service.events(values["ID"])[-1]
    assert last.kind == "recovered" and last.detail["weights"]["canary"] == 0, last
    # The route itself now belongs to the new rollout started in the verification.
    _check_started_again(world, values)


def _promoted(world: World, host: str) -> dict[str, str]:
    values = _start(world, host)
    world.service.promote(values["ID"], "oncall", "verified")
    wait_for(world, values["ID"], _status(RolloutStatus.PROMOTED))
    return values


def _revert_applied(world: World, values: dict[str, str]) -> None:
    wait_for(world, values["REVERT"], lambda r: r.stage_started_at is not None)


def _check_reverted(world: World, values: dict[str, str]) -> None:
    revert = world.service.get(values["REVERT"])
    assert revert.status is RolloutStatus.PROMOTED, revert
    route = world.stack.store().get_route(values["HOST"])
    assert route.variant("stable").version == "v1" and route.weights()["stable"] == 10_000


def _throttled(world: World, host: str) -> dict[str, str]:
    world.failing[host] = {"apply-stage:throttle"}
    try:
        world.stack.store().put_route(demo_route(host, 8001, 8002), expected_revision=None)
        plan = plan_for(host)
        plan_file = world.workdir / f"{host}.plan.json"
        plan_file.write_text(plan.model_dump_json(exclude_none=True))
        rollout = world.service.start(plan, "runbook-tests")
        final = wait_for(world, rollout.rollout_id, lambda r: r.status.is_final)
        assert final.status is RolloutStatus.ROLLED_BACK, final
        assert "ProvisionedThroughputExceeded" in final.reason, final.reason
    finally:
        world.failing.pop(host, None)
    return {"ID": rollout.rollout_id, "HOST": host, "PLAN": str(plan_file)}


def _new_stage_applied(world: World, values: dict[str, str]) -> None:
    deadline = time.monotonic() + 45
    while time.monotonic() < deadline:
        active = _active(world, values["HOST"])
        if active and active[0].stage_started_at is not None:
            return
        time.sleep(0.2)
    raise AssertionError(f"no new rollout applied its first stage on {values['HOST']}")


def _check_throttling_recovered(world: World, values: dict[str, str]) -> None:
    _check_started_again(world, values)
    assert _weights(world, values["HOST"])["canary"] == 1000


# -- Datadog --------------------------------------------------------------------------------


class FaultyDatadog:
    """The local Datadog endpoint, with keys that can be rotated and keys that see an
    outage (503 on every call), so each runbook's rollout has its own Datadog."""

    def __init__(self) -> None:
        self.endpoint = DatadogEndpoint()
        self.api_keys = {API_KEY}
        self.app_keys = {APP_KEY}
        self.down: set[str] = set()  # API keys whose calls all fail with 503
        owner = self
        base: type[BaseHTTPRequestHandler] = self.endpoint._server.RequestHandlerClass

        class Handler(base):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:
                if self._outage():
                    return None
                if self.path.startswith("/api/v1/validate"):
                    ok = self.headers.get("DD-API-KEY") in owner.api_keys
                    return self._send(200 if ok else 403, {"valid": ok})
                return super().do_GET()

            def do_POST(self) -> None:
                if not self._outage():
                    super().do_POST()

            def _outage(self) -> bool:
                if self.headers.get("DD-API-KEY") in owner.down:
                    self._send(503, {"errors": ["Service Unavailable"]})
                    return True
                return False

            def _authorized(self) -> bool:
                if (
                    self.headers.get("DD-API-KEY") in owner.api_keys
                    and self.headers.get("DD-APPLICATION-KEY") in owner.app_keys
                ):
                    return True
                self._send(403, {"errors": ["Forbidden"]})
                return False

        self.endpoint._server.RequestHandlerClass = Handler

    def store_keys(self, stack: LocalStack, prefix: str, api: str, app: str) -> None:
        secrets = stack.client("secretsmanager")
        for name, value in ((f"{prefix}/api", api), (f"{prefix}/app", app)):
            try:
                secrets.create_secret(Name=name, SecretString=value)
            except secrets.exceptions.ResourceExistsException:
                secrets.put_secret_value(SecretId=name, SecretString=value)


def _datadog_plan(world: World, host: str, api: str, app: str) -> RolloutPlan:
    assert world.datadog is not None
    world.datadog.api_keys.add(api)
    world.datadog.app_keys.add(app)
    world.datadog.store_keys(world.stack, f"edgeshift/datadog/{host}", api, app)
    analysis: dict[str, Any] = {}
    analysis["datadog"] = {
        "api_key_secret": f"edgeshift/datadog/{host}/api",
        "app_key_secret": f"edgeshift/datadog/{host}/app",
        "timeout": 2,
    }
    analysis["limits"] = {"max_error_streak": 100}  # the outage must not end it
    return plan_for(host, provider="datadog", **analysis)


def _first_analysis(world: World, rollout_id: str, after: int = 0) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        events = world.service.events(rollout_id)
        if any(e.kind == "analysis" and e.seq > after for e in events):
            return
        time.sleep(0.2)
    raise AssertionError(f"no analysis of {rollout_id} after event {after}")


def _datadog_down(world: World, host: str) -> dict[str, str]:
    api = f"outage-api-{host}"
    values = _start(world, host, _datadog_plan(world, host, api, f"outage-app-{host}"))
    _first_analysis(world, values["ID"])
    world.datadog.down.add(api)  # type: ignore[union-attr]
    values["_api"] = api
    return values


def _datadog_back(world: World, values: dict[str, str]) -> None:
    wait_for(world, values["ID"], _status(RolloutStatus.PAUSED))
    world.datadog.down.discard(values["_api"])  # type: ignore[union-attr]


def _resumed_and_analysed(world: World, values: dict[str, str]) -> None:
    rollout = wait_for(world, values["ID"], _status(RolloutStatus.RUNNING))
    _first_analysis(world, values["ID"], after=rollout.version)


def _check_datadog_recovered(world: World, values: dict[str, str]) -> None:
    rollout = world.service.get(values["ID"])
    assert rollout.status is RolloutStatus.RUNNING, rollout
    events = world.service.events(values["ID"])
    during = [e for e in events if e.kind == "analysis"]
    assert any("503" in json.dumps(e.detail) for e in during), "the outage was never seen"
    resumed = max(e.seq for e in events if e.kind == "resumed")
    after = [e.detail["verdict"]["outcome"] for e in during if e.seq > resumed]
    assert after and "error" not in after, after


def _datadog_running(world: World, host: str) -> dict[str, str]:
    values = _start(world, host, _datadog_plan(world, host, f"old-api-{host}", f"old-app-{host}"))
    _first_analysis(world, values["ID"])
    return values


def _rotated(world: World, values: dict[str, str]) -> None:
    """What the runbook's AWS-only actions do, in its order: new keys valid in Datadog,
    the new values stored, 5 minutes for the caches (cleared here), the old keys revoked."""
    from aws_lambda_powertools.utilities import parameters

    datadog, host = world.datadog, values["HOST"]
    assert datadog is not None
    new_api, new_app = f"new-api-{host}", f"new-app-{host}"
    datadog.api_keys.add(new_api)
    datadog.app_keys.add(new_app)
    datadog.store_keys(world.stack, f"edgeshift/datadog/{host}", new_api, new_app)
    parameters.clear_caches()
    _datadog_client.cache_clear()  # the recycled functions: new containers, no cached client
    time.sleep(INTERVAL + 1)  # analyses that read the old key before the clear have ended
    datadog.api_keys.discard(f"old-api-{host}")
    datadog.app_keys.discard(f"old-app-{host}")
    values["_rotated_at"] = str(world.service.get(values["ID"]).version)
    _first_analysis(world, values["ID"], after=int(values["_rotated_at"]))


def _check_rotated(world: World, values: dict[str, str]) -> None:
    rollout = world.service.get(values["ID"])
    assert rollout.status is RolloutStatus.RUNNING, rollout
    after = [
        e.detail["verdict"]["outcome"]
        for e in world.service.events(values["ID"])
        if e.kind == "analysis" and e.seq > int(values["_rotated_at"])
    ]
    assert after and "error" not in after, after


# -- faults in the task Lambdas -------------------------------------------------------------


def inject_faults(world: World) -> None:
    """Tasks of hosts in ``world.failing`` raise: a plain error, or DynamoDB throttling."""
    store = world.stack.store()
    handlers = world.stack.lambdas.handlers
    for name, handler in list(handlers.items()):
        suffix = name.removeprefix("edgeshift-")

        def faulty(event: dict[str, Any], context: Any, _h=handler, _s=suffix) -> Any:
            host = store.get_rollout(event["rollout_id"]).plan.target.host
            faults = world.failing.get(host, set())
            if f"{_s}:throttle" in faults:
                raise ClientError(
                    {
                        "Error": {
                            "Code": "ProvisionedThroughputExceededException",
                            "Message": "Rate of requests exceeds the allowed throughput.",
                        }
                    },
                    "TransactWriteItems",
                )
            if _s in faults:
                raise RuntimeError(f"injected into {_s}")
            return _h(event, context)

        handlers[name] = faulty


# -- flag data -----------------------------------------------------------------------------


def _flag_routed_without_data(world: World, host: str) -> dict[str, str]:
    """A rule routed by flag new-checkout, and no flag data: its viewers get the fallback."""
    from orchestrator.local.flag_demo import flag_route

    world.stack.store().put_route(flag_route(host, 8001, 8002), expected_revision=None)
    return {"HOST": host}


def _check_flag_data_serves(world: World, values: dict[str, str]) -> None:
    from orchestrator.flags import FlagData, FlagStore, rule_problems

    stored = FlagStore(world.stack.client("dynamodb")).stored()
    assert "flag:new-checkout" in stored, stored
    data = FlagData(flags={"new-checkout": json.loads(stored["flag:new-checkout"]["data"])})
    assert rule_problems([world.stack.store().get_route(values["HOST"])], data) == []


SITUATIONS: dict[str, Situation] = {
    "pause": Situation(
        _running,
        _check_paused,
        {"Actions": _just_analysed, "Verification": _await(RolloutStatus.PAUSED)},
    ),
    "resume": Situation(_paused, _check_resumed, {"Verification": _await(RolloutStatus.RUNNING)}),
    "abort": Situation(_running, _check_aborted, {"Actions": _just_analysed}),
    "force-promote": Situation(_running, _check_promoted, {"Actions": _just_analysed}),
    "rolled-back": Situation(_rolled_back, _check_started_again),
    "rollback-failed": Situation(_failed_rollback, _check_recovered),
    "bad-release-after-promotion": Situation(
        _promoted, _check_reverted, {"Actions once the revert runs": _revert_applied}
    ),
    "edge-split-mismatch": Situation(
        _running,
        _check_paused,
        {"Actions": _just_analysed, "Verification": _await(RolloutStatus.PAUSED)},
    ),
    "datadog-outage": Situation(
        _datadog_down,
        _check_datadog_recovered,
        {
            "Actions": _just_analysed,
            "Actions when Datadog answers again": _datadog_back,
            "Verification": _resumed_and_analysed,
        },
    ),
    "dynamodb-throttling": Situation(
        _throttled, _check_throttling_recovered, {"Verification": _new_stage_applied}
    ),
    "rotate-datadog-keys": Situation(_datadog_running, _check_rotated, {"Verification": _rotated}),
    "flag-data-stale": Situation(_flag_routed_without_data, _check_flag_data_serves),
}
