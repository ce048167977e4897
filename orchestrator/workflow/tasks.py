"""Lambda handlers for the state machine's tasks.

Each task loads the rollout, does one idempotent step and returns the next ``Decision``
as ``{action, stage, wait_seconds, reason}``: a retried task finds its work already done
and answers the same way instead of doing it twice. Every change is one conditional
DynamoDB transaction with its audit event (see ``orchestrator.store``), and the commit
announces the lifecycle event it stands for (``orchestrator.store.lifecycle``).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from orchestrator.analysis import preflight
from orchestrator.analysis.forecast import feasibility
from orchestrator.models import ControlAction, Rollout, RolloutStatus, utcnow
from orchestrator.runtime import per_process
from orchestrator.store import Store, StoreError

from . import transitions
from .decide import Action, Decision, after_park, first_step, park_limit
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
    metrics.add_metric(name="StageApplied", unit=MetricUnit.Count, value=1)
    return Decision(Action.BAKE, index, stage.interval, "stage applied").as_payload()


@_lambda
def analyze(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rollout = _load(event)
    # When Step Functions entered this Analyze state: the same for every retry of one look,
    # so a retried invoke (Lambda.ServiceException after the look committed) or a redo
    # after a lost commit response answers the look's recorded decision, not a second look.
    look_key = event.get("entered_at")
    recorded = _recorded_look(rollout, look_key)
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
        detail={**step.detail, "look_key": look_key},
        # The execution is not parked while it looks: a token still held is a wake-up
        # call that was accepted but not yet forgotten.
        task_token=None,
        **step.changes,
    )
    metrics.add_metric(name=f"Verdict_{verdict.outcome.value}", unit=MetricUnit.Count, value=1)
    split = verdict.split
    if split is not None and split.outcome == "mismatch":  # the commit announced it
        metrics.add_metric(name="SplitMismatch", unit=MetricUnit.Count, value=1)
    return decision.as_payload()


class RequestPending(Exception):
    """Hold found a person's request already recorded (a promote or abort that arrived after
    the look decided to park, or a resume whose wake-up call was lost): the state machine
    sends this to Recheck, which carries the request out, instead of parking over it."""


@_lambda
def hold(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Record the task token; the execution then waits until a person answers, or until the
    re-read interval (``wait_seconds``) passes and Recheck reads the record again."""
    rollout = _load(event)
    step: dict[str, Any] = dict(event["step"])
    token = event["task_token"]
    if rollout.task_token == token:
        return step  # a retry after this very park was recorded
    if rollout.status.is_waiting:  # Recheck found nobody answered: wait on the new token
        _commit_park(rollout, "reparked", "still waiting for an answer", token, step)
        return step
    if rollout.status is not RolloutStatus.RUNNING or rollout.task_token:
        raise RequestPending(f"rollout {rollout.rollout_id} is {rollout.status}: request recorded")
    control = rollout.control
    if control is not None and control.action is not ControlAction.PAUSE:
        raise RequestPending(f"a {control.action} by {control.actor} is pending")
    waiting = (
        RolloutStatus.AWAITING_APPROVAL
        if step["action"] == Action.AWAIT_APPROVAL.value
        else RolloutStatus.PAUSED
    )
    kind = "awaiting_approval" if waiting is RolloutStatus.AWAITING_APPROVAL else "paused"
    limit = park_limit(Action(step["action"]), rollout.plan.policies)
    rollout = _commit_park(
        rollout,
        kind,
        step["reason"],
        token,
        step,
        status=waiting,
        control=None,
        reason=step["reason"],
        parked_until=utcnow() + timedelta(seconds=limit),
        limit=limit,
    )
    return step


def _commit_park(
    rollout: Rollout,
    kind: str,
    why: str,
    token: str,
    step: dict[str, Any],
    *,
    limit: int | None = None,
    **changes: Any,
) -> Rollout:
    detail: dict[str, Any] = {"stage": rollout.stage_index, "recheck_seconds": step["wait_seconds"]}
    if limit is not None:
        detail["timeout_seconds"] = limit
    return transitions.commit(
        _store(), rollout, kind, why, actor=ACTOR, detail=detail, task_token=token, **changes
    )


