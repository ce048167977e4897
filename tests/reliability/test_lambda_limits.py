"""Lambda's and Step Functions' limits on the local stack, for the reliability matrix.

The dispatcher runs each task under its deployed timeout and answers a timed-out invoke
as Lambda does (``Sandbox.Timedout``), refusing the handler's AWS calls past the deadline;
it refuses payloads over Lambda's 6 MB invoke limits; moto's interpreter fails a task
whose result exceeds Step Functions' 256 KB with the terminal ``States.DataLimitExceeded``.
The functions here get short timeouts, so a task can outlive one in a few seconds.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from botocore.exceptions import ClientError

from orchestrator.local import limits
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.local.dispatch import Invocation
from orchestrator.local.feeder import MetricsFeeder, constant
from orchestrator.local.stack import LocalStack
from orchestrator.models import Rollout, RolloutPlan, RolloutStatus
from orchestrator.service import RolloutService
from orchestrator.workflow import transitions
from orchestrator.workflow.definition import TASKS

pytestmark = pytest.mark.integration

TIMEOUT = 5  # seconds, for the tasks that time out here; the others keep the deployed ones
HANDLERS = {suffix: dotted for suffix, dotted in TASKS.values()}
SHORT = ("begin", "apply-stage", "analyze", "promote")
TIMED_OUT = re.compile(
    rf"RequestId: [0-9a-f-]{{36}} Error: Task timed out after {TIMEOUT}\.00 seconds"
)

# host -> the task whose commit comes after the function's timeout
SLOW_COMMIT = {f"slow-{task}.limits.edgeshift.test": task for task in SHORT}
BIG_OUTPUT = "big-output.limits.edgeshift.test"  # ApplyStage answers over 256 KB
HEALTHY = "healthy.limits.edgeshift.test"
# The promote-timeout rollout must pass every stage first; so must the healthy one.
FED = (HEALTHY, "slow-promote.limits.edgeshift.test")

_SLOW: contextvars.ContextVar[Any] = contextvars.ContextVar("slow_commit", default=None)
REQUEST_IDS: dict[str, str] = {}  # host -> request id of its timed-out invocation


def _plan(host: str) -> RolloutPlan:
    document = demo_plan(demo_route(host, 8001, 8002)).model_dump(mode="json")
    document["stages"] = [{"weight": w, "bake": 3, "interval": 1} for w in (10, 50, 100)]
    return RolloutPlan.model_validate(document)


def _inject(stack: LocalStack) -> None:
    """A slow commit for its host's task; an oversized ApplyStage answer for BIG_OUTPUT."""
    store = stack.store()
    for name, handler in list(stack.lambdas.handlers.items()):
        suffix = name.removeprefix("edgeshift-")

        def wrapped(event: dict[str, Any], context: Any, _h=handler, _s=suffix) -> Any:
            host = store.get_rollout(event["rollout_id"]).plan.target.host
            if SLOW_COMMIT.get(host) == _s:
                REQUEST_IDS[host] = context.aws_request_id
                _SLOW.set(context)
            result = _h(event, context)
            if host == BIG_OUTPUT and _s == "apply-stage":
                return {**result, "padding": "x" * limits.STATE_PAYLOAD_LIMIT}
            return result

        stack.lambdas.handlers[name] = wrapped


def _slow_commit(real: Callable[..., Rollout]) -> Callable[..., Rollout]:
    def commit(*args: Any, **kwargs: Any) -> Rollout:
        context = _SLOW.get()
        if context is not None:  # sleep until just past the function's deadline
            time.sleep(context.get_remaining_time_in_millis() / 1000 + 0.3)
        return real(*args, **kwargs)

    return commit


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(transitions, "commit", _slow_commit(transitions.commit))
        timeouts = {HANDLERS[task]: TIMEOUT for task in SHORT}
        with LocalStack(timeouts=timeouts) as running:
            _inject(running)
            yield running


@pytest.fixture(scope="module")
def service(stack: LocalStack) -> RolloutService:
    return RolloutService(stack.store(), stack.client("stepfunctions"), stack.state_machine_arn)


def _wait(check: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.2)


