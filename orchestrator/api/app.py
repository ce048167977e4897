"""Routes of the REST API. Every route calls the service layer the CLI calls too."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import boto3
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from pydantic import ValidationError

from orchestrator.models import RolloutPlan, RolloutStatus
from orchestrator.models.route import check_host
from orchestrator.plans import problem_message, validation_problems
from orchestrator.runtime import per_process
from orchestrator.service import (
    ControlRefused,
    IdempotencyConflict,
    PlanRejected,
    RolloutService,
)
from orchestrator.store import NotFoundError, Store, StoreError, TargetLockedError

from . import examples
from .links import CREATED_LINKS, OPERATION_IDS, WRITTEN_LINKS
from .problems import documented, field_errors, location, problem
from .schemas import (
    HOST_PATTERN,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_HOST,
    EventPage,
    HostRules,
    Reason,
    RolloutPage,
    RolloutView,
    RoutesWrite,
)

MAX_BODY_BYTES = 256 * 1024
MAX_EVENTS_PAGE = 1000  # analysis events are the largest, about 2 KB: 2 MB of the 6 MB
ROLLOUT_ID = r"^r-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$"
STEERING = ("pause", "resume", "abort", "promote")

app = APIGatewayRestResolver(enable_validation=True)
STEER = documented(RolloutView, 400, 404, 409, 413)
RolloutId = Annotated[str, Path(pattern=ROLLOUT_ID)]
HostName = Annotated[str, Path(pattern=HOST_PATTERN, max_length=MAX_HOST)]
SteeringBody = Annotated[Reason, Body(embed=False, openapi_examples=examples.REASON_EXAMPLES)]


@per_process
def service() -> RolloutService:
    return RolloutService(
        Store(), boto3.client("stepfunctions"), os.environ.get("EDGESHIFT_STATE_MACHINE_ARN", "")
    )


def actor() -> str:
    """The IAM principal API Gateway authenticated (IAM authorization on every method)."""
    identity = app.current_event.request_context.identity
    return identity.user_arn or identity.caller or "unknown"


@app.post(
    "/rollouts",
    summary="Start a rollout",
    operation_id=OPERATION_IDS["start"],
    description="With an `Idempotency-Key`, a repeated request with the same plan answers "
    "the first rollout (201, as it is now) and starts nothing; the same key with another "
    "plan is refused (422 naming `Idempotency-Key`). Keys are kept for 24 hours.",
    responses=documented(
        RolloutView,
        400,
        409,
        413,
        ok_status=201,
        links=CREATED_LINKS,
        headers={
            "Location": {
                "description": "the rollout's own path, /rollouts/{rollout_id}",
                "schema": {"type": "string"},
            }
        },
    ),
)
def post_rollout(
    plan: Annotated[RolloutPlan, Body(embed=False, openapi_examples=examples.PLAN_EXAMPLES)],
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            pattern=IDEMPOTENCY_KEY_PATTERN,
            description="makes a retried start safe: the service's own claim, written in "
            "the start's transaction (see RolloutService.start)",
        ),
    ] = None,
) -> Response[str]:
    rollout = service().start(plan, actor(), idempotency_key=idempotency_key)
    view = RolloutView.of(rollout).model_dump(mode="json")
    return Response(
        status_code=201,
        content_type="application/json",
        body=json.dumps(view),
        headers={"Location": f"/rollouts/{view['rollout_id']}"},
    )


@app.get(
    "/rollouts",
    summary="List rollouts, newest first",
    operation_id=OPERATION_IDS["list"],
    responses=documented(RolloutPage, 400),
)
def list_rollouts(
    host: Annotated[str | None, Query(pattern=HOST_PATTERN, max_length=MAX_HOST)] = None,
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
    operation_id=OPERATION_IDS["get"],
    responses=documented(RolloutView, 404),
)
def get_rollout(rollout_id: RolloutId) -> RolloutView:
    return RolloutView.of(service().get(rollout_id))


@app.get(
    "/rollouts/<rollout_id>/events",
    summary="The audit trail, with analysis evidence, oldest first, a page at a time",
    operation_id=OPERATION_IDS["events"],
    responses=documented(EventPage, 404),
)
def get_events(
    rollout_id: RolloutId,
    after: Annotated[int, Query(ge=0, le=99_999_999)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENTS_PAGE)] = MAX_EVENTS_PAGE,
) -> EventPage:
    # Paged: a look a minute for days is thousands of events of about 2 KB, and Lambda
    # refuses a response over 6 MB. One more than the page is read to know whether it ends.
    found = service().events(rollout_id, after=after, limit=limit + 1)
    items = found[:limit]
    return EventPage(items=items, next_after=items[-1].seq if len(found) > limit else None)


def _steer(verb: str, rollout_id: str, body: Reason) -> RolloutView:
    return RolloutView.of(getattr(service(), verb)(rollout_id, actor(), body.reason))


@app.post(
    "/rollouts/<rollout_id>/pause",
    summary="Hold traffic at the next decision point (reason required)",
    operation_id=OPERATION_IDS["pause"],
    responses=STEER,
)
def pause(
    rollout_id: RolloutId,
    body: SteeringBody,
) -> RolloutView:
    return _steer("pause", rollout_id, body)


@app.post(
    "/rollouts/<rollout_id>/resume",
    summary="Go on after a pause or approve a stage (reason required)",
    operation_id=OPERATION_IDS["resume"],
    responses=STEER,
)
def resume(
    rollout_id: RolloutId,
    body: SteeringBody,
) -> RolloutView:
    return _steer("resume", rollout_id, body)


@app.post(
    "/rollouts/<rollout_id>/abort",
    summary="Roll back now (reason required)",
    operation_id=OPERATION_IDS["abort"],
    responses=STEER,
)
def abort(
    rollout_id: RolloutId,
    body: SteeringBody,
) -> RolloutView:
    return _steer("abort", rollout_id, body)


@app.post(
    "/rollouts/<rollout_id>/promote",
    summary="Skip the remaining stages (reason required)",
    operation_id=OPERATION_IDS["promote"],
    responses=STEER,
)
def promote(
    rollout_id: RolloutId,
    body: SteeringBody,
) -> RolloutView:
    return _steer("promote", rollout_id, body)


@app.get(
    "/routes/<host>",
    summary="A host's rules, as the edge reads them",
    operation_id=OPERATION_IDS["get_routes"],
    responses=documented(HostRules, 400, 404),
)
def get_routes(host: HostName) -> HostRules:
    rules = service().store.get_routes(check_host(host))
    if not rules:
        raise NotFoundError(f"no rules for host {host}")
    return HostRules(rules=rules)


@app.put(
    "/routes/<host>",
    summary="Define or replace a host's rules (all or nothing)",
    operation_id=OPERATION_IDS["put_routes"],
    responses=documented(HostRules, 400, 409, 413, links=WRITTEN_LINKS),
)
def put_routes(
    host: HostName,
    body: Annotated[RoutesWrite, Body(embed=False)],
) -> HostRules:
    written = service().define_routes(
        host,
        [(rule, rule.revision or None) for rule in body.rules],
        actor(),
        body.reason or "PUT /routes",
    )
    return HostRules(rules=written)


# -- the document -----------------------------------------------------------------------------

# Every method is IAM-authorized at API Gateway (SigV4): the document says so, and a request
# API Gateway cannot route (unknown path or method) is its 403, never this handler's.
SECURITY_SCHEMES: dict[str, Any] = {
    "sigv4": {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "description": "AWS Signature Version 4 (API Gateway IAM authorization)",
    }
}


def openapi_json() -> str:
    """The API's OpenAPI document, generated from the routes and the models that validate."""
    return app.get_openapi_json_schema(
        title="edgeshift",
        version="1",
        description="Start, read and steer rollouts; define routes. Errors are "
        "application/problem+json (RFC 9457) naming the fields at fault.",
        security_schemes=SECURITY_SCHEMES,
        security=[{"sigv4": []}],
    )


