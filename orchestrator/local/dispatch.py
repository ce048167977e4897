"""Run the project's Lambda handlers in-process when moto's Step Functions interpreter
invokes them.

moto runs Lambda functions in Docker, which the local stack does not have, and its
Docker-free "simple" mode returns canned answers without running any code. So for the
functions registered here, ``LambdaFunction.invoke`` calls the real handler in this
process and answers the way the Lambda service does: the handler's JSON on success, and
``{"errorType", "errorMessage"}`` with ``X-Amz-Function-Error: Unhandled`` when it raises, so
the state machine's Retry and Catch see the same error names they would in AWS.
"""

from __future__ import annotations

import importlib
import json
import threading
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from moto.awslambda import models as lambda_models

from .iam import acting_as

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

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def load_handler(dotted: str) -> Handler:
    module, _, name = dotted.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module), name)
    return handler


class InProcessLambdas:
    """Patch moto's Lambda invoke for the named functions; others keep moto's behaviour."""

    _lock = threading.Lock()

    def __init__(self, handlers: Mapping[str, Handler]) -> None:
        self.handlers = dict(handlers)
        self.invocations: list[tuple[str, dict[str, Any]]] = []
        self._original: Any = None

    def install(self) -> None:
        with self._lock:
            if self._original is not None:
                return
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
        event = json.loads(body) if body else {}
        self.invocations.append((function.function_name, event))
        context = InvocationContext(function.function_name, function.function_arn)
        try:
            # The function's AWS calls are checked against its deployed role (see iam.py).
            with acting_as(function.handler):
                result = handler(event, context)
        except Exception as exc:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(
                {
                    "errorType": type(exc).__name__,
                    "errorMessage": str(exc),
                    "stackTrace": traceback.format_exception(exc)[-5:],
                }
            ).encode()
        return json.dumps(result).encode()