@_lambda
def recheck(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A parked execution re-reads the record: its re-read interval passed (States.Timeout)
    or Hold found a request already made (RequestPending). Whatever a person asked for is
    carried out from the record, so a lost SendTaskSuccess costs at most one interval."""
    rollout = _load(event)
    wake = _pending_wake(rollout)
    decision = after_park(rollout, utcnow(), wake)
    changes: dict[str, Any] = {}
    if not rollout.status.is_waiting and rollout.task_token:
        changes["task_token"] = None  # its wake-up call is carried out here instead
    if not rollout.status.is_final and not rollout.status.is_waiting:
        if decision.action is Action.PROMOTE and rollout.status is not RolloutStatus.PROMOTING:
            changes.update(status=RolloutStatus.PROMOTING, reason=decision.reason, control=None)
        elif (
            decision.action is Action.ROLLBACK and rollout.status is not RolloutStatus.ROLLING_BACK
        ):
            changes.update(status=RolloutStatus.ROLLING_BACK, reason=decision.reason, control=None)
    elif rollout.status.is_waiting and decision.action is Action.ROLLBACK:
        changes.update(status=RolloutStatus.ROLLING_BACK, reason=decision.reason, task_token=None)
    if changes:
        transitions.commit(
            _store(),
            rollout,
            "rechecked",
            f"re-read the record while parked: {decision.reason}",
            actor=ACTOR,
            detail={
                "trigger": (event.get("error") or {}).get("Error"),
                "wake": wake,
                "decision": decision.as_payload(),
            },
            **changes,
        )
    return {"rollout_id": rollout.rollout_id, "step": decision.as_payload()}


def _pending_wake(rollout: Rollout) -> dict[str, Any] | None:
    """The next step recorded with a person's answer whose wake-up call was never accepted
    (the token is kept on the rollout until it is)."""
    if not rollout.task_token or rollout.status.is_waiting:
        return None
    for event in _store().newest_events(rollout.rollout_id):
        wake = event.detail.get("wake")
        if isinstance(wake, dict):
            output = wake.get("output")
            return dict(output) if isinstance(output, dict) else None
    return None


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
        metrics.add_metric(name="Promoted", unit=MetricUnit.Count, value=1)
    return Decision(Action.PROMOTE, rollout.stage_index, 0, rollout.reason).as_payload()


@_lambda
def rollback(event: dict[str, Any], context: Any) -> dict[str, Any]:
    rollout = _load(event)
    if rollout.status.is_final:
        logger.warning("rollback of a finished rollout ignored", status=rollout.status.value)
        # Promote committed but its answer was lost: the state machine's Ended state sends
        # a "promote" answer to Promoted, so the execution ends as what viewers get.
        action = Action.PROMOTE if rollout.status is RolloutStatus.PROMOTED else Action.ROLLBACK
        return Decision(action, rollout.stage_index, 0, rollout.reason).as_payload()
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
    metrics.add_metric(name="RollbackFailed", unit=MetricUnit.Count, value=1)
    return {"status": rollout.status.value}


def _recorded_look(rollout: Rollout, look_key: str | None) -> dict[str, Any] | None:
    """The decision of this very look, if it already committed (see ``analyze``)."""
    if not look_key:
        return None
    for event in _store().newest_events(rollout.rollout_id):
        if event.kind == "analysis":
            decision = event.detail.get("decision")
            if event.detail.get("look_key") == look_key and isinstance(decision, dict):
                return dict(decision)
            return None  # only the latest look can be this one
    return None


def _require(rollout: Rollout, *allowed: RolloutStatus) -> None:
    if rollout.status not in allowed:
        names = " or ".join(status.value for status in allowed)
        raise RolloutNotActive(f"rollout {rollout.rollout_id} is {rollout.status}, not {names}")
