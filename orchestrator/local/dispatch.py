"""Run the project's Lambda handlers in-process when moto's Step Functions interpreter
invokes them.

moto runs Lambda functions in Docker, which the local stack does not have, and its
Docker-free "simple" mode returns canned answers without running any code. So for the
functions registered here, ``LambdaFunction.invoke`` calls the real handler in this
process and answers the way the Lambda service does, so the state machine's Retry and
Catch see the same error names they would in AWS:

- the handler's JSON on success;
- ``{"errorType", "errorMessage"}`` with ``X-Amz-Function-Error: Unhandled`` when it raises;
- at the function's configured timeout, ``Sandbox.Timedout`` with "RequestId: <id> Error:
  Task timed out after <timeout> seconds", whatever the handler is still doing. Its later
  AWS calls are refused (:func:`iam.enforce_deadlines`): in Lambda its sandbox is stopped;
- a request over Lambda's 6 MB invoke limit is refused with a 413
  ``RequestEntityTooLargeException``, and a response over it is the function error
  ``Function.ResponseSizeTooLarge``, with the messages Lambda gives.

Step Functions' own 256 KB limit on a task's result is checked by moto's interpreter,
which fails the state with ``States.DataLimitExceeded``; :func:`limits.data_limit_is_terminal`
makes that error uncatchable by ``States.ALL``, as it is in AWS.

The handler's context carries the function's configured memory, but memory is not
limited or measured: every handler shares this one process and its threads, so neither a
cap nor a per-invocation peak would mean what Lambda's does.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda import models as lambda_models
from moto.awslambda.exceptions import LambdaClientError

from . import limits
from .iam import SandboxStopped, acting_as, enforce_deadlines

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class InvocationContext:
    """The attributes of the Lambda context object that handlers and powertools read."""

    function_name: str
    invoked_function_arn: str
    memory_limit_in_mb: int = 256
    function_version: str = "$LATEST"
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = ""
    log_stream_name: str = ""
    timeout_seconds: float = 60.0
    started: float = field(default_factory=time.monotonic)

    @property
    def deadline(self) -> float:
        """When the invocation times out, on the ``time.monotonic()`` clock."""
        return self.started + self.timeout_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.monotonic()) * 1000))


@dataclass
class Invocation:
    """One invocation as the dispatcher saw it: payload sizes in bytes, how it ended."""

    function: str
    request_id: str
    event: dict[str, Any]
    request_bytes: int
    response_bytes: int = 0
    outcome: str = "running"  # succeeded, failed, timed out, response too large
    seconds: float = 0.0
    late_call: str | None = None  # the AWS call refused after the deadline, if any


def load_handler(dotted: str) -> Handler:
    module, _, name = dotted.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module), name)
    return handler


class RequestTooLarge(LambdaClientError):
    code = 413

    def __init__(self) -> None:
        super().__init__(
            "RequestEntityTooLargeException",
            f"Request must be smaller than {limits.INVOKE_REQUEST_LIMIT} bytes for the "
            "InvokeFunction operation",
        )


class InProcessLambdas:
    """Patch moto's Lambda invoke for the named functions; others keep moto's behaviour."""

    _lock = threading.Lock()

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self.handlers = dict(handlers)
        self.invocations: list[tuple[str, dict[str, Any]]] = []
        self.records: list[Invocation] = []
        self._original: Any = None

    def install(self) -> None:
        with self._lock:
            if self._original is not None:
                return
            enforce_deadlines()
            limits.data_limit_is_terminal()
            self._original = lambda_models.LambdaFunction.invoke
            adapter = self

            def invoke(
                function: Any, body: Any, request_headers: Any, response_headers: Any
            ) -> Any:
                handler = adapter.handlers.get(function.function_name)
                if handler is None:
                    return adapter._original(function, body, request_headers, response_headers)
                return adapter.invoke(function, handler, body, response_headers)

            lambda_models.LambdaFunction.invoke = invoke  # type: ignore[method-assign, assignment]

    def uninstall(self) -> None:
        with self._lock:
            if self._original is not None:
                lambda_models.LambdaFunction.invoke = self._original  # type: ignore[method-assign]
                self._original = None

    def invoke(
        self, function: Any, handler: Handler, body: Any, response_headers: dict[str, str]
    ) -> bytes:
        request = body.encode() if isinstance(body, str) else bytes(body or b"")
        if len(request) >= limits.INVOKE_REQUEST_LIMIT:
            raise RequestTooLarge()
        event = json.loads(request) if request else {}
        self.invocations.append((function.function_name, event))
        context = InvocationContext(
            function.function_name,
            function.function_arn,
            memory_limit_in_mb=int(function.memory_size),
            timeout_seconds=float(function.timeout),
        )
        record = Invocation(function.function_name, context.aws_request_id, event, len(request))
        self.records.append(record)
        run = _Run(handler, event, context, function.handler, record)
        answer = self._answer(run, context, record, response_headers)
        record.response_bytes, record.seconds = len(answer), time.monotonic() - context.started
        return answer

    @staticmethod
    def _answer(
        run: _Run, context: InvocationContext, record: Invocation, headers: dict[str, str]
    ) -> bytes:
        run.done.wait(max(0.0, context.deadline - time.monotonic()))
        if run.ended_at is None or run.ended_at > context.deadline:
            record.outcome = "timed out"
            message = (
                f"RequestId: {context.aws_request_id} Error: Task timed out after "
                f"{context.timeout_seconds:.2f} seconds"
            )
            return _function_error(headers, "Sandbox.Timedout", message)
        if run.error is not None:
            record.outcome = "failed"
            return _function_error(
                headers,
                type(run.error).__name__,
                str(run.error),
                traceback.format_exception(run.error)[-5:],
            )
        payload = json.dumps(run.result).encode()
        if len(payload) > limits.INVOKE_RESPONSE_LIMIT:
            record.outcome = "response too large"
            message = (
                "Response payload size exceeded maximum allowed payload size "
                f"({limits.INVOKE_RESPONSE_LIMIT} bytes)."
            )
            return _function_error(headers, "Function.ResponseSizeTooLarge", message)
        record.outcome = "succeeded"
        return payload


class _Run:
    """The handler on its own thread, so the invocation can answer at the deadline while
    the handler (which a thread cannot be made to stop) runs on without reaching AWS."""

    def __init__(
        self,
        handler: Handler,
        event: dict[str, Any],
        context: InvocationContext,
        dotted: str,
        record: Invocation,
    ) -> None:
        self.result: Any = None
        self.error: BaseException | None = None
        self.ended_at: float | None = None
        self.done = threading.Event()
        self._call = (handler, event, context, dotted, record)
        name = f"lambda:{context.function_name}:{context.aws_request_id[:8]}"
        threading.Thread(target=self._target, name=name, daemon=True).start()

    def _target(self) -> None:
        handler, event, context, dotted, record = self._call
        try:
            # The function's AWS calls are checked against its deployed role and deadline.
            with acting_as(dotted, deadline=context.deadline):
                self.result = handler(event, context)
        except SandboxStopped as stopped:
            record.late_call = stopped.operation
            self.error = stopped
        except BaseException as exc:  # the Lambda runtime reports anything as an error
            self.error = exc
        finally:
            self.ended_at = time.monotonic()
            self.done.set()


def _function_error(
    headers: dict[str, str], error_type: str, message: str, trace: list[str] | None = None
) -> bytes:
    headers["x-amz-function-error"] = "Unhandled"
    body: dict[str, Any] = {"errorType": error_type, "errorMessage": message}
    if trace is not None:
        body["stackTrace"] = trace
    return json.dumps(body).encode()
