"""Lambda handlers for the state machine's tasks.

Each task loads the rollout, does one idempotent step and returns the next
``Decision`` as ``{action, stage, wait_seconds, reason}``: a retried task finds its work
already done and answers the same way instead of doing it twice.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger

from orchestrator.analysis import evaluate
from orchestrator.models import (
    FULL_WEIGHT,
    AuditEvent,
    Release,
    Rollout,
    RolloutStatus,
    RouteRule,
    Variant,
    utcnow,
)
from orchestrator.store import RouteChange, Store, StoreError

from .decide import Action, Decision, decide, first_step

logger = Logger(service="edgeshift-workflow")
ACTOR = "workflow"


@cache
def _store() -> Store:
    return Store()


def _step(decision: Decision) -> dict[str, Any]:
    return decision.as_payload()


def _commit(
    before: Rollout,
    kind: str,
    why: str,
    detail: dict[str, Any],
    route: RouteChange | None = None,
    **changes: Any,
) -> Rollout:
    now = utcnow()
    after = before.model_copy(update={**changes, "version": before.version + 1, "updated_at": now})
    event = AuditEvent(
        rollout_id=before.rollout_id,
        seq=after.version,
        at=now,
        actor=ACTOR,
        kind=kind,
        reason=why,
        detail=detail,
    )
    _store().commit(before, after, event, route=route, release_lock=after.status.is_final)
    return after


def _route_change(rollout: Rollout, canary_weight: int, *, promote: bool = False) -> RouteChange:
    """Canary first, so its bucket range starts at 0 and only grows (sticky, monotonic).

    A release without actions keeps the route's actions for that variant (usually only the
    version changes, and templates like ``/releases/{version}{uri}`` follow it). Promotion
    makes the canary's release the new stable at 100%, so the next rollout starts from it.
    """
    target, plan = rollout.plan.target, rollout.plan
    rule = _store().get_route(target.host, target.path_rule)
    if rule is None:
        raise StoreError(f"route {target.host} {target.path_rule} disappeared")
    canary = _variant(plan.canary, rule, plan.canary.name, 0 if promote else canary_weight)
    stable_release = plan.canary if promote else plan.stable
    stable_actions_from = plan.canary.name if promote else plan.stable.name
    stable = _variant(
        stable_release.model_copy(update={"name": plan.stable.name}),
        rule,
        stable_actions_from,
        FULL_WEIGHT - canary.weight,
    )
    return RouteChange(
        rule=rule, variants=[canary, stable], salt=rollout.salt, rollout_id=rollout.rollout_id
    )


def _variant(release: Release, rule: RouteRule, actions_of: str, weight: int) -> Variant:
    actions = release.actions or rule.variant(actions_of).actions
    return Variant(name=release.name, version=release.version, actions=actions, weight=weight)


def _weights(change: RouteChange) -> dict[str, int]:
    return {variant.name: variant.weight for variant in change.variants}


@logger.inject_lambda_context
def begin(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rollout = _store().get_rollout(event["rollout_id"])
    if rollout.status is RolloutStatus.PENDING:
        _commit(
            rollout,
            "started",
            "execution began",
            {"execution_arn": event.get("execution_arn")},
            status=RolloutStatus.RUNNING,
            execution_arn=event.get("execution_arn"),
        )
    return _step(first_step())


@logger.inject_lambda_context
def apply_stage(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rollout = _store().get_rollout(event["rollout_id"])
    index = int(event["step"]["stage"])
    stage = rollout.plan.stages[index]
    if rollout.stage_index != index:  # a retry after success finds the stage applied
        _require_running(rollout)
        change = _route_change(rollout, stage.weight_bp)
        rollout = _commit(
            rollout,
            "stage_applied",
            f"stage {index + 1}: canary at {stage.weight}%",
            {"stage": index, "weights": _weights(change), "revision": change.rule.revision + 1},
            route=change,
            stage_index=index,
            stage_started_at=utcnow(),
        )
    return _step(Decision(Action.BAKE, index, stage.interval, "stage applied"))


@logger.inject_lambda_context
def analyze(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rollout = _store().get_rollout(event["rollout_id"])
    _require_running(rollout)
    now = utcnow()
    start = rollout.stage_started_at or now
    verdict = evaluate(rollout, start, now)
    decision = decide(rollout, verdict, now)
    logger.info("analysis", extra={"verdict": verdict.as_dict(), "decision": decision.as_payload()})
    _commit(
        rollout,
        "analysis",
        decision.reason,
        {
            "stage": rollout.stage_index,
            "weight": rollout.canary_weight_bp / 100,
            "window": [start.isoformat(), now.isoformat()],
            "verdict": verdict.as_dict(),
            "decision": decision.as_payload(),
        },
    )
    return _step(decision)


@logger.inject_lambda_context
def promote(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rollout = _store().get_rollout(event["rollout_id"])
    if rollout.status is not RolloutStatus.PROMOTED:
        _require_running(rollout)
        change = _route_change(rollout, FULL_WEIGHT, promote=True)
        rollout = _commit(
            rollout,
            "promoted",
            f"every stage passed; {rollout.plan.canary.version} serves everyone",
            {"weights": _weights(change), "version": rollout.plan.canary.version},
            route=change,
            status=RolloutStatus.PROMOTED,
            reason="every stage passed",
        )
    return _step(Decision(Action.PROMOTE, rollout.stage_index, 0, "promoted"))


@logger.inject_lambda_context
def rollback(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rollout = _store().get_rollout(event["rollout_id"])
    if rollout.status is not RolloutStatus.ROLLED_BACK:
        reason = _rollback_reason(rollout, event)
        change = _route_change(rollout, 0)
        rollout = _commit(
            rollout,
            "rolled_back",
            reason,
            {"weights": _weights(change), "error": event.get("error")},
            route=change,
            status=RolloutStatus.ROLLED_BACK,
            reason=reason,
        )
    return _step(Decision(Action.ROLLBACK, rollout.stage_index, 0, rollout.reason))


def _rollback_reason(rollout: Rollout, event: dict[str, Any]) -> str:
    error = event.get("error")
    if error:
        cause = str(error.get("Cause", ""))[:500]
        return f"task failed: {error.get('Error', 'unknown error')}: {cause}"
    return str(event.get("step", {}).get("reason") or "analysis decided to roll back")


def _require_running(rollout: Rollout) -> None:
    if rollout.status is not RolloutStatus.RUNNING:
        raise StoreError(f"rollout {rollout.rollout_id} is {rollout.status}, not RUNNING")