def _execution(stack: LocalStack, rollout: Rollout) -> dict[str, Any]:
    sfn = stack.client("stepfunctions")
    arn = stack.state_machine_arn.replace(":stateMachine:", ":execution:")
    described: dict[str, Any] = sfn.describe_execution(executionArn=f"{arn}:{rollout.rollout_id}")
    return described


@pytest.fixture(scope="module")
def rollouts(stack: LocalStack, service: RolloutService) -> dict[str, str]:
    """Every rollout of this module at once, each on its host; host -> rollout id, once
    each has ended (its rollout final, or its execution no longer running)."""
    hosts = [*SLOW_COMMIT, BIG_OUTPUT, HEALTHY]
    feeders = []
    for host in hosts:
        stack.store().put_route(demo_route(host, 8001, 8002), expected_revision=None)
        if host in FED:
            feeders.append(
                MetricsFeeder(
                    stack.store(),
                    stack.client("cloudwatch"),
                    host,
                    constant(0.005),
                    max_seconds=150,
                ).start()
            )

    def run(host: str) -> str:
        rollout_id = service.start(_plan(host), "reliability").rollout_id

        def ended() -> bool:
            rollout = service.get(rollout_id)
            return rollout.status.is_final or _execution(stack, rollout)["status"] != "RUNNING"

        _wait(ended)
        return rollout_id

    try:
        with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
            return dict(zip(hosts, pool.map(run, hosts), strict=True))
    finally:
        for feeder in feeders:
            feeder.stop()


def _record(stack: LocalStack, request_id: str) -> Invocation:
    (record,) = [r for r in stack.lambdas.records if r.request_id == request_id]
    return record


def _task_errors(stack: LocalStack, rollout: Rollout) -> list[str]:
    history = stack.client("stepfunctions").get_execution_history(
        executionArn=rollout.execution_arn or _execution(stack, rollout)["executionArn"],
        maxResults=1000,
    )["events"]
    return [e["taskFailedEventDetails"]["error"] for e in history if e["type"] == "TaskFailed"]


def _weights_agree_with_audit(service: RolloutService, rollout_id: str, host: str) -> None:
    written = [e.detail["weights"] for e in service.events(rollout_id) if "weights" in e.detail]
    assert written, "no weights in the audit trail"
    assert service.store.get_route(host).weights() == written[-1]


# What each task would have recorded had its commit landed.
_WRITES = {
    "begin": "started",
    "apply-stage": "stage_applied",
    "analyze": "analysis",
    "promote": "promoted",
}


@pytest.mark.parametrize("task", SHORT)
def test_a_task_past_its_timeout_rolls_back(stack, service, rollouts, task):
    """GIVEN a task whose commit comes after its function's timeout WHEN the timeout passes
    THEN the ASL sees Sandbox.Timedout and its Catch rolls back (cause in the reason), the
    late commit is refused before it reaches AWS, and the target is freed."""
    host = f"slow-{task}.limits.edgeshift.test"
    rollout_id = rollouts[host]
    final = service.get(rollout_id)
    assert final.status is RolloutStatus.ROLLED_BACK, final.reason
    assert "Sandbox.Timedout" in final.reason
    assert f"Task timed out after {TIMEOUT}.00 seconds" in final.reason
    assert _task_errors(stack, final)[0] == "Sandbox.Timedout"
    assert "Rollback" in _states_entered(stack, final)  # the Catch took it
    record = _record(stack, REQUEST_IDS[host])
    assert record.outcome == "timed out"
    _wait(lambda: record.late_call is not None, timeout=10)
    assert record.late_call == "dynamodb:TransactWriteItems"
    assert _WRITES[task] not in [e.kind for e in service.events(rollout_id)]
    assert service.store.get_route(host).weights()["canary"] == 0
    assert service.store.lock_holder(host, "default") is None
    _weights_agree_with_audit(service, rollout_id, host)


