"""Lambda target of the EventBridge rule for "Release Published" events."""

from __future__ import annotations

import os
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters

from orchestrator.runtime import per_process
from orchestrator.service import RolloutService
from orchestrator.store import Store, TargetLockedError

from .release import start_from_event

logger = Logger(service="edgeshift-events")


@per_process
def _service() -> RolloutService:
    return RolloutService(
        Store(), boto3.client("stepfunctions"), os.environ["EDGESHIFT_STATE_MACHINE_ARN"]
    )


def _template(name: str) -> str:
    # Cached for a minute: a burst of releases does not hammer Parameter Store.
    return str(parameters.get_parameter(name, max_age=60))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        outcome = start_from_event(event, _service(), _template)
    except parameters.exceptions.GetParameterError as exc:
        outcome = {"status": "rejected", "problems": [f"plan template not found: {exc}"]}
    except TargetLockedError as exc:
        # Not retried: the target is busy; a person decides whether to abort the other one.
        outcome = {"status": "conflict", "problems": [str(exc)]}
    logger.info("release published", extra={"outcome": outcome, "event_id": event.get("id")})
    return outcome
