"""Every AWS call of every task failing for real, on one local stack, one host per fault.

The faults are injected inside botocore's request loop (``orchestrator.local.faults``): a
throttle, a 5xx or a timeout before the call reaches the service, or after it took effect
(its answer lost), on one attempt (botocore's retries must hide it) or on every attempt
(the task's own error path: the state machine's Catch and Rollback). Beside them: the
task's clock two minutes off, a conditional write losing a race, and an abort whose
SendTaskFailure fails. All cases start at once, then each test reads its case's outcome
and checks what every row of the reliability matrix promises:

- nothing lost: every version of the rollout has its audit event, and the route's
  weights are the last weights in the audit trail;
- no bad release promoted, and a healthy one rolled back only with the cause in its reason;
- a way forward: the rollout ends in a final state, or ``recover`` can finish it;
- the target's lock freed on every final state but FAILED.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import pytest
from call_fault_cases import (
    BAD,
    CALLS,
    CASES,
    CLEAN,
    ONCE,
    PERSISTENT,
    SKEWS,
    WAKES,
    Case,
    wait_for,
)

from orchestrator import service as service_module
from orchestrator.local.demo import demo_route
from orchestrator.local.faults import CallFaults, current_function, current_scope
from orchestrator.local.feeder import MetricsFeeder
from orchestrator.local.stack import LocalStack
from orchestrator.local.traffic import put_counts
from orchestrator.models import RolloutStatus, RouteRule
from orchestrator.service import RolloutService
from orchestrator.store import Store, codec

pytestmark = [pytest.mark.integration, pytest.mark.alone]


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running


@pytest.fixture(scope="module")
def faults(stack: LocalStack) -> Iterator[CallFaults]:
    store = stack.store()
    hosts: dict[str, str] = {}

    def host_of(event: dict[str, Any]) -> str | None:
        rollout_id = str(event.get("rollout_id", ""))
        if rollout_id not in hosts:
            hosts[rollout_id] = store.get_rollout(rollout_id).plan.target.host
        return hosts[rollout_id]

    injector = CallFaults(host_of)
    injector.wrap(stack.lambdas)
    injector.install()
    yield injector
    injector.uninstall()


@pytest.fixture(scope="module")
def skewed_clock() -> Iterator[None]:
    """The tasks' clock (``utcnow``) runs ``case.skew`` off in that case's scope only; the
    tests, the service and the metrics keep the true time."""
    from orchestrator.models import rollout as rollout_model

    true = rollout_model.utcnow
    skewed = {case.host: case for case in CASES.values() if case.skew}

    def task_clock() -> datetime:
        case = skewed.get(current_scope() or "")
        if case is None or case.skew is None:
            return true()
        if case.skewed is not None and current_function() not in case.skewed:
            return true()
        return true() + case.skew

    with pytest.MonkeyPatch.context() as patch:
        for module in list(sys.modules.values()):
            name = getattr(module, "__name__", "")
            if name.startswith("orchestrator") and getattr(module, "utcnow", None) is true:
                patch.setattr(module, "utcnow", task_clock)
        yield


@pytest.fixture(scope="module")
def service(stack: LocalStack, faults: CallFaults) -> RolloutService:
    """Its clients are made after the hooks, so a case's control calls can fail too."""
    return RolloutService(stack.store(), stack.client("stepfunctions"), stack.state_machine_arn)


@pytest.fixture(scope="module")
def outcomes(stack, faults, skewed_clock, service) -> dict[str, Case]:
    for case in CASES.values():
        faults.add(case.host, *case.injected(service))

    store, cloudwatch = stack.store(), stack.client("cloudwatch")  # clients are thread-safe
    traffic = _Traffic(store, cloudwatch).start()

    def run(case: Case) -> None:
        began = time.monotonic()
        store.put_route(demo_route(case.host, 8001, 8002), expected_revision=None)
        feeder = MetricsFeeder(store, cloudwatch, case.host, case.canary, tick=_Traffic.TICK)
        put_counts(cloudwatch, _stable_history(feeder))
        traffic.add(feeder)
        try:
            case.rollout_id = service.start(case.plan(), "reliability").rollout_id
            if case.steer:
                case.steer(case, service, faults)
            case.final = wait_for(service, case.rollout_id, case.ended(stack, service), 120, 2.0)
        except BaseException as exc:
            case.error = exc
        finally:
            traffic.remove(case.host)
            case.notes["seconds"] = time.monotonic() - began

    started, cpu = time.monotonic(), time.process_time()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(service_module, "WAKE_BACKOFF", 0.05)
        try:
            with ThreadPoolExecutor(max_workers=len(CASES)) as pool:
                list(pool.map(run, CASES.values()))
        finally:
            traffic.stop()
    print(
        f"\n{len(CASES)} fault cases ran in {time.monotonic() - started:.0f} s "
        f"({time.process_time() - cpu:.0f} s of CPU)"
    )
    for case in CASES.values():
        final = case.final
        seen = f"{final.status.value}: {final.reason[:70]}" if final else repr(case.error)[:80]
        print(f"  {case.notes['seconds']:5.1f} s  {case.name:<52} {seen}")
    return CASES