# -- errors -----------------------------------------------------------------------------------


@app.not_found
def _no_route(exc: Exception) -> Response[str]:
    event = app.current_event
    return problem(404, "no-route", f"no route for {event.http_method} {event.path}")


@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError) -> Response[str]:
    pairs = [_field_error(e) for e in exc.errors()]
    if _is_steering() and all(field == "reason" for field, _ in pairs):
        # The one rule of a steering request's body: say why (the audit trail records it).
        return problem(400, "reason-required", pairs[0][1], field_errors(pairs))
    return problem(422, "validation", "the request is not valid", field_errors(pairs))


def _field_error(error: dict[str, Any]) -> tuple[str, str]:
    """Name the field: a body that is not JSON is ``body`` (powertools locates it at the
    character where parsing stopped), a missing steering body is its ``reason``."""
    loc, kind = tuple(error.get("loc") or ()), error.get("type")
    if kind == "json_invalid":
        why = (error.get("ctx") or {}).get("error") or "JSON decode error"
        at = f" at character {loc[1]}" if len(loc) > 1 else ""
        return "body", f"not valid JSON: {why}{at}"
    if loc == ("body",) and kind == "missing" and _is_steering():
        return "reason", 'required: a JSON body {"reason": "why"}'
    field = location(loc)
    if field == "reason" and kind in ("string_too_short", "string_pattern_mismatch"):
        return field, "required: say why (not empty, not only spaces)"
    return field, problem_message(str(error.get("msg", "invalid")), loc)


def _is_steering() -> bool:
    event = app.current_event
    return event.http_method == "POST" and event.path.rsplit("/", 1)[-1] in STEERING


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
    return problem(409, "target-locked", f"{exc}; wait for it to end or abort it")


@app.exception_handler(ControlRefused)
def _refused(exc: ControlRefused) -> Response[str]:
    return problem(409, "invalid-transition", str(exc))


@app.exception_handler(IdempotencyConflict)
def _idempotency(exc: IdempotencyConflict) -> Response[str]:
    # 422 as the IETF Idempotency-Key draft answers a key reused with another payload.
    return problem(422, "idempotency-key-reused", str(exc), field_errors([(exc.field, str(exc))]))


@app.exception_handler(StoreError)
def _conflict(exc: StoreError) -> Response[str]:
    return problem(409, "conflict", str(exc))


@app.exception_handler(ValueError)
def _bad_value(exc: ValueError) -> Response[str]:
    field, _, message = str(exc).partition(": ")
    return problem(400, "bad-request", str(exc), field_errors([(field, message or str(exc))]))