def test_a_256_kb_state_output_fails_the_run(stack, service, rollouts):
    """GIVEN ApplyStage answering 256 KB (Lambda allows 6 MB) WHEN Step Functions takes
    its result THEN States.DataLimitExceeded fails the execution (States.ALL cannot catch
    it), the rollout keeps its lock, and recover sends everyone to stable and frees it."""
    rollout_id = rollouts[BIG_OUTPUT]
    stranded = service.get(rollout_id)
    execution = _execution(stack, stranded)
    assert execution["status"] == "FAILED"
    assert execution.get("error") == "States.DataLimitExceeded"
    entered = _states_entered(stack, stranded)
    assert "ApplyStage" in entered
    assert "Rollback" not in entered
    (answer,) = [
        r
        for r in stack.lambdas.records
        if r.function == "edgeshift-apply-stage" and r.event.get("rollout_id") == rollout_id
    ]
    assert answer.outcome == "succeeded"
    assert limits.STATE_PAYLOAD_LIMIT < answer.response_bytes < limits.INVOKE_RESPONSE_LIMIT
    assert stranded.status is RolloutStatus.RUNNING
    assert service.store.lock_holder(BIG_OUTPUT, "default") == rollout_id

    recovered = service.recover(rollout_id, "oncall", "execution failed: state output too big")

    assert recovered.status is RolloutStatus.ROLLED_BACK
    assert service.store.get_route(BIG_OUTPUT).weights()["canary"] == 0
    assert service.store.lock_holder(BIG_OUTPUT, "default") is None
    _weights_agree_with_audit(service, rollout_id, BIG_OUTPUT)


def _states_entered(stack: LocalStack, rollout: Rollout) -> list[str]:
    history = stack.client("stepfunctions").get_execution_history(
        executionArn=_execution(stack, rollout)["executionArn"], maxResults=1000
    )["events"]
    return [e["stateEnteredEventDetails"]["name"] for e in history if "StateEntered" in e["type"]]


def test_rollout_payloads_stay_under_256_kb(stack, service, rollouts):
    """GIVEN a rollout promoted on healthy traffic WHEN every invoke and every state of its
    execution is measured THEN each input and output is under a tenth of 256 KB."""
    rollout_id = rollouts[HEALTHY]
    final = service.get(rollout_id)
    assert final.status is RolloutStatus.PROMOTED, final.reason
    mine = [r for r in stack.lambdas.records if r.event.get("rollout_id") == rollout_id]
    assert {r.function.removeprefix("edgeshift-") for r in mine} >= {
        "begin",
        "apply-stage",
        "analyze",
        "promote",
    }
    budget = limits.STATE_PAYLOAD_LIMIT // 10
    for record in mine:
        assert record.request_bytes < budget, (record.function, record.request_bytes)
        assert record.response_bytes < budget, (record.function, record.response_bytes)
    history = stack.client("stepfunctions").get_execution_history(
        executionArn=final.execution_arn, maxResults=1000
    )["events"]
    states = [
        (e["stateEnteredEventDetails"], "input")
        for e in history
        if e["type"].endswith("StateEntered")
    ]
    states += [
        (e["stateExitedEventDetails"], "output")
        for e in history
        if e["type"].endswith("StateExited")
    ]
    assert {d["name"] for d, _ in states} >= {"Begin", "ApplyStage", "Wait", "Analyze", "Promote"}
    for details, field in states:
        assert len(details[field].encode()) < budget, (details["name"], field)


def _direct(stack: LocalStack, function: str, payload: bytes) -> tuple[dict[str, Any], Any]:
    response = stack.client("lambda").invoke(FunctionName=function, Payload=payload)
    return response, json.loads(response["Payload"].read())


@contextlib.contextmanager
def _serving(stack: LocalStack, function: str, handler: Callable[..., Any]) -> Iterator[None]:
    real = stack.lambdas.handlers[function]
    stack.lambdas.handlers[function] = handler
    try:
        yield
    finally:
        stack.lambdas.handlers[function] = real


def test_the_context_has_the_deployed_limits(stack, rollouts):
    """GIVEN Analyze (1,024 MB, timeout shortened to 5 s) and Rollback (256 MB, 30 s as
    synthesized) WHEN invoked THEN the context says so and its remaining time runs down."""

    def probe(event: dict[str, Any], context: Any) -> dict[str, Any]:
        first = context.get_remaining_time_in_millis()
        time.sleep(0.2)
        return {
            "memory": context.memory_limit_in_mb,
            "first": first,
            "later": context.get_remaining_time_in_millis(),
        }

    for function, memory, timeout_ms in (
        ("edgeshift-analyze", 1024, TIMEOUT * 1000),
        ("edgeshift-rollback", 256, 30_000),
    ):
        with _serving(stack, function, probe):
            _, seen = _direct(stack, function, b"{}")
        assert seen["memory"] == memory
        assert timeout_ms - 1000 < seen["first"] <= timeout_ms
        assert seen["first"] - seen["later"] >= 200


