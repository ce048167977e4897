"""Lambda handlers for the state machine's tasks.

Each task loads the rollout, does one idempotent step and returns the next ``Decision``
as ``{action, stage, wait_seconds, reason}``: a retried task finds its work already done
and answers the same way instead of doing it twice. Every change is one conditional
DynamoDB transaction with its audit event (see ``orchestrator.store``).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from orchestrator.analysis import preflight
from orchestrator.analysis.forecast import feasibility
from orchestrator.events.bus import publish
from orchestrator.models import Rollout, RolloutStatus, utcnow
from orchestrator.runtime import per_process
from orchestrator.store import Store, StoreError

from . import transitions
from .decide import Action, Decision, first_step
from .step import stage_started, take_look

logger = Logger(service="edgeshift-workflow")
tracer = Tracer(service="edgeshift-workflow")
metrics = Metrics(namespace="EdgeShift", service="edgeshift-workflow")
ACTOR = "workflow"


class RolloutNotActive(StoreError):
    """The rollout is not in a state this task may act on (e.g. aborted meanwhile)."""


class PreflightFailed(Exception):
    """A metric source cannot answer: fail before any user sees the canary."""


@per_process
def _store() -> Store:
    return Store()


def _load(event: dict[str, Any]) -> Rollout:
    rollout = _store().get_rollout(event["rollout_id"])
    logger.append_keys(rollout_id=rollout.rollout_id, status=rollout.status.value)
    return rollout


def _lambda(handler: Any) -> Any:
    """The powertools decorators every task wears, in the order they must nest."""
    return logger.inject_lambda_context(
        tracer.capture_lambda_handler(metrics.log_metrics(transitions.on_a_fresh_read(handler)))
    )


@_lambda
def begin(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rollout = _load(event)
    if rollout.status is RolloutStatus.PENDING:
        problems, noise = preflight(rollout)
        if problems:  # caught by the state machine: rolled back before the first shift
            raise PreflightFailed("; ".join(problems)[:1000])
        warnings = [
            stage.message() for stage in feasibility(rollout.plan, noise) if not stage.feasible
        ]
        if warnings and not rollout.force:
            raise PreflightFailed(
                ("a healthy canary could not pass in time: " + "; ".join(warnings))[:900]
                + " (start with --force to run anyway)"
            )
        rollout = transitions.commit(
            _store(),
            rollout,
            "started",
            "execution began; metric sources answered",
            actor=ACTOR,
            detail={
                "execution_arn": event.get("execution_arn"),
                "noise": {name: n.model_dump() for name, n in noise.items()},
                "forecast_warnings": warnings,
            },
            status=RolloutStatus.RUNNING,
            execution_arn=event.get("execution_arn"),
            noise=noise,
        )
        publish("started", rollout)
    return first_step().as_payload()


@_lambda
def apply_stage(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rollout = _load(event)
    index = int(event["step"]["stage"])
    stage = rollout.plan.stages[index]
    if rollout.stage_index == index:  # a retry after success finds the stage applied
        return Decision(Action.BAKE, index, stage.interval, "stage applied").as_payload()
    _require(rollout, RolloutStatus.RUNNING)
    if rollout.control is not None:  # never widen with a person's request pending
        return Decision(Action.BAKE, rollout.stage_index, 1, "control request first").as_payload()
    change = transitions.route_change(_store(), rollout, stage.weight_bp)
    rollout = transitions.commit(
        _store(),
        rollout,
        "stage_applied",
        f"stage {index + 1}: canary at {stage.weight}%",
        actor=ACTOR,
        route=change,
        detail={"stage": index, "weights": transitions.weights(change)},
        **stage_started(index, utcnow(), rollout),
    )
    publish("stage_applied", rollout)
    metrics.add_metric(name="StageApplied", unit=MetricUnit.Count, value=1)
    return Decision(Action.BAKE, index, stage.interval, "stage applied").as_payload()


@_lambda
def analyze(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rollout = _load(event)
    if rollout.status in (RolloutStatus.PROMOTING, RolloutStatus.ROLLING_BACK):
        # A retried invoke (Lambda.ServiceException after this look's commit) finds its own
        # decision written: answer it again, or a passing canary would be sent to Rollback.
        recorded = _own_decision(rollout)
        if recorded is not None:
            return recorded
    _require(rollout, RolloutStatus.RUNNING)
    step = take_look(rollout, utcnow())
    verdict, decision = step.verdict, step.decision
    logger.info("analysis", extra={"verdict": verdict.as_dict(), "decision": decision.as_payload()})
    transitions.commit(
        _store(),
        rollout,
        "analysis",
        decision.reason,
        actor=ACTOR,
        detail=step.detail,
        **step.changes,
    )
    metrics.add_metric(name=f"Verdict_{verdict.outcome.value}", unit=MetricUnit.Count, value=1)
    return decision.as_payload()


@_lambda
def hold(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Record the task token; the execution then waits until a person answers or it expires."""
    rollout = _load(event)
    step: dict[str, Any] = dict(event["step"])
    waiting = (
        RolloutStatus.AWAITING_APPROVAL
        if step["action"] == Action.AWAIT_APPROVAL.value
        else RolloutStatus.PAUSED
    )
    if rollout.task_token == event["task_token"]:
        return step
    _require(rollout, RolloutStatus.RUNNING)
    if rollout.control is not None and rollout.control.action.value == "abort":
        raise RolloutNotActive(f"aborted by {rollout.control.actor}: {rollout.control.reason}")
    kind = "awaiting_approval" if waiting is RolloutStatus.AWAITING_APPROVAL else "paused"
    rollout = transitions.commit(
        _store(),
        rollout,
        kind,
        step["reason"],
        actor=ACTOR,
        detail={"stage": rollout.stage_index, "timeout_seconds": step["wait_seconds"]},
        status=waiting,
        task_token=event["task_token"],
        control=None,
        reason=step["reason"],
    )
    publish(kind, rollout)
    return step


