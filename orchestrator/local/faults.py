"""Make a function's AWS calls fail on the local stack, the way the network and AWS fail them.

A :class:`Fault` names one call (the nth call of an operation a function makes in one
scope, e.g. one rollout's host), what fails (a throttle, a 5xx, a timeout, under the names
the service uses) and when:

- ``before``: the request never reaches the service (a refused or unreachable call);
- ``after``: the request is carried out by the service and its response is lost, which
  is what a read timeout or a 5xx after the commit look like to the caller.

The hooks sit in botocore's own request loop (``before-call`` picks the call, ``before-send``
fails each attempt), so the client's retries (standard mode: three attempts) see every
failure and re-send the same request, idempotency token included, exactly as against AWS.
``attempts`` says how many attempts of the call fail: 1 is hidden by those retries, ``None``
(every attempt) reaches the function as the exception botocore raises.

A :class:`Race` instead lets another writer change what the call is about to write, just
before it is sent (a conditional write that loses a race). Calls outside any scope (tests,
the CLI, moto itself) are never touched. The hooks are
registered on boto3's default session, which the task functions' clients come from: install
before those clients are made (the local stack starts with none; ``install`` also drops the
per-process ones).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import boto3
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.exceptions import ConnectTimeoutError, ReadTimeoutError
from botocore.httpsession import URLLib3Session

from orchestrator import runtime

from .dispatch import InProcessLambdas

Error = Literal["throttle", "5xx", "timeout"]
When = Literal["before", "after"]

# (scope, function) of the code running now; set around each wrapped handler.
_SCOPE: contextvars.ContextVar[tuple[str, str] | None] = contextvars.ContextVar(
    "edgeshift_fault_scope", default=None
)


@dataclass(frozen=True)
class Fault:
    """``operation`` (botocore's name, e.g. ``TransactWriteItems``) called by ``function``
    (a task's suffix, e.g. ``apply-stage``) for the ``call``-th time in its scope (None:
    every call) fails on ``attempts`` attempts in a row (None: every attempt)."""

    function: str
    operation: str
    error: Error
    when: When = "before"
    call: int | None = 1
    attempts: int | None = 1

    def __str__(self) -> str:
        nth = "every call" if self.call is None else f"call {self.call}"
        times = "every attempt" if self.attempts is None else f"{self.attempts} attempt(s)"
        return f"{self.function} {self.operation} ({nth}): {self.error} {self.when}, {times}"


@dataclass(frozen=True)
class Race:
    """``write`` runs just before ``function``'s ``call``-th ``operation`` is sent, in a
    thread of its own (another writer, outside the function and its scope)."""

    function: str
    operation: str
    write: Callable[[], None]
    call: int = 1

    def __str__(self) -> str:
        return f"{self.function} {self.operation} (call {self.call}): a concurrent write first"


def current_scope() -> str | None:
    """The scope of the function running now (None outside any)."""
    current = _SCOPE.get()
    return current[0] if current else None


def current_function() -> str | None:
    """The function running now in a scope (None outside any)."""
    current = _SCOPE.get()
    return current[1] if current else None


@dataclass(frozen=True)
class Fired:
    """One failed attempt: the fault, the attempt of its call, the error it answered with."""

    fault: Fault | Race
    attempt: int
    answer: str


@dataclass
class _Armed:
    fault: Fault
    protocol: str
    service: str
    attempt: int = 0


@dataclass
class CallFaults:
    """Faults per scope; ``calls`` records every call made in a scope, ``fired`` each failure."""

    scope_of: Callable[[dict[str, Any]], str | None]
    faults: dict[str, list[Fault | Race]] = field(default_factory=lambda: defaultdict(list))
    calls: dict[str, list[tuple[str, str]]] = field(default_factory=lambda: defaultdict(list))
    fired: dict[str, list[Fired]] = field(default_factory=lambda: defaultdict(list))
    _counts: dict[tuple[str, str, str], int] = field(default_factory=lambda: defaultdict(int))
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _armed: threading.local = field(default_factory=threading.local)
    _http: URLLib3Session = field(default_factory=lambda: URLLib3Session(timeout=30))
    _events: Any = None

    def add(self, scope: str, *faults: Fault | Race) -> None:
        with self._lock:
            self.faults[scope].extend(faults)

    @contextlib.contextmanager
    def scoped(self, scope: str, function: str) -> Iterator[None]:
        """Calls made in this block are ``function``'s in ``scope``."""
        token = _SCOPE.set((scope, function))
        try:
            yield
        finally:
            _SCOPE.reset(token)

    def wrap(self, lambdas: InProcessLambdas, prefix: str = "edgeshift-") -> None:
        """Run each in-process handler in the scope ``scope_of(event)`` names."""
        for name, handler in list(lambdas.handlers.items()):
            function = name.removeprefix(prefix)

            def scoped(
                event: dict[str, Any], context: Any, _h: Any = handler, _f: str = function
            ) -> Any:
                scope = self.scope_of(event)
                if scope is None:
                    return _h(event, context)
                # A container per scope, as concurrent invocations each get one in Lambda:
                # one scope's faults never spend another scope's retry quota.
                with self.scoped(scope, _f), runtime.container(scope):
                    return _h(event, context)

            lambdas.handlers[name] = scoped

    def install(self) -> None:
        if boto3.DEFAULT_SESSION is None:
            boto3.setup_default_session()
        self._events = boto3.DEFAULT_SESSION.events  # type: ignore[union-attr]
        self._events.register("before-call", self._choose)
        self._events.register("before-send", self._fail)
        runtime.forget()  # per-process clients made before would not carry the hooks

    def uninstall(self) -> None:
        if self._events is not None:
            self._events.unregister("before-call", self._choose)
            self._events.unregister("before-send", self._fail)
            self._events = None
        self._http.close()

    def _choose(self, model: Any, **_: Any) -> None:
        """``before-call``, once per call: arm the fault this call is due for, if any."""
        self._armed.state = None
        current = _SCOPE.get()
        if current is None:
            return
        scope, function = current
        operation = model.name
        with self._lock:
            self.calls[scope].append((function, operation))
            self._counts[scope, function, operation] += 1
            nth = self._counts[scope, function, operation]
            due = [
                f
                for f in self.faults.get(scope, ())
                if f.function == function
                and f.operation == operation
                and (f.call is None or f.call == nth)
            ]
        for race in [f for f in due if isinstance(f, Race)]:
            self._race(scope, race)
        fault = next((f for f in due if isinstance(f, Fault)), None)
        if fault is not None:
            service = model.service_model
            self._armed.state = _Armed(fault, service.resolved_protocol, service.endpoint_prefix)

    def _race(self, scope: str, race: Race) -> None:
        failed: list[Exception] = []

        def write() -> None:
            try:
                race.write()
            except Exception as exc:
                failed.append(exc)

        writer = threading.Thread(target=write)  # a fresh context: outside the function
        writer.start()
        writer.join()
        answer = f"failed: {failed[0]!r}" if failed else "raced"
        with self._lock:
            self.fired[scope].append(Fired(race, 1, answer))

    def _fail(self, request: Any, **_: Any) -> AWSResponse | None:
        """``before-send``, once per attempt: fail it as the armed fault says."""
        armed: _Armed | None = getattr(self._armed, "state", None)
        if armed is None:
            return None
        fault = armed.fault
        if fault.attempts is not None and armed.attempt >= fault.attempts:
            return None
        armed.attempt += 1
        if fault.when == "after":
            self._http.send(request).content  # noqa: B018 - carried out, answer read and lost
        answer = _answer(armed, request.url)
        scope = (_SCOPE.get() or ("?", ""))[0]
        with self._lock:
            self.fired[scope].append(Fired(fault, armed.attempt, _name(answer)))
        if isinstance(answer, Exception):
            raise answer
        return answer


def _answer(armed: _Armed, url: str) -> AWSResponse | Exception:
    fault = armed.fault
    if fault.error == "timeout":
        if fault.when == "before":
            return ConnectTimeoutError(endpoint_url=url)
        return ReadTimeoutError(endpoint_url=url, error="injected: the response was lost")
    status, code = _CODES[fault.error].get(armed.service, _CODES[fault.error]["*"])
    return _error_response(armed.protocol, status, code, f"injected {fault.error} {fault.when}")


# What each service calls a throttle and a server error (DynamoDB's data plane has its own).
_CODES: dict[str, dict[str, tuple[int, str]]] = {
    "throttle": {
        "dynamodb": (400, "ProvisionedThroughputExceededException"),
        "*": (400, "ThrottlingException"),
    },
    "5xx": {"dynamodb": (500, "InternalServerError"), "*": (503, "ServiceUnavailable")},
}


class _Body:
    """The ``raw`` of a response botocore reads with ``stream()``."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


def _error_response(protocol: str, status: int, code: str, message: str) -> AWSResponse:
    headers = HTTPHeaders()
    headers["x-amzn-RequestId"] = str(uuid.uuid4())
    if protocol in ("json", "rest-json"):
        headers["Content-Type"] = "application/x-amz-json-1.0"
        headers["x-amzn-ErrorType"] = code
        body = json.dumps({"__type": code, "message": message}).encode()
    elif protocol in ("query", "rest-xml", "ec2"):
        headers["Content-Type"] = "text/xml"
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code>"
            f"<Message>{message}</Message></Error></ErrorResponse>"
        ).encode()
    else:
        raise NotImplementedError(f"no error response for the {protocol} protocol")
    return AWSResponse("", status, headers, _Body(body))


def _name(answer: AWSResponse | Exception) -> str:
    if isinstance(answer, Exception):
        return type(answer).__name__
    return str(answer.headers.get("x-amzn-ErrorType") or answer.status_code)
