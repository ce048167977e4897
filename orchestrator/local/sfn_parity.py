"""Make moto's Step Functions stop an execution the way AWS does.

In AWS, StopExecution returns once the execution is ABORTED: DescribeExecution says so at
once, and SendTaskSuccess or SendTaskFailure on one of its task tokens is refused (the
task is closed). moto only asks the interpreter thread to stop; a parked execution keeps
its callback open until it is answered, so a wake-up call sent right after the stop is
accepted and the status stays RUNNING for a while. A person's request sent after a stop
would then look carried out locally and be lost in AWS; this patch closes that gap.
"""

from __future__ import annotations

import datetime
import threading
from typing import Any

_LOCK = threading.Lock()
_INSTALLED = False


def install() -> None:
    global _INSTALLED
    with _LOCK:
        if _INSTALLED:
            return
        from moto.stepfunctions.parser.api import ExecutionStatus, InvalidToken
        from moto.stepfunctions.parser.backend.execution import (
            BaseExecutionWorkerCommunication,
            Execution,
        )
        from moto.stepfunctions.parser.models import StepFunctionsParserBackend

        stop = Execution.stop

        def stop_now(
            self: Any, stop_date: datetime.datetime, error: str | None, cause: str | None
        ) -> None:
            stop(self, stop_date=stop_date, error=error, cause=cause)
            if self.exec_status == ExecutionStatus.RUNNING:
                self.exec_status = ExecutionStatus.ABORTED
                self.stop_date = stop_date
                self.edgeshift_stopped = True

        Execution.stop = stop_now  # type: ignore[method-assign]

        reflect = BaseExecutionWorkerCommunication._reflect_execution_status

        def keep_aborted(self: Any) -> None:
            # The interpreter thread ends later and would report how its park ended (a
            # timeout, an error); the execution was ABORTED when StopExecution returned.
            if getattr(self.execution, "edgeshift_stopped", False):
                return
            reflect(self)  # type: ignore[no-untyped-call]

        BaseExecutionWorkerCommunication._reflect_execution_status = keep_aborted  # type: ignore[method-assign]

        fail = StepFunctionsParserBackend.send_task_failure

        def fail_running_only(self: Any, task_token: str, *args: Any, **kwargs: Any) -> Any:
            # moto offers a failure to every execution, stopped ones included; AWS only
            # answers an open task of a running execution.
            running = self._get_executions(ExecutionStatus.RUNNING)
            if not any(_holds(execution, task_token) for execution in running):
                raise InvalidToken()  # type: ignore[no-untyped-call]
            return fail(self, task_token, *args, **kwargs)

        StepFunctionsParserBackend.send_task_failure = fail_running_only  # type: ignore[method-assign]
        _INSTALLED = True


def _holds(execution: Any, task_token: str) -> bool:
    worker = getattr(execution, "exec_worker", None)
    pool = getattr(getattr(worker, "env", None), "callback_pool_manager", None)
    return pool is not None and pool.get(task_token) is not None
