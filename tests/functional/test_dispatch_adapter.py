"""Functional tests for orchestrator.local.dispatch: moto invoking handlers in-process.

A real moto server (threaded, 127.0.0.1, ephemeral port) with its Step Functions
interpreter switched on, so the state machine calls Lambda the way the local stack does.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests

from orchestrator.local.dispatch import InProcessLambdas

_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
        }
    ],
}


def _double(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "doubled": event["n"] * 2,
        "function": context.function_name,
        "request_id": context.aws_request_id,
    }


def _explode(event: dict[str, Any], context: Any) -> dict[str, Any]:
    raise ValueError(f"cannot handle n={event.get('n')}")


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "runs in-process")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def moto_server() -> Iterator[str]:
    """One moto server for this module, with state machines actually executed."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        requests.post(
            f"{endpoint}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=10,
        ).raise_for_status()
        yield endpoint
    finally:
        server.stop()


@pytest.fixture(scope="module")
def role(moto_server: str) -> str:
    """A role Lambda and Step Functions may assume (moto checks the trust policy)."""
    iam = _client(moto_server, "iam")
    arn: str = iam.create_role(
        RoleName="edgeshift-dispatch-test", AssumeRolePolicyDocument=json.dumps(_TRUST)
    )["Role"]["Arn"]
    return arn


@pytest.fixture
def endpoint(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The server's URL, with MOTO_PORT set so the ASL interpreter calls back into it."""
    monkeypatch.setenv("MOTO_PORT", moto_server.rsplit(":", 1)[1])
    return moto_server


def _client(endpoint: str, service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


@pytest.fixture
def functions(endpoint: str, role: str) -> Iterator[tuple[InProcessLambdas, dict[str, str]]]:
    """'double' and 'explode' registered in moto and served by the in-process adapter."""
    lambdas = _client(endpoint, "lambda")
    arns = {}
    for name in ("double", "explode", "unregistered"):
        with contextlib.suppress(lambdas.exceptions.ResourceNotFoundException):
            lambdas.delete_function(FunctionName=name)
        arns[name] = lambdas.create_function(
            FunctionName=name,
            Runtime="python3.12",
            Role=role,
            Handler="x.handler",
            Code={"ZipFile": _zip()},
        )["FunctionArn"]
    adapter = InProcessLambdas({"double": _double, "explode": _explode})
    adapter.install()
    try:
        yield adapter, arns
    finally:
        adapter.uninstall()


def _invoke(endpoint: str, name: str, event: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    response = _client(endpoint, "lambda").invoke(FunctionName=name, Payload=json.dumps(event))
    return response, json.loads(response["Payload"].read())


def test_registered_function_runs_in_process(
    endpoint: str, functions: tuple[InProcessLambdas, dict[str, str]]
) -> None:
    """GIVEN 'double' registered WHEN invoked through lambda.invoke THEN its result comes back."""
    adapter, _ = functions

    response, payload = _invoke(endpoint, "double", {"n": 21})

    assert "FunctionError" not in response
    assert payload["doubled"] == 42
    assert payload["function"] == "double"
    assert payload["request_id"]
    assert adapter.invocations == [("double", {"n": 21})]


def test_raising_function_reports_an_unhandled_error(
    endpoint: str, functions: tuple[InProcessLambdas, dict[str, str]]
) -> None:
    """GIVEN 'explode' raising ValueError WHEN invoked THEN FunctionError is Unhandled."""
    response, payload = _invoke(endpoint, "explode", {"n": 7})

    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "ValueError"
    assert payload["errorMessage"] == "cannot handle n=7"
    assert any("_explode" in line for line in payload["stackTrace"])


def test_unregistered_function_falls_through_to_moto(
    endpoint: str,
    functions: tuple[InProcessLambdas, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """GIVEN a function the adapter does not know WHEN invoked THEN moto's own invoke answers."""
    from moto.awslambda.models import LambdaFunction

    adapter, _ = functions
    # Stand in for moto's Docker runner so the fall-through is observable without Docker.
    monkeypatch.setattr(
        LambdaFunction, "_invoke_lambda", lambda self, event=None: ('"from moto"', False, "")
    )

    response, payload = _invoke(endpoint, "unregistered", {"n": 1})

    assert payload == "from moto"
    assert "FunctionError" not in response
    assert adapter.invocations == []


def test_uninstall_restores_moto_invoke(endpoint: str) -> None:
    """GIVEN an adapter installed then uninstalled WHEN checked THEN moto's invoke is back."""
    from moto.awslambda.models import LambdaFunction

    original = LambdaFunction.invoke
    adapter = InProcessLambdas({"double": _double})
    adapter.install()
    patched = LambdaFunction.invoke
    adapter.uninstall()

    assert patched is not original
    assert LambdaFunction.invoke is original


def _wait_for(sfn: Any, execution_arn: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described: dict[str, Any] = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.1)
    raise AssertionError(f"execution {execution_arn} still running after {timeout}s")


def test_state_machine_task_and_catch_see_lambda_results_and_errors(
    endpoint: str, functions: tuple[InProcessLambdas, dict[str, str]], role: str
) -> None:
    """GIVEN Double then Explode with a Catch WHEN executed THEN output has result and error."""
    adapter, arns = functions
    definition = {
        "StartAt": "Double",
        "States": {
            "Double": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arns["double"], "Payload.$": "$"},
                "ResultSelector": {"doubled.$": "$.Payload.doubled"},
                "ResultPath": "$.double",
                "Next": "Explode",
            },
            "Explode": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": arns["explode"], "Payload.$": "$"},
                "ResultPath": "$.never",
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Caught"}
                ],
                "End": True,
            },
            "Caught": {"Type": "Succeed"},
        },
    }
    sfn = _client(endpoint, "stepfunctions")
    machine = sfn.create_state_machine(
        name=f"dispatch-test-{time.time_ns()}", definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]

    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"n": 5}))
    described = _wait_for(sfn, execution["executionArn"])

    assert described["status"] == "SUCCEEDED"
    output = json.loads(described["output"])
    assert output["n"] == 5
    assert output["double"] == {"doubled": 10}
    assert "never" not in output
    assert output["error"]["Error"] == "ValueError"
    assert "cannot handle n=5" in output["error"]["Cause"]
    assert [name for name, _ in adapter.invocations] == ["double", "explode"]
    history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
    types = [event["type"] for event in history]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"
    assert types.count("TaskSucceeded") == 1
    assert types.count("TaskFailed") == 1
    assert types.index("TaskSucceeded") < types.index("TaskFailed")
