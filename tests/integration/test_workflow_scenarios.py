"""The rollout workflow on the local stack: the real ASL in moto's interpreter, the real
task handlers, synthetic per-variant counts in CloudWatch. All scenarios run at once,
each on its own host, then each test reads its scenario's outcome."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest

from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.local.feeder import MetricsFeeder, constant
from orchestrator.local.stack import LocalStack
from orchestrator.models import Rollout, RolloutPlan, RolloutStatus
from orchestrator.service import RolloutService
from orchestrator.store import TargetLockedError

pytestmark = pytest.mark.integration

INTERVAL, BAKE = 1, 3
GOOD, BAD = constant(0.005), constant(0.08)


class InjectedFault(RuntimeError):
    pass


@dataclass
class Scenario:
    name: str
    canary_errors: Callable[[int], float] = GOOD
    weights: tuple[float, ...] = (10, 50, 100)
    approval_stage: int | None = None
    policies: dict[str, Any] = field(default_factory=dict)
    fail_tasks: tuple[str, ...] = ()  # task function suffixes that raise for this host
    force: bool = False  # start despite the feasibility forecast's warning
    steer: Callable[[RolloutService, str], None] | None = None
    rollout: Rollout | None = None
    final: Rollout | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return f"{self.name}.wf.edgeshift.test"

    def plan(self) -> RolloutPlan:
        document = demo_plan(demo_route(self.host, 8001, 8002)).model_dump(mode="json")
        document["stages"] = [
            {"weight": w, "bake": BAKE, "interval": INTERVAL, "approval": i == self.approval_stage}
            for i, w in enumerate(self.weights)
        ]
        document["policies"] = {**document.get("policies", {}), **self.policies}
        return RolloutPlan.model_validate(document)


def wait_for(
    service: RolloutService, rollout_id: str, check: Callable[[Rollout], bool], timeout: float = 30
) -> Rollout:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rollout = service.get(rollout_id)
        if check(rollout):
            return rollout
        time.sleep(0.1)
    raise AssertionError(f"{rollout_id} never reached the expected state: {rollout}")


def abort_during_bake(scenario: Scenario) -> Callable[[RolloutService, str], None]:
    def steer(service: RolloutService, rollout_id: str) -> None:
        wait_for(service, rollout_id, lambda r: r.stage_index == 0)
        scenario.notes["aborted_at"] = time.monotonic()
        service.abort(rollout_id, "oncall@example.com", "error budget burning on checkout")

    return steer


def pause_then_resume(scenario: Scenario) -> Callable[[RolloutService, str], None]:
    def steer(service: RolloutService, rollout_id: str) -> None:
        wait_for(service, rollout_id, lambda r: r.stage_index == 0)
        service.pause(rollout_id, "oncall@example.com", "looking at a dashboard")
        paused = wait_for(service, rollout_id, lambda r: r.status is RolloutStatus.PAUSED)
        time.sleep(BAKE + 1)  # longer than the bake: a paused rollout must not advance
        scenario.notes["weight_while_paused"] = service.store.get_route(scenario.host).weights()
        scenario.notes["stage_while_paused"] = service.get(rollout_id).stage_index
        assert paused.task_token
        service.resume(rollout_id, "oncall@example.com", "dashboard is fine")

    return steer


def approve(scenario: Scenario) -> Callable[[RolloutService, str], None]:
    def steer(service: RolloutService, rollout_id: str) -> None:
        waiting = wait_for(
            service,
            rollout_id,
            lambda r: r.status is RolloutStatus.AWAITING_APPROVAL or r.status.is_final,
        )
        scenario.notes["approval_status"] = waiting.status
        if waiting.status is RolloutStatus.AWAITING_APPROVAL:
            time.sleep(1)
            service.resume(rollout_id, "release-manager@example.com", "approved")

    return steer


def _third_stage_regression(canary_weight: int) -> float:
    return 0.08 if canary_weight >= 5000 else 0.005


SCENARIOS: dict[str, Scenario] = {}
for s in [
    Scenario("bad", canary_errors=BAD),
    Scenario("late-regression", canary_errors=_third_stage_regression, weights=(10, 25, 50, 100)),
    Scenario("abort"),
    Scenario("pause"),
    Scenario("approval", approval_stage=0),
    *[
        Scenario(f"fault-{task}", fail_tasks=(task,))
        for task in ("begin", "apply-stage", "analyze", "promote")
    ],
    Scenario("fault-hold", approval_stage=0, fail_tasks=("hold",)),
    Scenario("rollback-fails", fail_tasks=("analyze", "rollback")),
]:
    SCENARIOS[s.name] = s
SCENARIOS["abort"].steer = abort_during_bake(SCENARIOS["abort"])
SCENARIOS["abort"].policies = {"max_extension": 0}
# Without an extension its 3-look bake is too short to pass at the demo's traffic, which
# the forecast refuses at Begin; the abort lands during that bake, so run it anyway.
SCENARIOS["abort"].force = True
SCENARIOS["pause"].steer = pause_then_resume(SCENARIOS["pause"])
SCENARIOS["approval"].steer = approve(SCENARIOS["approval"])


def _inject_faults(stack: LocalStack) -> None:
    by_host = {s.host: s.fail_tasks for s in SCENARIOS.values() if s.fail_tasks}
    store = stack.store()
    for name, handler in list(stack.lambdas.handlers.items()):
        suffix = name.removeprefix("edgeshift-")

        def faulty(event: dict[str, Any], context: Any, _h=handler, _suffix=suffix) -> Any:
            host = store.get_rollout(event["rollout_id"]).plan.target.host
            if _suffix in by_host.get(host, ()):
                raise InjectedFault(f"injected into {_suffix}")
            return _h(event, context)

        stack.lambdas.handlers[name] = faulty


@pytest.fixture(scope="module")
def stack():
    with LocalStack() as running:
        _inject_faults(running)
        yield running


@pytest.fixture(scope="module")
def service(stack):
    return RolloutService(stack.store(), stack.client("stepfunctions"), stack.state_machine_arn)


@pytest.fixture(scope="module")
def outcomes(stack, service):
    feeders = []
    for scenario in SCENARIOS.values():
        stack.store().put_route(demo_route(scenario.host, 8001, 8002), expected_revision=None)
        feeders.append(
            MetricsFeeder(
                stack.store(),
                stack.client("cloudwatch"),
                scenario.host,
                scenario.canary_errors,
                max_seconds=150,
            ).start()
        )

    def run(scenario: Scenario) -> None:
        scenario.rollout = service.start(scenario.plan(), "tests", force=scenario.force)
        if scenario.steer:
            scenario.steer(service, scenario.rollout.rollout_id)
        scenario.final = wait_for(
            service, scenario.rollout.rollout_id, lambda r: r.status.is_final, timeout=120
        )

    try:
        with ThreadPoolExecutor(max_workers=len(SCENARIOS)) as pool:
            for future in [pool.submit(run, s) for s in SCENARIOS.values()]:
                future.result()
    finally:
        for feeder in feeders:
            feeder.stop()
    return SCENARIOS


def _events(service, scenario):
    return service.events(scenario.rollout.rollout_id)


def _execution_status(stack, scenario) -> str:
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:")
    return stack.client("stepfunctions").describe_execution(
        executionArn=f"{arn}:{scenario.rollout.rollout_id}"
    )["status"]


def _saw_canary(look) -> bool:
    """A look whose judged window held canary requests: the window opens once the edge
    serves the stage's weight (analysis.edge_settle), so a stage's first look may be empty."""
    return bool(look.detail["verdict"]["canary"]["total"])


def _can_compare(look) -> bool:
    """A look whose comparison could fail: without a stable-fleet history the dispersion
    needs 3 degrees of freedom (4 intervals) first, and until then only a limit applies. How
    many intervals a look holds depends on how fast the machine runs the workflow."""
    metrics = look.detail["verdict"].get("metrics") or [{}]
    source = str(metrics[0].get("dispersion_source") or "")
    return _saw_canary(look) and not source.startswith("not known")


def test_bad_canary_rolls_back_within_an_interval_of_the_first_look(outcomes, service):
    """A canary bad from the start is rolled back within the first three looks that saw its
    traffic and could compare it (or earlier, by the metric's 5% limit), and no look before
    that passed it. Usually the first or second; on a loaded machine the feeder's counts
    arrive in bursts, the judge measures that as overdispersion (3.3 seen in CI) and widens
    its test, which can take one look more."""
    scenario = outcomes["bad"]
    assert scenario.final.status is RolloutStatus.ROLLED_BACK
    looks = [e for e in _events(service, scenario) if e.kind == "analysis"]
    assert looks[-1].detail["decision"]["action"] == "rollback"
    outcomes_seen = [e.detail["verdict"]["outcome"] for e in looks]
    judging = [e for e in looks if _can_compare(e)]
    by_limit = "limit" in looks[-1].detail["verdict"]["reason"]
    assert len(judging) <= 3 and (judging or by_limit), outcomes_seen
    assert "pass" not in outcomes_seen, outcomes_seen


def test_regression_in_the_third_stage_is_caught_there(outcomes, service):
    """A regression that only shows at 50% passes two stages and is rolled back in the third."""
    scenario = outcomes["late-regression"]
    assert scenario.final.status is RolloutStatus.ROLLED_BACK
    events = _events(service, scenario)
    assert [e.detail["stage"] for e in events if e.kind == "stage_applied"] == [0, 1, 2]
    in_third = [e for e in events if e.kind == "analysis" and e.detail["stage"] == 2]
    assert in_third[-1].detail["decision"]["action"] == "rollback"
    assert 1 <= len([e for e in in_third if _saw_canary(e)]) <= 2
    assert service.store.get_route(scenario.host).weights()["canary"] == 0


def test_abort_during_a_bake_rolls_back_with_the_reason(outcomes, service):
    """Abort during a bake is honoured at the next decision point and says who and why."""
    scenario = outcomes["abort"]
    final = scenario.final
    assert final.status is RolloutStatus.ROLLED_BACK
    assert "aborted by oncall@example.com" in final.reason
    kinds = [e.kind for e in _events(service, scenario)]
    assert kinds.index("control_requested") < kinds.index("rolled_back")
    assert service.store.lock_holder(scenario.host, "default") is None


def test_pause_holds_traffic_and_resume_goes_on_to_promotion(outcomes, service):
    """A paused rollout keeps its weights past the bake; after resume it is promoted."""
    scenario = outcomes["pause"]
    assert scenario.final.status is RolloutStatus.PROMOTED
    assert scenario.notes["weight_while_paused"] == {"canary": 1000, "stable": 9000}
    assert scenario.notes["stage_while_paused"] == 0
    kinds = [e.kind for e in _events(service, scenario)]
    assert kinds.index("paused") < kinds.index("resumed") < kinds.index("promoted")


def test_approval_gate_waits_for_a_person(outcomes, service):
    """A stage with approval waits; the next stage is applied only after resume."""
    scenario = outcomes["approval"]
    assert scenario.notes["approval_status"] is RolloutStatus.AWAITING_APPROVAL
    assert scenario.final.status is RolloutStatus.PROMOTED
    events = _events(service, scenario)
    kinds = [e.kind for e in events]
    resumed = kinds.index("resumed")
    second_stage = [
        i for i, e in enumerate(events) if e.kind == "stage_applied" and e.detail["stage"] == 1
    ]
    assert kinds.index("awaiting_approval") < resumed < second_stage[0]
    assert events[resumed].actor == "release-manager@example.com"


@pytest.mark.parametrize("task", ["begin", "apply-stage", "analyze", "promote", "hold"])
def test_an_exception_in_any_task_rolls_back_and_frees_the_target(outcomes, service, task):
    """An exception injected into a task ends ROLLED_BACK, stable at 100%, lock released."""
    scenario = outcomes[f"fault-{task}"]
    assert scenario.final.status is RolloutStatus.ROLLED_BACK, scenario.final.reason
    assert "InjectedFault" in scenario.final.reason
    route = service.store.get_route(scenario.host)
    assert route.weights()["canary"] == 0 and route.variant("stable").version == "v1"
    assert service.store.lock_holder(scenario.host, "default") is None


def test_a_failing_rollback_fails_loudly_and_keeps_the_lock(outcomes, service, stack):
    """When rolling back keeps failing, the rollout is FAILED and its lock is kept."""
    scenario = outcomes["rollback-fails"]
    assert scenario.final.status is RolloutStatus.FAILED
    assert "rollback failed" in scenario.final.reason
    assert service.store.lock_holder(scenario.host, "default") == scenario.rollout.rollout_id
    deadline = time.monotonic() + 20
    while _execution_status(stack, scenario) == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _execution_status(stack, scenario) == "FAILED"
    # The runbook's way out: recover finishes the rollback by hand and frees the target.
    recovered = service.recover(scenario.rollout.rollout_id, "oncall", "route checked by hand")
    assert recovered.status is RolloutStatus.FAILED
    assert service.store.get_route(scenario.host).weights()["canary"] == 0
    assert service.store.lock_holder(scenario.host, "default") is None


def test_concurrent_starts_on_one_target_run_exactly_one(stack, service):
    """Eight simultaneous starts on one target: one rollout, seven conflicts naming it."""
    scenario = Scenario("concurrent")
    stack.store().put_route(demo_route(scenario.host, 8001, 8002), expected_revision=None)
    plan = scenario.plan()
    barrier = threading.Barrier(8)

    def attempt(_: int) -> str:
        barrier.wait()
        try:
            return service.start(plan, "ci").rollout_id
        except TargetLockedError as exc:
            return f"locked:{exc.holder}"

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(attempt, range(8)))
    started = [a for a in answers if not a.startswith("locked:")]
    assert len(started) == 1
    assert all(a == f"locked:{started[0]}" for a in answers if a.startswith("locked:"))
    service.abort(started[0], "tests", "clean up")


def test_same_idempotency_key_returns_the_same_rollout(stack, service):
    """A retried start with the same key gets the first rollout; another plan is refused."""
    from orchestrator.service import IdempotencyConflict

    scenario = Scenario("idempotent")
    stack.store().put_route(demo_route(scenario.host, 8001, 8002), expected_revision=None)
    first = service.start(scenario.plan(), "ci", idempotency_key="build-1234")
    again = service.start(scenario.plan(), "ci", idempotency_key="build-1234")
    assert again.rollout_id == first.rollout_id
    other = Scenario("idempotent", weights=(20, 100)).plan()
    with pytest.raises(IdempotencyConflict):
        service.start(other, "ci", idempotency_key="build-1234")
    service.abort(first.rollout_id, "tests", "clean up")


def test_recover_frees_a_target_whose_execution_was_stopped_from_outside(stack, service):
    """A rollout whose execution was stopped by hand can be recovered; a live one cannot."""
    from orchestrator.service import ControlRefused

    scenario = Scenario("stopped-execution", weights=(10, 100))
    stack.store().put_route(demo_route(scenario.host, 8001, 8002), expected_revision=None)
    feeder = MetricsFeeder(stack.store(), stack.client("cloudwatch"), scenario.host, GOOD).start()
    try:
        document = scenario.plan().model_dump(mode="json")
        document["stages"][0]["bake"] = 600  # still baking when it is stopped
        document["stages"][0]["interval"] = 5
        rollout = service.start(RolloutPlan.model_validate(document), "tests")
        running = wait_for(service, rollout.rollout_id, lambda r: r.stage_index == 0)
        with pytest.raises(ControlRefused, match="use abort"):
            service.recover(rollout.rollout_id, "oncall", "too early")
        service.sfn.stop_execution(executionArn=running.execution_arn, cause="stopped by hand")
        recovered = service.recover(rollout.rollout_id, "oncall", "execution stopped in console")
    finally:
        feeder.stop()
    assert recovered.status is RolloutStatus.ROLLED_BACK
    assert "execution ABORTED" in recovered.reason
    assert service.store.get_route(scenario.host).weights()["canary"] == 0
    assert service.store.lock_holder(scenario.host, "default") is None
