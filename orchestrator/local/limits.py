"""The limits a deployed function runs under, for the local stack.

Each task function's timeout and memory come from the synthesized CDK template when the
tests install it (:func:`synthesized`, read lazily the first time a stack registers its
functions). Without it (``rollout demo`` is installed without the CDK) the local stack uses
:data:`FALLBACK`, the values ``stacks/tasks.py`` gives the functions; a test keeps the two
equal.

The service quotas the dispatcher and the ASL interpreter enforce are here too, with the
exact numbers the services put in their error messages.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.workflow.definition import TASKS

# Lambda's synchronous invoke: "Request must be smaller than 6291456 bytes for the
# InvokeFunction operation" (413) and "Response payload size exceeded maximum allowed
# payload size (6291556 bytes)." (a function error).
INVOKE_REQUEST_LIMIT = 6_291_456
INVOKE_RESPONSE_LIMIT = 6_291_556
# Step Functions: a state's input or output, and a task's result, as UTF-8 JSON.
STATE_PAYLOAD_LIMIT = 262_144


@dataclass(frozen=True)
class FunctionLimits:
    timeout_seconds: int
    memory_mb: int


def _task_fallback() -> dict[str, FunctionLimits]:
    # stacks/tasks.py: Analyze gets 60 s and 1,024 MB, every other task 30 s and 256 MB.
    analyze = TASKS["AnalyzeFunctionArn"][1]
    return {
        handler: FunctionLimits(60, 1024) if handler == analyze else FunctionLimits(30, 256)
        for _suffix, handler in TASKS.values()
    }


FALLBACK: Mapping[str, FunctionLimits] = _task_fallback()

Loader = Callable[[], Mapping[str, FunctionLimits]]
_INSTALLED: list[Loader] = []
_LOADED: dict[int, Mapping[str, FunctionLimits]] = {}
_LOCK = threading.Lock()


def limits_from_template(template: Mapping[str, Any]) -> dict[str, FunctionLimits]:
    """Handler -> the function's Timeout and MemorySize (Lambda's defaults: 3 s, 128 MB)."""
    from stacks.policies import function_timeouts  # template JSON only, no aws-cdk

    timeouts = function_timeouts(template)
    return {
        r["Properties"]["Handler"]: FunctionLimits(
            timeouts[r["Properties"]["Handler"]], int(r["Properties"].get("MemorySize", 128))
        )
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    }


@contextlib.contextmanager
def synthesized(loader: Loader) -> Iterator[None]:
    """While open, local stacks register their functions with what ``loader`` returns
    (called once, when the first stack needs it)."""
    _INSTALLED.append(loader)
    try:
        yield
    finally:
        _INSTALLED.remove(loader)
        _LOADED.pop(id(loader), None)


def deployed() -> Mapping[str, FunctionLimits]:
    """Handler -> limits: the installed template's, else :data:`FALLBACK`."""
    if not _INSTALLED:
        return FALLBACK
    loader = _INSTALLED[-1]
    with _LOCK:
        if id(loader) not in _LOADED:
            _LOADED[id(loader)] = loader()
        return _LOADED[id(loader)]


def data_limit_is_terminal() -> None:
    """Make moto's interpreter treat ``States.DataLimitExceeded`` as Step Functions does.

    moto already fails a task whose result exceeds 256 KB with that error, but lets a
    ``States.ALL`` Retry or Catch take it. In Step Functions it is terminal: "The States.ALL
    error type can't catch the States.DataLimitExceeded terminal error" (Step Functions
    developer guide, error handling), so the execution fails.
    """
    from moto.stepfunctions.parser.asl.component.common.error_name import error_equals_decl
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
        StatesErrorName,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
        StatesErrorNameType,
    )

    decl = error_equals_decl.ErrorEqualsDecl
    if getattr(decl._eval_body, "_edgeshift_terminal", False):
        return
    matches_any = decl._eval_body
    terminal = StatesErrorName(typ=StatesErrorNameType.StatesStatesDataLimitExceeded)
    every = StatesErrorName(typ=StatesErrorNameType.StatesALL)

    def eval_body(self: Any, env: Any) -> None:
        error_name = env.stack[-1]
        if error_name == terminal and every in self.error_names:
            env.stack.pop()
            env.stack.append(False)
            return
        matches_any(self, env)

    eval_body._edgeshift_terminal = True  # type: ignore[attr-defined]
    decl._eval_body = eval_body  # type: ignore[method-assign]
