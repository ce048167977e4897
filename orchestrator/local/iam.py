"""Run each function's AWS calls under the IAM policy its deployed role has.

A ``before-call`` hook on every botocore client records the calls made while a function
runs (the in-process dispatcher and the local API adapter say which one, see
:func:`acting_as`) as (function, service:action, resource ARN), evaluates each one with
moto's IAM policy evaluator against that function's statements, and answers a call the
role does not allow with ``AccessDeniedException``, as AWS would. The statements come from
the synthesized CDK template (``stacks.policies``); tests install them, so a permission the
stack forgets fails a local test instead of a deployed rollout.

Calls made outside any function (tests, the CLI, moto's own interpreter) pass unchecked.

A function's deadline (its timeout) is carried the same way: :func:`enforce_deadlines`
refuses every AWS call a function makes after it, because in Lambda the sandbox is stopped
at the timeout and nothing the handler does afterwards reaches AWS.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import botocore.session
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders

ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"

_FUNCTION: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "edgeshift_function", default=None
)
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "edgeshift_deadline", default=None
)
Statements = Sequence[Mapping[str, Any]]
_ACTIVE: list[DeployedIam] = []


def prepare() -> None:
    """Load the installed policies now (the local stack calls this as it starts), not in
    the middle of a function's first call."""
    for deployed in _ACTIVE:
        deployed.policies  # noqa: B018 - the property loads them


@contextlib.contextmanager
def acting_as(handler: str, *, deadline: float | None = None) -> Iterator[None]:
    """AWS calls made in this block are the function's (named by its handler path); past
    ``deadline`` (a ``time.monotonic()`` value) they are refused, see :func:`enforce_deadlines`."""
    token, limit = _FUNCTION.set(handler), _DEADLINE.set(deadline)
    try:
        yield
    finally:
        _DEADLINE.reset(limit)
        _FUNCTION.reset(token)


class SandboxStopped(BaseException):
    """A function called AWS after its timeout. In Lambda that call never leaves the stopped
    sandbox; a BaseException, so the handler's own ``except Exception`` cannot carry on."""

    def __init__(self, function: str, operation: str, late_seconds: float) -> None:
        self.function, self.operation = function, operation
        super().__init__(f"{function}: {operation} {late_seconds:.2f} s after its timeout")


def enforce_deadlines() -> None:
    """Refuse, before it is sent, every AWS call a function makes past its deadline.

    Wraps botocore's one path from a client method to the wire, once per process, so it
    covers clients created before the stack started too (cached ones, powertools').
    """
    from botocore.client import BaseClient

    send = BaseClient.__dict__["_make_api_call"]  # private: botocore's stubs omit it
    if getattr(send, "_edgeshift_deadline", False):
        return

    def make_api_call(client: Any, operation_name: str, api_params: Any) -> Any:
        deadline = _DEADLINE.get()
        if deadline is not None and (late := time.monotonic() - deadline) > 0:
            service = client.meta.service_model.service_name
            raise SandboxStopped(_FUNCTION.get() or "?", f"{service}:{operation_name}", late)
        return send(client, operation_name, api_params)

    make_api_call._edgeshift_deadline = True  # type: ignore[attr-defined]
    setattr(BaseClient, "_make_api_call", make_api_call)  # noqa: B010 - see above


@dataclass(frozen=True)
class Request:
    """One IAM authorization a call needs: an action on a resource, with condition keys."""

    action: str
    resource: str
    conditions: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    function: str
    request: Request
    allowed: bool


def requests_of(service: str, operation: str, params: Mapping[str, Any]) -> list[Request]:
    """What IAM evaluates for one API call (a transaction needs each item's action)."""
    prefix = _PREFIXES.get(service, service)
    action = f"{prefix}:{operation}"
    if prefix == "dynamodb":
        return _dynamodb(operation, params)
    if prefix == "events" and operation == "PutEvents":
        return [
            Request(
                action,
                _arn("events", f"event-bus/{e.get('EventBusName') or 'default'}"),
                {"events:source": e.get("Source", "")},
            )
            for e in params.get("Entries", [])
        ]
    return [Request(action, _resource(prefix, operation, params))]


def _dynamodb(operation: str, params: Mapping[str, Any]) -> list[Request]:
    def table(name: str, index: str | None = None) -> str:
        suffix = f"/index/{index}" if index else ""
        return _arn("dynamodb", f"table/{name}{suffix}")

    if operation in ("TransactWriteItems", "TransactGetItems"):
        kinds = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem"}
        kinds |= {"ConditionCheck": "ConditionCheckItem", "Get": "GetItem"}
        return [
            Request(f"dynamodb:{kinds[kind]}", table(body["TableName"]))
            for item in params.get("TransactItems", [])
            for kind, body in item.items()
        ]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [Request(f"dynamodb:{operation}", table(n)) for n in params.get("RequestItems", {})]
    name = params.get("TableName", "*")
    return [Request(f"dynamodb:{operation}", table(name, params.get("IndexName")))]