def test_a_timed_out_invoke_writes_nothing_late(stack, rollouts):
    """GIVEN a handler that writes after its 5 s timeout WHEN invoked directly THEN the
    answer is Lambda's Sandbox.Timedout function error and the write is refused."""
    host = "late-write.limits.edgeshift.test"

    def late_writer(event: dict[str, Any], context: Any) -> None:
        time.sleep(context.get_remaining_time_in_millis() / 1000 + 0.2)
        stack.store().put_route(demo_route(host, 8001, 8002), expected_revision=None)

    with _serving(stack, "edgeshift-analyze", late_writer):
        started = time.monotonic()
        response, error = _direct(stack, "edgeshift-analyze", b"{}")
        answered = time.monotonic() - started
        record = stack.lambdas.records[-1]
        _wait(lambda: record.late_call is not None, timeout=10)

    assert response["FunctionError"] == "Unhandled"
    assert set(error) == {"errorType", "errorMessage"}
    assert error["errorType"] == "Sandbox.Timedout"
    assert TIMED_OUT.fullmatch(error["errorMessage"]), error["errorMessage"]
    assert record.request_id in error["errorMessage"]
    assert TIMEOUT <= answered < TIMEOUT + 2
    # The first call after the timeout is refused, whichever it is (the route write reads
    # the target's lock before its transaction), so the write never lands.
    assert record.late_call in {"dynamodb:GetItem", "dynamodb:TransactWriteItems"}
    assert stack.store().get_route(host) is None


def test_a_request_over_6_mb_is_a_413(stack, rollouts):
    """GIVEN a request of 6,291,456 bytes WHEN invoked THEN Lambda's 413 refuses it; one
    byte less runs the function."""
    pad = limits.INVOKE_REQUEST_LIMIT - len(b'{"pad": ""}')
    with pytest.raises(ClientError) as refused:
        _direct(stack, "edgeshift-analyze", json.dumps({"pad": "x" * pad}).encode())
    error = refused.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert error["Error"]["Code"] == "RequestEntityTooLargeException"
    assert error["Error"]["Message"] == (
        "Request must be smaller than 6291456 bytes for the InvokeFunction operation"
    )
    with _serving(stack, "edgeshift-analyze", lambda event, context: len(event["pad"])):
        response, answer = _direct(
            stack, "edgeshift-analyze", json.dumps({"pad": "x" * (pad - 1)}).encode()
        )
    assert "FunctionError" not in response
    assert answer == pad - 1


def test_a_response_over_6_mb_is_an_error(stack, rollouts):
    """GIVEN a handler answering more than 6,291,556 bytes WHEN invoked THEN the answer is
    Lambda's Function.ResponseSizeTooLarge error, not the payload."""
    oversized = "x" * limits.INVOKE_RESPONSE_LIMIT
    with _serving(stack, "edgeshift-analyze", lambda event, context: oversized):
        response, error = _direct(stack, "edgeshift-analyze", b"{}")
    assert response["FunctionError"] == "Unhandled"
    assert error == {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": "Response payload size exceeded maximum allowed payload size "
        "(6291556 bytes).",
    }


def test_the_fallback_limits_are_synthesized():
    """GIVEN the synthesized template WHEN its task functions' Timeout and MemorySize are
    read THEN they are Analyze 60 s / 1,024 MB and 30 s / 256 MB for the others, the
    values the local stack uses without a template."""
    from infra.cfn import synthesize

    synthesized = limits.limits_from_template(synthesize().orchestrator.to_json())
    tasks = {dotted: synthesized[dotted] for dotted in HANDLERS.values()}
    assert tasks[HANDLERS["analyze"]] == limits.FunctionLimits(60, 1024)
    assert tasks[HANDLERS["apply-stage"]] == limits.FunctionLimits(30, 256)
    assert tasks == dict(limits.FALLBACK)
