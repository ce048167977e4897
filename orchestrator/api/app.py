"""Routes of the REST API. Every route calls the service layer the CLI calls too."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import boto3
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import ValidationError

from orchestrator.models import RolloutPlan, RolloutStatus
from orchestrator.models.route import check_host
from orchestrator.plans import validation_problems
from orchestrator.runtime import per_process
from orchestrator.service import (
    ControlRefused,
    IdempotencyConflict,
    PlanRejected,
    RolloutService,
)
from orchestrator.store import NotFoundError, Store, StoreError, TargetLockedError

from .problems import documented, field_errors, location, problem
from .schemas import EventPage, HostRules, Reason, RolloutPage, RolloutView

MAX_BODY_BYTES = 256 * 1024
ROLLOUT_ID = r"^r-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$"

app = APIGatewayRestResolver(enable_validation=True)
STEER = documented(RolloutView, 400, 404, 409, 413)


@per_process
def service() -> RolloutService:
    return RolloutService(
        Store(), boto3.client("stepfunctions"), os.environ.get("EDGESHIFT_STATE_MACHINE_ARN", "")
    )


def actor() -> str:
    """The IAM principal API Gateway authenticated (IAM authorization on every method)."""
    identity = app.current_event.request_context.identity
    return identity.user_arn or identity.caller or "unknown"


def start_rollout(plan: RolloutPlan, idempotency_key: str | None) -> dict[str, Any]:
    rollout = service().start(plan, actor(), idempotency_key=idempotency_key)
    return RolloutView.of(rollout).model_dump(mode="json")


@app.post(
    "/rollouts",
    summary="Start a rollout",
    responses=documented(RolloutView, 400, 409, 413, ok_status=201),
)
def post_rollout(
    plan: Annotated[RolloutPlan, Body(embed=False)],
) -> Response[str]:
    key = app.current_event.headers.get("Idempotency-Key") or app.current_event.headers.get(
        "idempotency-key"
    )
    from .idempotency import idempotent_start  # powertools' idempotency on DynamoDB

    view = idempotent_start(plan, key) if key else start_rollout(plan, None)
    return Response(
        status_code=201,
        content_type="application/json",
        body=json.dumps(view),
        headers={"Location": f"/rollouts/{view['rollout_id']}"},
    )


@app.get("/rollouts", summary="List rollouts, newest first", responses=documented(RolloutPage, 400))
def list_rollouts(
    host: Annotated[str | None, Query(max_length=253)] = None,
    path_rule: Annotated[str, Query(max_length=1024)] = "default",
    status: Annotated[list[RolloutStatus] | None, Query()] = None,
    active: Annotated[bool, Query()] = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    next_token: Annotated[str | None, Query(max_length=2048)] = None,
) -> RolloutPage:
    statuses = frozenset(status or ()) | (
        frozenset(s for s in RolloutStatus if not s.is_final) if active else frozenset()
    )
    items, token = service().list(
        host=host, path_rule=path_rule, statuses=statuses, limit=limit, after=next_token
    )
    return RolloutPage(items=[RolloutView.of(r) for r in items], next_token=token)


@app.get(
    "/rollouts/<rollout_id>",
    summary="Where a rollout stands",
    responses=documented(RolloutView, 404),
)
def get_rollout(rollout_id: Annotated[str, Path(pattern=ROLLOUT_ID)]) -> RolloutView:
    return RolloutView.of(service().get(rollout_id))


@app.get(
    "/rollouts/<rollout_id>/events",
    summary="The audit trail, with analysis evidence",
    responses=documented(EventPage, 404),
)
def get_events(rollout_id: Annotated[str, Path(pattern=ROLLOUT_ID)]) -> EventPage:
    return EventPage(items=service().events(rollout_id))


def _steer(verb: str, rollout_id: str, body: Reason | None) -> RolloutView:
    reason = body.reason if body else ""
    return RolloutView.of(getattr(service(), verb)(rollout_id, actor(), reason))


@app.post(
    "/rollouts/<rollout_id>/pause",
    summary="Hold traffic at the next decision point",
    responses=STEER,
)
def pause(
    rollout_id: Annotated[str, Path(pattern=ROLLOUT_ID)],
    body: Annotated[Reason | None, Body(embed=False)] = None,
) -> RolloutView:
    return _steer("pause", rollout_id, body)


@app.post(
    "/rollouts/<rollout_id>/resume",
    summary="Go on after a pause or approve a stage",
    responses=STEER,
)
def resume(
    rollout_id: Annotated[str, Path(pattern=ROLLOUT_ID)],
    body: Annotated[Reason | None, Body(embed=False)] = None,
) -> RolloutView:
    return _steer("resume", rollout_id, body)


@app.post(
    "/rollouts/<rollout_id>/abort", summary="Roll back now (reason required)", responses=STEER
)
def abort(
    rollout_id: Annotated[str, Path(pattern=ROLLOUT_ID)],
    body: Annotated[Reason, Body(embed=False)],
) -> RolloutView:
    return _steer("abort", rollout_id, body)


@app.post(
    "/rollouts/<rollout_id>/promote",
    summary="Skip the remaining stages (reason required)",
    responses=STEER,
)
def promote(
    rollout_id: Annotated[str, Path(pattern=ROLLOUT_ID)],
    body: Annotated[Reason, Body(embed=False)],
) -> RolloutView:
    return _steer("promote", rollout_id, body)


@app.get(
    "/routes/<host>",
    summary="A host's rules, as the edge reads them",
    responses=documented(HostRules, 400, 404),
)
def get_routes(host: Annotated[str, Path(max_length=253)]) -> HostRules:
    rules = service().store.get_routes(check_host(host))
    if not rules:
        raise NotFoundError(f"no rules for host {host}")
    return HostRules(rules=rules)


@app.put(
    "/routes/<host>",
    summary="Define or replace a host's rules (all or nothing)",
    responses=documented(HostRules, 400, 409, 413),
)
def put_routes(
    host: Annotated[str, Path(max_length=253)],
    body: Annotated[HostRules, Body(embed=False)],
) -> HostRules:
    check_host(host)
    strays = [i for i, rule in enumerate(body.rules) if rule.host != host]
    if strays:
        raise ValueError(f"rules.{strays[0]}.host: must be {host}, the host in the path")
    written = service().store.put_routes(
        [(rule, rule.revision or None) for rule in body.rules], actor=actor(), reason=body.reason
    )
    return HostRules(rules=written)


# -- errors -----------------------------------------------------------------------------------


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[str]:
    errors = field_errors([(location(e["loc"]), e["msg"]) for e in exc.errors()])
    return problem(422, "validation", "the request is not valid", errors)


@app.exception_handler(ValidationError)
def _invalid_model(exc: ValidationError) -> Response[str]:
    return problem(
        422, "validation", "the request is not valid", field_errors(validation_problems(exc))
    )


@app.exception_handler(PlanRejected)
def _plan_rejected(exc: PlanRejected) -> Response[str]:
    return problem(422, "plan-rejected", str(exc), field_errors([(exc.field, str(exc))]))


@app.exception_handler(NotFoundError)
def _not_found(exc: NotFoundError) -> Response[str]:
    return problem(404, "not-found", str(exc))


@app.exception_handler(TargetLockedError)
def _locked(exc: TargetLockedError) -> Response[str]:
    return problem(409, "target-locked", str(exc))


@app.exception_handler(ControlRefused)
def _refused(exc: ControlRefused) -> Response[str]:
    return problem(409, "invalid-transition", str(exc))


@app.exception_handler(IdempotencyConflict)
def _idempotency(exc: IdempotencyConflict) -> Response[str]:
    return problem(409, "idempotency-conflict", str(exc))


@app.exception_handler(StoreError)
def _conflict(exc: StoreError) -> Response[str]:
    return problem(409, "conflict", str(exc))


@app.exception_handler(ValueError)
def _bad_value(exc: ValueError) -> Response[str]:
    field, _, message = str(exc).partition(": ")
    return problem(400, "bad-request", str(exc), field_errors([(field, message or str(exc))]))
