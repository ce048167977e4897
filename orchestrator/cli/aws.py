"""Where the CLI's AWS calls go: real AWS by default, the local stack with --endpoint-url."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

from orchestrator.store import Store, TableNames
from orchestrator.workflow.definition import STATE_MACHINE_NAME


class StateMachineNotFound(LookupError):
    pass


@dataclass(frozen=True)
class Target:
    endpoint_url: str | None
    region: str | None
    state_machine_arn: str | None = None

    def client(self, service: str) -> Any:
        session = boto3.Session(region_name=self.region)
        if self.endpoint_url and session.get_credentials() is None:
            # The local stack accepts any credentials; nobody should need real ones for it.
            session = boto3.Session(
                aws_access_key_id="local", aws_secret_access_key="local", region_name=self.region
            )
        return session.client(service, endpoint_url=self.endpoint_url)  # type: ignore[call-overload]

    def store(self) -> Store:
        return Store(self.client("dynamodb"), TableNames.from_env())

    def find_state_machine(self) -> str:
        if self.state_machine_arn:
            return self.state_machine_arn
        paginator = self.client("stepfunctions").get_paginator("list_state_machines")
        for page in paginator.paginate():
            for machine in page["stateMachines"]:
                if machine["name"] == STATE_MACHINE_NAME:
                    return str(machine["stateMachineArn"])
        raise StateMachineNotFound(
            f"no state machine named {STATE_MACHINE_NAME}; pass --state-machine-arn "
            "or point --endpoint-url at a running `rollout local up`"
        )