def _resource(prefix: str, operation: str, params: Mapping[str, Any]) -> str:
    if prefix == "states":
        for key in ("executionArn", "stateMachineArn"):
            if key in params:
                return str(params[key])
        # A task token names no resource; IAM checks these against the state machine.
        return _state_machine_arn()
    if prefix == "secretsmanager":
        secret = str(params.get("SecretId", "*"))
        # Secrets Manager appends six random characters to a secret's name in its ARN.
        return (
            secret
            if secret.startswith("arn:")
            else _arn("secretsmanager", f"secret:{secret}-AbCdEf")
        )
    if prefix == "ssm" and "Name" in params:
        name = str(params["Name"])
        return _arn("ssm", f"parameter{name if name.startswith('/') else '/' + name}")
    if prefix == "cloudfront" and "DistributionId" in params:
        return f"arn:aws:cloudfront::{ACCOUNT}:distribution/{params['DistributionId']}"
    return "*"


def _arn(service: str, resource: str) -> str:
    separator = "" if resource.startswith(":") else ":"
    return f"arn:aws:{service}:{REGION}:{ACCOUNT}{separator}{resource}"


def _state_machine_arn() -> str:
    import os

    return os.environ.get("EDGESHIFT_STATE_MACHINE_ARN", "*")


# botocore service names whose IAM prefix differs.
_PREFIXES = {"stepfunctions": "states"}
# Calls IAM never denies.
_UNCHECKED = {"sts:GetCallerIdentity"}


def allows(statements: Statements, request: Request) -> bool:
    """moto's evaluator: an explicit Deny wins, otherwise some Allow must match."""
    from moto.iam.access_control import IAMPolicy, PermissionResult

    # moto matches with regular expressions: IAM's single-character wildcard is "." there.
    document = [
        {k: [r.replace("?", ".") for r in v] if k == "Resource" else v for k, v in s.items()}
        for s in statements
    ]
    policy = IAMPolicy(json.dumps({"Version": "2012-10-17", "Statement": document}))
    result = policy.is_action_permitted(
        request.action, request.resource, incoming_condition_values=dict(request.conditions)
    )
    return bool(result == PermissionResult.PERMITTED)


class DeployedIam:
    """Records and enforces calls; ``policies`` maps a handler to its statements."""

    def __init__(self, policies: Callable[[], Mapping[str, Statements]]) -> None:
        self._policies = policies
        self._loaded: Mapping[str, Statements] | None = None
        self._lock = threading.Lock()
        self.calls: list[Call] = []
        self._original: Any = None

    @property
    def policies(self) -> Mapping[str, Statements]:
        with self._lock:
            if self._loaded is None:
                self._loaded = self._policies()
            return self._loaded

    def install(self) -> None:
        """Hook every botocore session created from now on (clients copy its events)."""
        if self._original is not None:
            return
        self._original = botocore.session.Session.__init__
        original, check, refuse = self._original, self._check, self._refuse

        def init(session: Any, *args: Any, **kwargs: Any) -> None:
            original(session, *args, **kwargs)
            session.register("before-parameter-build", check)
            session.register("before-call", refuse)

        botocore.session.Session.__init__ = init  # type: ignore[method-assign, assignment]
        _ACTIVE.append(self)

    def uninstall(self) -> None:
        if self._original is not None:
            botocore.session.Session.__init__ = self._original  # type: ignore[method-assign]
            self._original = None
            _ACTIVE.remove(self)

    def denied(self) -> list[Call]:
        return [c for c in self.calls if not c.allowed]

    def _check(self, model: Any, params: Mapping[str, Any], context: Any, **_: Any) -> None:
        """``before-parameter-build``: the call's own parameters, before serialization."""
        function = _FUNCTION.get()
        if function is None:
            return
        service = model.service_model.service_name
        statements = self.policies.get(function, ())
        for request in requests_of(service, model.name, params):
            allowed = request.action in _UNCHECKED or allows(statements, request)
            self.calls.append(Call(function, request, allowed))
            if not allowed and context is not None:
                context.setdefault(_DENIED, (function, request))

    @staticmethod
    def _refuse(context: Any, **_: Any) -> Any:
        """``before-call``: answer a refused call the way AWS does, without sending it."""
        denied = (context or {}).get(_DENIED)
        return None if denied is None else _access_denied(*denied)


_DENIED = "edgeshift_access_denied"


def _access_denied(function: str, request: Request) -> tuple[AWSResponse, dict[str, Any]]:
    name = function.rsplit(".", 1)[-1]
    message = (
        f"User: arn:aws:sts::{ACCOUNT}:assumed-role/{name}/{name} is not authorized to "
        f"perform: {request.action} on resource: {request.resource} because no "
        "identity-based policy allows the action (the synthesized template's policy)"
    )
    body = {
        "Error": {"Code": "AccessDeniedException", "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": 400},
    }
    return AWSResponse("", 400, HTTPHeaders(), None), body