@_lambda
def promote(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rollout = _load(event)
    if rollout.status is not RolloutStatus.PROMOTED:
        _require(rollout, RolloutStatus.PROMOTING, RolloutStatus.RUNNING)
        change = transitions.route_change(_store(), rollout, 0, promote=True)
        version = rollout.plan.canary.version
        rollout = transitions.commit(
            _store(),
            rollout,
            "promoted",
            f"{version} is the new stable for everyone",
            actor=ACTOR,
            route=change,
            detail={"weights": transitions.weights(change), "version": version},
            status=RolloutStatus.PROMOTED,
            reason=rollout.reason or "every stage passed",
            control=None,
            task_token=None,
        )
        publish("promoted", rollout)
        metrics.add_metric(name="Promoted", unit=MetricUnit.Count, value=1)
    return Decision(Action.PROMOTE, rollout.stage_index, 0, rollout.reason).as_payload()


@_lambda
def rollback(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rollout = _load(event)
    if rollout.status.is_final:
        logger.warning("rollback of a finished rollout ignored")
        return Decision(Action.ROLLBACK, rollout.stage_index, 0, rollout.reason).as_payload()
    reason = transitions.rollback_reason(rollout, event)
    if rollout.status is not RolloutStatus.ROLLING_BACK:  # visible while the route is written
        rollout = transitions.commit(
            _store(),
            rollout,
            "rolling_back",
            reason,
            actor=ACTOR,
            detail={"error": event.get("error")},
            status=RolloutStatus.ROLLING_BACK,
            reason=reason,
            task_token=None,
        )
    change = transitions.route_change(_store(), rollout, 0)
    invalidation = transitions.invalidate(rollout)
    rollout = transitions.commit(
        _store(),
        rollout,
        "rolled_back",
        rollout.reason,
        actor=ACTOR,
        route=change,
        detail={"weights": transitions.weights(change), "invalidation": invalidation},
        status=RolloutStatus.ROLLED_BACK,
        control=None,
    )
    publish("rolled_back", rollout)
    metrics.add_metric(name="RolledBack", unit=MetricUnit.Count, value=1)
    return Decision(Action.ROLLBACK, rollout.stage_index, 0, rollout.reason).as_payload()


@_lambda
def record_failure(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """After the rollback's retries: FAILED, lock kept, loud (event, metric, alarm)."""
    rollout = _load(event)
    error = event.get("rollback_error") or {}
    reason = (
        f"rollback failed: {error.get('Error', 'unknown')}: {str(error.get('Cause', ''))[:300]}"
    )
    if not rollout.status.is_final:
        rollout = transitions.commit(
            _store(),
            rollout,
            "failed",
            reason,
            actor=ACTOR,
            detail={"error": error},
            status=RolloutStatus.FAILED,
            reason=reason,
            keep_lock=True,
        )
    publish("failed", rollout)
    metrics.add_metric(name="RollbackFailed", unit=MetricUnit.Count, value=1)
    return {"status": rollout.status.value}


def _own_decision(rollout: Rollout) -> dict[str, Any] | None:
    """The decision of the analysis that produced the rollout's current version, if the
    latest change was a look (not a person's request or another task)."""
    events = _store().events(rollout.rollout_id)
    latest = max(events, key=lambda e: e.seq, default=None)
    if latest is None or latest.kind != "analysis" or latest.seq != rollout.version:
        return None
    decision = latest.detail.get("decision")
    return dict(decision) if isinstance(decision, dict) else None


def _require(rollout: Rollout, *allowed: RolloutStatus) -> None:
    if rollout.status not in allowed:
        names = " or ".join(status.value for status in allowed)
        raise RolloutNotActive(f"rollout {rollout.rollout_id} is {rollout.status}, not {names}")
