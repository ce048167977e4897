"""Start and stop the embedded local stack, all on 127.0.0.1."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import socket
import tempfile
import threading
import warnings
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import requests

from orchestrator.store import Store, TableNames, create_tables
from orchestrator.workflow.definition import STATE_MACHINE_NAME, TASKS, render

from . import dynamodb, iam, limits, moto_scale, sfn_parity
from .dispatch import InProcessLambdas, load_handler
from .loopback import LOOPBACK

REGION = "us-east-1"
_LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local"}


_DYNAMODB_LOCK = threading.RLock()


def _serialize_dynamodb() -> None:
    """moto's DynamoDB is not thread-safe: a transaction deep-copies tables while other
    request threads write them ("dictionary changed size during iteration"). DynamoDB
    itself isolates requests, so the local stack runs moto's DynamoDB one call at a time."""
    from moto.dynamodb.responses import DynamoHandler

    if getattr(DynamoHandler.call_action, "_edgeshift_serialized", False):
        return
    unlocked = DynamoHandler.call_action

    def call_action(self: Any) -> Any:
        with _DYNAMODB_LOCK:
            return unlocked(self)

    call_action._edgeshift_serialized = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


def _forget_clients() -> None:
    """Clients and configuration cached per process point at one stack's port and files;
    the next stack in this process must build its own (as a fresh Lambda container would)."""
    from aws_lambda_powertools.utilities import parameters

    from edge import config as edge_config
    from edge import dynamo as edge_dynamo
    from edge import rules as edge_rules
    from orchestrator import runtime

    runtime.forget()
    # powertools' parameters utility keeps default providers (boto3 clients) and values.
    parameters.clear_caches()  # type: ignore[no-untyped-call]
    edge_config.reset()
    edge_rules.reset_default_cache()
    edge_dynamo.close_connections()


class PortInUse(RuntimeError):
    def __init__(self, port: int, flag: str) -> None:
        self.port, self.flag = port, flag
        super().__init__(f"port {port} on {LOOPBACK} is already in use; choose another with {flag}")


