"""Fault injection on the local stack, for the rows of the reliability matrix that no other
test covers (see matrix.py for every row and where it is tested).

Faults are injected into the real task handlers per host, the real ASL runs in moto's
interpreter, and each test checks the documented end state, the lock, and that the route's
weights agree with the last weights in the audit trail.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from orchestrator import service as service_module
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.local.stack import LocalStack
from orchestrator.models import Rollout, RolloutPlan, RolloutStatus
from orchestrator.service import ControlRefused, RolloutService, WakeFailed
from orchestrator.store import StaleWriteError
from orchestrator.workflow import step

pytestmark = pytest.mark.integration


class InjectedFault(RuntimeError):
    pass


def _plan(host: str, bake: int = 3, interval: int = 1) -> RolloutPlan:
    document = demo_plan(demo_route(host, 8001, 8002)).model_dump(mode="json")
    document["stages"] = [{"weight": w, "bake": bake, "interval": interval} for w in (10, 50, 100)]
    return RolloutPlan.model_validate(document)


# host -> task suffix -> how many more calls fail (-1: all); ("after", n): fail after the work
FAULTS: dict[str, dict[str, Any]] = {
    "rollback-flaky.rel.edgeshift.test": {"analyze": -1, "rollback": 2},
    "crash-after-weights.rel.edgeshift.test": {"apply-stage": ("after", 1)},
}


def _inject(stack: LocalStack) -> None:
    store = stack.store()
    lock = threading.Lock()
    for name, handler in list(stack.lambdas.handlers.items()):
        suffix = name.removeprefix("edgeshift-")

        def faulty(event: dict[str, Any], context: Any, _h=handler, _s=suffix) -> Any:
            faults = FAULTS.get(store.get_rollout(event["rollout_id"]).plan.target.host, {})
            with lock:
                left = faults.get(_s, 0)
                after = isinstance(left, tuple)
                count = left[1] if after else left
                if count:
                    faults[_s] = ("after", count - 1) if after else (count - 1 if count > 0 else -1)
            if count and not after:
                raise InjectedFault(f"injected into {_s}")
            result = _h(event, context)
            if count and after:
                raise InjectedFault(f"{_s} crashed after its write")
            return result

        stack.lambdas.handlers[name] = faulty


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        _inject(running)
        yield running


@pytest.fixture(scope="module")
def service(stack: LocalStack) -> RolloutService:
    return RolloutService(stack.store(), stack.client("stepfunctions"), stack.state_machine_arn)


def _wait(
    service: RolloutService, rollout_id: str, check: Callable[[Rollout], bool], timeout: float = 60
) -> Rollout:
    deadline = time.monotonic() + timeout
    while True:
        rollout = service.get(rollout_id)
        if check(rollout) or time.monotonic() > deadline:
            return rollout
        time.sleep(0.2)


def _start(stack: LocalStack, service: RolloutService, host: str, **plan: Any) -> str:
    stack.store().put_route(demo_route(host, 8001, 8002), expected_revision=None)
    return service.start(_plan(host, **plan), "reliability").rollout_id


def _weights_agree_with_audit(service: RolloutService, rollout_id: str, host: str) -> None:
    written = [e.detail["weights"] for e in service.events(rollout_id) if "weights" in e.detail]
    assert written, "no weights in the audit trail"
    assert service.store.get_route(host).weights() == written[-1]


def test_a_rollback_that_fails_twice_then_succeeds_ends_rolled_back(stack, service):
    """GIVEN Analyze failing and Rollback failing twice WHEN the workflow retries THEN the
    rollout ends ROLLED_BACK, stable at 100%, lock released, weights equal to the audit."""
    host = "rollback-flaky.rel.edgeshift.test"
    rollout_id = _start(stack, service, host)
    final = _wait(service, rollout_id, lambda r: r.status.is_final)
    assert final.status is RolloutStatus.ROLLED_BACK, final.reason
    assert FAULTS[host]["rollback"] == 0  # both injected failures were used
    assert service.store.get_route(host).weights()["canary"] == 0
    assert service.store.lock_holder(host, "default") is None
    _weights_agree_with_audit(service, rollout_id, host)


def test_a_crash_between_writing_weights_and_returning_rolls_back_consistently(stack, service):
    """GIVEN ApplyStage crashing after its weights+audit transaction WHEN caught THEN the
    rollout rolls back, and the route and the audit trail agree at every step."""
    host = "crash-after-weights.rel.edgeshift.test"
    rollout_id = _start(stack, service, host)
    final = _wait(service, rollout_id, lambda r: r.status.is_final)
    assert final.status is RolloutStatus.ROLLED_BACK, final.reason
    kinds = [e.kind for e in service.events(rollout_id)]
    assert kinds.index("stage_applied") < kinds.index("rolled_back")
    assert kinds.count("stage_applied") == 1  # the write happened exactly once
    assert service.store.lock_holder(host, "default") is None
    _weights_agree_with_audit(service, rollout_id, host)


def test_concurrent_pause_abort_promote_one_wins_the_others_are_refused(stack, service):
    """GIVEN a running rollout WHEN pause, abort and promote arrive from six threads at once
    THEN one request is recorded, or one pause/promote and then one abort in its place (an
    abort is never refused for a pending pause or promote); the others get a clear refusal,
    the audit shows the order."""
    host = "control-race.rel.edgeshift.test"
    rollout_id = _start(stack, service, host, bake=300, interval=30)
    # After the first stage is applied the workflow waits 30 s: only the people write.
    _wait(service, rollout_id, lambda r: r.stage_started_at is not None)
    barrier = threading.Barrier(6)
    verbs = ["pause", "abort", "promote"] * 2

    def attempt(index: int) -> str:
        barrier.wait()
        try:
            getattr(service, verbs[index])(rollout_id, f"oncall-{index}", "concurrent")
            return f"ok:{index}"
        except (ControlRefused, StaleWriteError) as exc:
            assert str(exc), "a refusal must say why"
            return f"refused: {exc}"

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(attempt, range(6)))
    winners = [int(a.split(":")[1]) for a in answers if a.startswith("ok:")]
    requested = [e for e in service.events(rollout_id) if e.kind == "control_requested"]
    assert sorted(e.actor for e in requested) == sorted(f"oncall-{w}" for w in winners)
    aborts = [w for w in winners if verbs[w] == "abort"]
    others = [w for w in winners if verbs[w] != "abort"]
    assert len(aborts) <= 1 and len(others) <= 1 and winners, answers
    if len(winners) == 2:  # the abort came second and took the other's place
        assert requested[-1].actor == f"oncall-{aborts[0]}", answers
        assert requested[-1].detail["superseded"]["actor"] == f"oncall-{others[0]}"
        control = service.get(rollout_id).control
        assert control is not None and control.action == "abort"
    seqs = [e.seq for e in service.events(rollout_id)]
    assert seqs == sorted(seqs) == list(range(1, len(seqs) + 1))
    _end(service, rollout_id)


def _end(service: RolloutService, rollout_id: str) -> None:
    rollout = service.get(rollout_id)
    if not rollout.status.is_final:
        rollout = _wait(service, rollout_id, lambda r: r.status.is_final or r.status.is_waiting)
        if rollout.status.is_waiting:
            service.abort(rollout_id, "reliability", "end of test")
    _wait(service, rollout_id, lambda r: r.status.is_final, timeout=60)


def test_a_pause_that_lands_during_an_analysis_is_honoured(stack, service, monkeypatch):
    """GIVEN a pause committed while Analyze is between reading and writing the rollout
    WHEN Analyze commits THEN the rollout is PAUSED at the next look, not rolled back."""
    host = "pause-during-analyze.rel.edgeshift.test"
    rollout_id = _start(stack, service, host, bake=300, interval=2)
    real = step.evaluate  # the Analyze task's look reads the rollout, then evaluates
    sent = threading.Event()

    def evaluate_then_pause(rollout: Rollout, *args: Any, **kwargs: Any) -> Any:
        if rollout.rollout_id == rollout_id and not sent.is_set():
            sent.set()
            service.pause(rollout_id, "oncall", "looking at a dashboard")
        return real(rollout, *args, **kwargs)

    monkeypatch.setattr(step, "evaluate", evaluate_then_pause)
    final = _wait(service, rollout_id, lambda r: r.status.is_final or r.status.is_waiting)
    try:
        assert sent.is_set()
        assert final.status is RolloutStatus.PAUSED, final.reason
    finally:
        _end(service, rollout_id)


def test_rotated_datadog_keys_are_used_once_the_secret_cache_expires(stack, monkeypatch):
    """GIVEN a warm provider WHEN the keys are rotated and the 5-minute secret cache has
    expired THEN the provider authenticates with the new keys."""
    from aws_lambda_powertools.utilities import parameters

    from orchestrator.analysis.evaluate import provider_for
    from orchestrator.analysis.providers.datadog import HOST_OVERRIDE
    from orchestrator.local import datadog as local_datadog
    from orchestrator.local.demo import demo_analysis
    from orchestrator.models.analysis import AnalysisSpec

    endpoint = local_datadog.DatadogEndpoint().start()
    monkeypatch.setenv(HOST_OVERRIDE, endpoint.url)
    secrets = stack.client("secretsmanager")
    analysis = demo_analysis("datadog")
    analysis["datadog"] |= {
        "api_key_secret": "edgeshift/datadog/rel-api",
        "app_key_secret": "edgeshift/datadog/rel-app",
    }
    spec = AnalysisSpec.model_validate(analysis)
    try:
        secrets.create_secret(Name="edgeshift/datadog/rel-api", SecretString=local_datadog.API_KEY)
        secrets.create_secret(Name="edgeshift/datadog/rel-app", SecretString=local_datadog.APP_KEY)
        now = datetime.now(UTC)
        assert provider_for(spec).check([], now) == []
        secrets.put_secret_value(SecretId="edgeshift/datadog/rel-api", SecretString="rotated-api")
        secrets.put_secret_value(SecretId="edgeshift/datadog/rel-app", SecretString="rotated-app")
        monkeypatch.setattr(local_datadog, "API_KEY", "rotated-api")
        monkeypatch.setattr(local_datadog, "APP_KEY", "rotated-app")
        parameters.clear_caches()  # the secrets' max_age has passed
        assert provider_for(spec).check([], now) == []
    finally:
        endpoint.stop()


class _ThrottledWakes:
    """A Step Functions client whose first ``failures`` SendTaskSuccess calls are throttled."""

    def __init__(self, client: Any, failures: int) -> None:
        self._client, self.failures, self.sent = client, failures, 0

    def send_task_success(self, **kwargs: Any) -> Any:
        self.sent += 1
        if self.failures:
            self.failures -= 1
            raise ClientError(
                {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                "SendTaskSuccess",
            )
        return self._client.send_task_success(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _paused(stack: LocalStack, service: RolloutService, host: str) -> str:
    rollout_id = _start(stack, service, host, bake=2, interval=1)
    deadline = time.monotonic() + 30
    while "stage_applied" not in {e.kind for e in service.events(rollout_id)}:
        assert time.monotonic() < deadline, "no stage applied"
        time.sleep(0.1)
    service.pause(rollout_id, "oncall", "checking dashboards")
    paused = _wait(service, rollout_id, lambda r: r.status.is_waiting or r.status.is_final)
    assert paused.status is RolloutStatus.PAUSED, paused.reason
    return rollout_id


@pytest.mark.parametrize("failures", [1, 2])
def test_a_throttled_wake_is_retried_and_the_rollout_goes_on(stack, failures, monkeypatch):
    """GIVEN a PAUSED rollout WHEN promote's SendTaskSuccess is throttled once or twice
    THEN it is sent again at once and the rollout ends PROMOTED."""
    monkeypatch.setattr(service_module, "WAKE_BACKOFF", 0.01)
    sfn = _ThrottledWakes(stack.client("stepfunctions"), failures)
    service = RolloutService(stack.store(), sfn, stack.state_machine_arn)
    rollout_id = _paused(stack, service, f"throttled-wake-{failures}.rel.edgeshift.test")
    service.promote(rollout_id, "oncall", "dashboards are fine")
    final = _wait(service, rollout_id, lambda r: r.status.is_final)
    assert final.status is RolloutStatus.PROMOTED, final.reason
    assert sfn.sent == failures + 1
    assert final.task_token is None


def test_a_lost_wake_is_resent_by_the_next_request(stack, monkeypatch):
    """GIVEN a PAUSED rollout WHEN every try of resume's SendTaskSuccess fails (the request
    is recorded, the execution stays parked) THEN the token is kept, and the same resume
    again sends the wake: the execution goes on to its next look and ends, not stranded
    until max_pause (no traffic here, so that look rolls it back)."""
    monkeypatch.setattr(service_module, "WAKE_BACKOFF", 0.01)
    sfn = _ThrottledWakes(stack.client("stepfunctions"), service_module.WAKE_ATTEMPTS)
    service = RolloutService(stack.store(), sfn, stack.state_machine_arn)
    rollout_id = _paused(stack, service, "lost-wake.rel.edgeshift.test")
    with pytest.raises(WakeFailed):
        service.resume(rollout_id, "oncall", "dashboards are fine")
    stranded = service.get(rollout_id)
    assert stranded.status is RolloutStatus.RUNNING
    assert stranded.task_token, "the token is kept until the wake is accepted"
    execution = stack.client("stepfunctions").describe_execution(
        executionArn=stranded.execution_arn
    )
    assert execution["status"] == "RUNNING"
    service.resume(rollout_id, "oncall", "dashboards are fine")
    final = _wait(service, rollout_id, lambda r: r.status.is_final)
    assert final.status.is_final, final.status
    kinds = [e.kind for e in service.events(rollout_id)]
    assert kinds.count("resumed") == 1
    assert kinds.index("woken") > kinds.index("resumed")
    assert kinds.count("analysis") > kinds[: kinds.index("resumed")].count("analysis")


def test_an_abort_after_a_lost_wake_is_honoured(stack, monkeypatch):
    """GIVEN resume's wake lost WHEN the operator aborts instead THEN the wake is resent and
    the abort, recorded as a request, rolls the rollout back."""
    monkeypatch.setattr(service_module, "WAKE_BACKOFF", 0.01)
    sfn = _ThrottledWakes(stack.client("stepfunctions"), service_module.WAKE_ATTEMPTS)
    service = RolloutService(stack.store(), sfn, stack.state_machine_arn)
    rollout_id = _paused(stack, service, "lost-wake-abort.rel.edgeshift.test")
    with pytest.raises(WakeFailed):
        service.resume(rollout_id, "oncall", "dashboards are fine")
    service.abort(rollout_id, "oncall", "changed my mind")
    final = _wait(service, rollout_id, lambda r: r.status.is_final)
    assert final.status is RolloutStatus.ROLLED_BACK, final.reason