class _Traffic:
    """Every case's counts from one thread. Each tick one BatchGetItem reads the live routes
    and PutMetricData publishes what each host's ``MetricsFeeder.tick_data`` makes of them:
    a feeder per host would cost two requests per host and tick."""

    TICK = 1.0

    def __init__(self, store: Store, cloudwatch: Any) -> None:
        self.store, self.cloudwatch = store, cloudwatch
        self._feeders: dict[str, tuple[MetricsFeeder, random.Random]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> _Traffic:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def add(self, feeder: MetricsFeeder) -> None:
        with self._lock:
            self._feeders[feeder.host] = (feeder, random.Random(feeder.seed))

    def remove(self, host: str) -> None:
        with self._lock:
            self._feeders.pop(host, None)

    def _run(self) -> None:
        while not self._stop.wait(self.TICK):
            with self._lock:
                feeders = dict(self._feeders)
            now, routes = time.time(), self._routes(list(feeders))
            data = [
                datum
                for host, (feeder, rng) in feeders.items()
                if host in routes
                for datum in feeder.tick_data(routes[host].weights(), rng, now)
            ]
            if data:
                put_counts(self.cloudwatch, data)

    def _routes(self, hosts: list[str]) -> dict[str, RouteRule]:
        table, routes = self.store.tables.routes, {}
        for first in range(0, len(hosts), 100):  # BatchGetItem reads up to 100 keys
            keys = [
                codec.to_attributes({"host": host, "path_rule": "default"})
                for host in hosts[first : first + 100]
            ]
            answer = self.store.client.batch_get_item(
                RequestItems={table: {"Keys": keys, "ConsistentRead": True}}
            )
            for item in answer["Responses"].get(table, []):
                route = codec.route_from_item(item)
                routes[route.host] = route
        return routes


def _stable_history(feeder: MetricsFeeder) -> list[dict[str, Any]]:
    """The stable fleet's last 30 s of counts, for preflight's noise read (``noise_history``)."""
    rng, now = random.Random(feeder.host), time.time()
    return [
        datum
        for ago in range(30, 0, -1)
        for datum in feeder.tick_data({"stable": 10_000}, rng, now - ago)
    ]


def _outcome(outcomes: dict[str, Case], name: str, faults: CallFaults) -> Case:
    case = outcomes[name]
    if case.error is not None:
        raise case.error
    assert case.final is not None
    if case.calls or case.race:
        assert faults.fired[case.host], f"no fault fired for {name}: the case proves nothing"
    return case


def _promises(case: Case, service: RolloutService, stack: LocalStack) -> None:
    """What every row promises (see the module's docstring)."""
    final = case.final
    assert final is not None
    events = service.events(case.rollout_id)
    assert [e.seq for e in events] == list(range(1, final.version + 1)), "a change without audit"
    written = [e.detail["weights"] for e in events if "weights" in e.detail]
    route = service.store.get_route(case.host)
    assert route is not None
    assert route.weights() == (written[-1] if written else {"canary": 0, "stable": 10_000})
    if case.canary is BAD:
        assert final.status is not RolloutStatus.PROMOTED
        assert route.weights()["canary"] == 0
    elif final.status is RolloutStatus.ROLLED_BACK:
        assert any(cause in final.reason for cause in case.causes), final.reason
    holder = service.store.lock_holder(case.host, "default")
    if final.status is RolloutStatus.FAILED:
        assert holder == case.rollout_id, "a FAILED rollout keeps its target"
    elif final.status.is_final:
        assert holder is None, f"{final.status} and the target still locked"
    else:  # the execution ended without a final record: recover must finish it
        recovered = service.recover(case.rollout_id, "oncall", "execution ended")
        assert recovered.status is RolloutStatus.ROLLED_BACK
        assert service.store.get_route(case.host).weights()["canary"] == 0
        assert service.store.lock_holder(case.host, "default") is None


def _check(outcomes, name, faults, service, stack) -> Case:
    case = _outcome(outcomes, name, faults)
    final = case.final
    if case.expect is None:
        assert not final.status.is_final, f"{final.status}: {final.reason}"
    else:
        assert final.status in (case.expect, *case.also), f"{final.status}: {final.reason}"
    _promises(case, service, stack)
    return case


@pytest.mark.parametrize("name", sorted(ONCE))
def test_each_call_of_a_task_failing_once_changes_nothing(outcomes, faults, service, stack, name):
    """GIVEN every AWS call of one task failing once (throttled, 5xx or timed out, before
    it reaches the service or after it took effect) WHEN botocore retries it THEN the
    rollout ends as it would without the fault: a healthy canary PROMOTED, a rollback
    ROLLED_BACK, a rollback that cannot finish FAILED with its lock kept."""
    case = _check(outcomes, name, faults, service, stack)
    if case.expect is RolloutStatus.FAILED:
        recovered = service.recover(case.rollout_id, "oncall", "route checked by hand")
        assert service.store.lock_holder(case.host, "default") is None, recovered


@pytest.mark.parametrize("name", sorted(PERSISTENT))
def test_a_call_failing_past_its_retries_takes_the_task_error_path(
    outcomes, faults, service, stack, name
):
    """GIVEN a call failing on every attempt WHEN the task gets botocore's error THEN the
    state machine catches it: rolled back with the error in the reason (a rollback is
    retried and ends ROLLED_BACK; a promote whose commit landed stays PROMOTED; a failed
    event publish changes nothing)."""
    _check(outcomes, name, faults, service, stack)


def test_a_promote_whose_answer_is_lost_every_time_ends_the_execution_as_promoted(
    outcomes, faults, service, stack
):
    """GIVEN Promote's commit landing while its answer is lost on every attempt WHEN the
    state machine catches the error into Rollback THEN the record stays PROMOTED and the
    execution's last state is Promoted, not RolledBack: what the console shows is what
    viewers get."""
    case = _check(
        outcomes, "promote-TransactWriteItems1-timeout-after-every-try", faults, service, stack
    )
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:") + f":{case.rollout_id}"
    sfn = stack.client("stepfunctions")
    deadline = time.monotonic() + 30
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution did not end"
        time.sleep(0.2)
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = [
        e["stateEnteredEventDetails"]["name"] for e in history if "StateEntered" in e["type"]
    ]
    assert "Rollback" in entered and entered[-1] == "Promoted", entered[-4:]


@pytest.mark.parametrize("name", sorted(SKEWS))
def test_the_task_clock_two_minutes_off(outcomes, faults, service, stack, name):
    """GIVEN the tasks' clock two minutes ahead of or behind the stored timestamps (the
    service's and CloudWatch's clocks are right) WHEN the rollout runs THEN a bad canary is
    never promoted and a healthy one is not rolled back without saying why."""
    _check(outcomes, name, faults, service, stack)


def test_a_route_changed_while_apply_stage_writes_is_refused_and_rolled_back(
    outcomes, faults, service, stack
):
    """GIVEN the route's revision moved on between ApplyStage's read and its transaction
    WHEN the transaction is cancelled (ConditionalCheckFailed on the route) THEN no weight
    is written over the other change, and the rollout rolls back saying so."""
    case = _check(outcomes, "race-route", faults, service, stack)
    kinds = [e.kind for e in service.events(case.rollout_id)]
    assert "stage_applied" not in kinds


def test_a_pause_that_wins_the_race_with_apply_stage_is_honoured(outcomes, faults, service, stack):
    """GIVEN a pause committed between ApplyStage's read and its transaction WHEN the
    transaction is cancelled (the rollout's version moved on) THEN ApplyStage redoes its
    step on a fresh read: the pause is honoured, and after resume the canary is promoted."""
    case = _check(outcomes, "race-pause", faults, service, stack)
    kinds = [e.kind for e in service.events(case.rollout_id)]
    assert kinds.index("paused") < kinds.index("resumed") < kinds.index("promoted")


@pytest.mark.parametrize("name", sorted(WAKES))
def test_abort_of_a_paused_rollout_whose_send_task_failure_fails(
    outcomes, faults, service, stack, name
):
    """GIVEN a PAUSED rollout WHEN its abort's SendTaskFailure is throttled, fails on every
    try, or is carried out with its answer lost THEN the abort is honoured: ROLLED_BACK
    with the abort's reason, within one re-read interval of the park at the latest."""
    case = _check(outcomes, name, faults, service, stack)
    assert "aborted by oncall" in case.final.reason
    assert case.notes["abort"] == case.expect_abort
    assert case.notes["abort_to_end"] < 45, "not carried out by the park's next re-read"


def test_the_fault_table_names_every_call_each_task_makes(outcomes, faults, service, stack):
    """GIVEN the calls each task made in rollouts without a fault of its own WHEN compared
    with the table the cases are built from THEN they are the same calls (a task that gains
    a call fails this test until the call gets its rows)."""
    source = {task: "clean" for task in CALLS} | {
        "rollback": "clean-rollback",
        "record-failure": "clean-record-failure",
    }
    for name in CLEAN:
        _check(outcomes, name, faults, service, stack)
    for task, name in source.items():
        counts: dict[str, int] = {}
        made: set[tuple[str, int]] = set()
        for function, operation in faults.calls[outcomes[name].host]:
            if function == task:
                counts[operation] = counts.get(operation, 0) + 1
                made.add((operation, counts[operation]))
        assert {op for op, _ in made} == {op for op, _ in CALLS[task]}, task
        if task != "analyze":  # once per look: its table names operations, not calls
            assert made == set(CALLS[task]), task