def ensure_free(port: int, flag: str) -> None:
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers themselves bind (http.server's allow_reuse_address): connections of
        # a stack just stopped linger in TIME_WAIT for a minute and must not read as "in
        # use"; a listening socket still refuses the bind.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError:
            raise PortInUse(port, flag) from None


@dataclass
class LocalStack:
    """moto server + the state machine from the ASL file + in-process task Lambdas.

    Port 0 picks a free port (tests); the CLI passes fixed defaults users can change.
    """

    moto_port: int = 0
    edge_ttl_seconds: float = 1.0
    # Handler -> timeout in seconds, instead of the deployed one (tests keep timeouts short).
    timeouts: Mapping[str, int] = field(default_factory=dict)
    tables: TableNames = field(default_factory=TableNames)
    state_machine_arn: str = ""
    edge_config_path: Path | None = None
    _server: Any = None
    _lambdas: InProcessLambdas | None = None
    _saved_env: dict[str, str | None] = field(default_factory=dict)
    _tmp: tempfile.TemporaryDirectory[str] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.moto_port}"

    def client(self, service: str) -> Any:
        return boto3.client(service, endpoint_url=self.endpoint_url, region_name=REGION)  # type: ignore[call-overload]

    @property
    def lambdas(self) -> InProcessLambdas:
        """The in-process task handlers, by function name (tests wrap them to inject faults)."""
        if self._lambdas is None:
            raise RuntimeError("the local stack is not started")
        return self._lambdas

    def store(self) -> Store:
        return Store(self.client("dynamodb"), self.tables)

    def start(self) -> LocalStack:
        from moto.server import ThreadedMotoServer

        ensure_free(self.moto_port, "--aws-port")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        _serialize_dynamodb()
        sfn_parity.install()
        dynamodb.install()  # tokens, transactions and queries as DynamoDB answers them
        moto_scale.install()  # dispatch and GetMetricData at the cost of the request
        # Tasks that record no metric in an invocation are normal; powertools warns each time.
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        self._server = ThreadedMotoServer(ip_address=LOOPBACK, port=self.moto_port, verbose=False)
        self._server.start()
        self.moto_port = self._server.get_host_and_port()[1]
        self._set_env()
        _forget_clients()
        iam.prepare()
        try:
            self._provision()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        if self._lambdas:
            self._lambdas.uninstall()
            self._lambdas = None
        if self._server:
            # Leave nothing behind in moto's process-wide backends for whoever comes next.
            with contextlib.suppress(requests.RequestException):
                requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10)
            self._server.stop()
            self._server = None
        for name, value in self._saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        self._saved_env.clear()
        _forget_clients()
        if self._tmp:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _set_env(self) -> None:
        """In-process handlers use plain boto3 clients, as in Lambda; these point them here.

        ``MOTO_PORT`` is where moto's ASL interpreter sends its own service calls.
        """
        self._tmp = tempfile.TemporaryDirectory(prefix="edgeshift-local-")
        self.edge_config_path = Path(self._tmp.name) / "edge-config.json"
        env = {
            **_LOCAL_CREDENTIALS,
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "MOTO_PORT": str(self.moto_port),
            "EDGESHIFT_ROUTES_TABLE": self.tables.routes,
            "EDGESHIFT_ROLLOUTS_TABLE": self.tables.rollouts,
            "EDGESHIFT_EDGE_CONFIG": str(self.edge_config_path),
            "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
            # No X-Ray daemon and no EMF agent here; CloudFront invalidations are recorded only.
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "EDGESHIFT_INVALIDATION": "record-only",
        }
        self._setenv(env)

    def _setenv(self, env: dict[str, str]) -> None:
        """Set variables for this process, remembering what to restore on stop."""
        for name, value in env.items():
            self._saved_env.setdefault(name, os.environ.get(name))
            os.environ[name] = value

    def _provision(self) -> None:
        # moto keeps its backends per process, not per server: start from a clean slate so
        # a second stack in the same process (tests) does not meet the first one's resources.
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
        requests.post(
            f"{self.endpoint_url}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=10,
        ).raise_for_status()
        create_tables(self.client("dynamodb"), self.tables)
        self.edge_config_path.write_text(  # type: ignore[union-attr]
            json.dumps(
                {
                    "table": self.tables.routes,
                    "regions": [REGION],
                    "ttl_seconds": self.edge_ttl_seconds,
                    "endpoint_url": self.endpoint_url,
                    # moto on a shared, loaded machine answers far slower than DynamoDB
                    # in-region; at the deployed 250 ms the edge would serve stale rules
                    # for seconds after a write. Still far under the trigger's 5 s.
                    "deadline_seconds": 1.0,
                }
            )
        )
        role = self.client("iam").create_role(
            RoleName="edgeshift-local", AssumeRolePolicyDocument=json.dumps(_TRUST)
        )["Role"]["Arn"]
        arns = self._register_lambdas(role)
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=STATE_MACHINE_NAME, definition=render(arns), roleArn=role, type="STANDARD"
        )["stateMachineArn"]
        self._setenv({"EDGESHIFT_STATE_MACHINE_ARN": self.state_machine_arn})

    def _register_lambdas(self, role: str) -> dict[str, str]:
        """Each task function with its deployed timeout and memory, which the dispatcher
        reads from moto's function configuration at every invocation."""
        lambdas = self.client("lambda")
        deployed = limits.deployed()
        unknown = set(self.timeouts) - {dotted for _, dotted in TASKS.values()}
        if unknown:
            raise ValueError(f"timeouts for handlers the stack does not run: {sorted(unknown)}")
        handlers, arns = {}, {}
        for placeholder, (suffix, dotted) in TASKS.items():
            name = f"edgeshift-{suffix}"
            arns[placeholder] = lambdas.create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=role,
                Handler=dotted,
                Code={"ZipFile": _PLACEHOLDER_ZIP},
                Timeout=self.timeouts.get(dotted, deployed[dotted].timeout_seconds),
                MemorySize=deployed[dotted].memory_mb,
            )["FunctionArn"]
            handlers[name] = load_handler(dotted)
        self._lambdas = InProcessLambdas(handlers)
        self._lambdas.install()
        return arns


_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _zip() -> bytes:
    """moto wants a code package; the handler itself runs in-process, see dispatch.py."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README.txt", "handlers run in-process in the local stack")
    return buffer.getvalue()


_PLACEHOLDER_ZIP = _zip()
