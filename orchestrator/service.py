"""What the CLI, the API and the EventBridge starter all call: one place for the rules of
starting, reading and steering rollouts."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from orchestrator.models import (
    AuditEvent,
    ControlAction,
    ControlRequest,
    Rollout,
    RolloutPlan,
    RolloutStatus,
    RouteRule,
    utcnow,
)
from orchestrator.models.route import check_host
from orchestrator.store import IdempotentReplay, StaleWriteError, Store
from orchestrator.workflow import transitions
from orchestrator.workflow.decide import Action, Decision, advance

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient

MAX_REASON = 1000
# SendTaskSuccess/Failure tries per request (throttling, 5xx, timeouts), backing off from
# WAKE_BACKOFF seconds; a wake that still fails is sent again by the next request.
WAKE_ATTEMPTS = 3
WAKE_BACKOFF = 0.2
# Step Functions' answers for a token nobody waits on any more.
_TOKEN_GONE = frozenset({"TaskTimedOut", "InvalidToken", "TaskDoesNotExist"})
ACTIVE = frozenset(s for s in RolloutStatus if not s.is_final)


class PlanRejected(ValueError):
    """The plan cannot run against the current state of the world; nothing was written."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class ControlRefused(Exception):
    """The request does not apply to the rollout as it is now; nothing was written."""


class IdempotencyConflict(Exception):
    """The idempotency key was already used for a different plan."""

    field = "Idempotency-Key"


@dataclass
class RolloutService:
    store: Store
    sfn: SFNClient
    state_machine_arn: str
    # EventBridge for the lifecycle events a person's request causes (resume); None: the
    # store's. The CLI passes one made like its others (endpoint, region). The store's
    # commit announces them, so the service's view of it announces through this client.
    eventbridge: Any = None

    def __post_init__(self) -> None:
        if self.eventbridge is not None:
            self.store = self.store.announcing_through(self.eventbridge)

    # -- starting -----------------------------------------------------------------------------

    def start(
        self,
        plan: RolloutPlan,
        actor: str,
        idempotency_key: str | None = None,
        *,
        force: bool = False,
    ) -> Rollout:
        """Check the plan against its route, take the target's lock, start the execution.

        Repeating a start with the same ``idempotency_key`` and plan returns the first
        rollout; the same key with another plan is refused. ``force``: run even when the
        feasibility forecast at preflight says a healthy canary cannot pass a stage in time
        (the warning is then recorded instead of rolling back before the first shift).

        This claim is the one idempotency of starts, for the API, the CLI and release
        events alike: the key is written in the very transaction that takes the lock and
        writes the rollout, so there is no window in which a key is "in progress", a start
        that fails leaves no key behind, and a replay answers the rollout as it is now.
        (Powertools' idempotency utility was dropped for it: a second record, kept apart
        from the start's transaction, with its own fingerprint and replay answer.)
        """
        fingerprint = hashlib.sha256(plan.model_dump_json().encode()).hexdigest()
        if idempotency_key and (earlier := self.store.idempotent_start(idempotency_key)):
            return self._replay(idempotency_key, fingerprint, *earlier)
        self._check_route(plan)
        rollout = Rollout.start(plan, actor).model_copy(update={"force": force})
        created = AuditEvent(
            rollout_id=rollout.rollout_id,
            seq=1,
            at=rollout.created_at,
            actor=actor,
            kind="created",
            reason="rollout requested",
            detail={
                "plan": plan.model_dump(mode="json"),
                "idempotency_key": idempotency_key,
                "force": force,
            },
        )
        claim = (idempotency_key, fingerprint) if idempotency_key else None
        try:
            self.store.create_rollout(rollout, created, claim)
        except IdempotentReplay as replay:  # a concurrent twin won the key
            return self._replay(
                idempotency_key or "", fingerprint, replay.rollout_id, replay.fingerprint
            )
        try:
            self.sfn.start_execution(
                stateMachineArn=self.state_machine_arn,
                name=rollout.rollout_id,  # one execution per rollout, by construction
                input=json.dumps({"rollout_id": rollout.rollout_id}),
            )
        except (ClientError, BotoCoreError) as exc:
            self._abandon(rollout, actor, f"could not start the state machine: {exc}")
            raise
        return rollout

    def _replay(self, key: str, fingerprint: str, rollout_id: str, earlier: str) -> Rollout:
        if fingerprint != earlier:
            raise IdempotencyConflict(
                f"idempotency key {key!r} was used for another plan (rollout {rollout_id})"
            )
        return self.store.get_rollout(rollout_id)

    def _check_route(self, plan: RolloutPlan) -> None:
        target = plan.target
        rule = self.store.get_route(target.host, target.path_rule)
        if rule is None:
            raise PlanRejected(
                "target", f"no route for {target.host} {target.path_rule}; define it first"
            )
        if rule.assignment is not None:  # the flag chooses the variant, not the weights
            flag = rule.assignment.flag
            raise PlanRejected(
                "target",
                f"{target.host} {target.path_rule} is routed by flag {flag!r}: a rollout "
                "cannot change its weights; change the flag instead",
            )
        names = {variant.name for variant in rule.variants}
        expected = {plan.stable.name, plan.canary.name}
        if names != expected:
            raise PlanRejected(
                "stable.name",
                f"the route's variants are {sorted(names)}, the plan names {sorted(expected)}",
            )
        live = rule.variant(plan.stable.name)
        if live.version != plan.stable.version:
            raise PlanRejected(
                "stable.version",
                f"the route serves {live.version} as {live.name}, the plan says "
                f"{plan.stable.version}",
            )

    def _abandon(self, rollout: Rollout, actor: str, reason: str) -> None:
        """Never leave a lock behind for a rollout whose execution never started."""
        transitions.commit(
            self.store,
            rollout,
            "failed",
            reason,
            actor=actor,
            status=RolloutStatus.FAILED,
            reason=reason,
        )

    # -- routes -------------------------------------------------------------------------------

    def define_routes(
        self,
        host: str,
        rules: list[tuple[RouteRule, int | None]],
        actor: str,
        reason: str = "",
    ) -> list[RouteRule]:
        """Define or replace some of ``host``'s rules, all or nothing, each at the revision
        it was read at (None: a new rule).

        A target with an active rollout belongs to it until it ends: the write carries a
        condition on the target's lock in the same transaction, so a rollout that starts
        between the caller's read and this write still wins (``TargetLockedError`` naming
        it), and nothing is written.
        """
        check_host(host)
        for index, (rule, _) in enumerate(rules):
            if rule.host != host:
                raise ValueError(f"rules.{index}.host: must be {host}, the host of the write")
        from orchestrator.flags import FlagStore  # a flag-routed rule needs its flag's data

        flags = FlagStore(self.store.client, self.store.tables)
        guards = flags.pinned_for([r for r, _ in rules], actor=actor, reason=reason)
        return self.store.put_routes(rules, actor=actor, reason=reason, guards=guards)

    # -- reading ------------------------------------------------------------------------------

    def get(self, rollout_id: str) -> Rollout:
        return self.store.get_rollout(rollout_id)

    def events(
        self, rollout_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[AuditEvent]:
        """The audit trail oldest first; ``after`` a seq and ``limit`` read one page of it."""
        self.store.get_rollout(rollout_id)  # NotFoundError for an unknown id, not an empty list
        return self.store.events(rollout_id, after=after, limit=limit)

    def list(
        self,
        *,
        host: str | None = None,
        path_rule: str = "default",
        statuses: frozenset[RolloutStatus] = frozenset(),
        limit: int = 50,
        after: str | None = None,
    ) -> tuple[list[Rollout], str | None]:
        """Newest first, optionally for one target and some statuses; paginated."""
        if not 1 <= limit <= 100:
            raise ValueError("limit: must be between 1 and 100")
        return self.store.list_rollouts(
            target=f"{host}#{path_rule}" if host else None,
            statuses=frozenset(s.value for s in statuses),
            limit=limit,
            after=after,
        )

    # -- steering -----------------------------------------------------------------------------

    @transitions.on_a_fresh_read
    def pause(self, rollout_id: str, actor: str, reason: str) -> Rollout:
        """Hold traffic where it is at the next decision point, until resume or abort."""
        self._check_reason(reason, "pause")  # bad input is refused before anything is read
        rollout = self.get(rollout_id)
        if rollout.status is not RolloutStatus.RUNNING:
            raise ControlRefused(f"only a RUNNING rollout can be paused; it is {rollout.status}")
        self._refuse_without_execution(rollout, "pause")
        return self._request(rollout, ControlAction.PAUSE, actor, reason)

    @transitions.on_a_fresh_read
    def resume(self, rollout_id: str, actor: str, reason: str) -> Rollout:
        """Go on after a pause or an approval gate (or cancel a pause not yet honoured)."""
        self._check_reason(reason, "resume")  # bad input is refused before anything is read
        rollout = self.get(rollout_id)
        resent = self._resend_wake(rollout)
        if resent is not None:
            return resent
        if (
            rollout.status is RolloutStatus.RUNNING
            and rollout.control is not None
            and (rollout.control.action is ControlAction.PAUSE)
        ):
            return transitions.commit(
                self.store,
                rollout,
                "control_cancelled",
                reason,
                actor=actor,
                control=None,
            )
        if not rollout.status.is_waiting:
            raise ControlRefused(f"nothing to resume: the rollout is {rollout.status}")
        index = rollout.stage_index
        step = (
            advance(rollout, index)
            if rollout.status is RolloutStatus.AWAITING_APPROVAL
            else Decision(Action.BAKE, index, 1, f"resumed by {actor}")
        )
        # After a split_mismatch pause, the split is judged again from now on: the person
        # fixed the edge or accepted the drift, and the periods that paused it stay in the
        # audit trail instead of pausing it again at the next look.
        split_from = utcnow() if rollout.reason.startswith("split_mismatch") else rollout.split_from
        self._refuse_without_execution(rollout, "resume")
        # The pause's reason ("paused by ...") would otherwise stay on a running rollout
        # until it ends, and read as "still paused" in every status view.
        resumed = f"resumed by {actor}: {reason}"
        return self._release_hold(
            rollout,
            "resumed",
            reason,
            actor,
            RolloutStatus.RUNNING,
            output=step.as_payload(),
            detail={"next": step.as_payload()},
            split_from=split_from,
            reason=resumed,
        )

    @transitions.on_a_fresh_read
    def abort(self, rollout_id: str, actor: str, reason: str) -> Rollout:
        """Roll back now: at once when parked on a token, else at the next decision point."""
        self._check_reason(reason, "abort")  # bad input is refused before anything is read
        resent = self._resend_wake(self.get(rollout_id))
        if resent is not None and resent.status is not RolloutStatus.RUNNING:
            return resent  # the lost wake was this very request's
        rollout = self._steerable(rollout_id, reason, "abort")
        if self._ended_execution(rollout) is not None:
            # Nobody would ever carry the abort out: do what it asks (stable for everyone).
            return self.recover(rollout_id, actor, f"aborted: {reason}")
        why = f"aborted by {actor}: {reason}"
        if rollout.status.is_waiting:
            return self._release_hold(
                rollout, "abort", why, actor, RolloutStatus.ROLLING_BACK, error=why
            )
        return self._request(rollout, ControlAction.ABORT, actor, reason)

    @transitions.on_a_fresh_read
    def promote(self, rollout_id: str, actor: str, reason: str) -> Rollout:
        """Skip the remaining stages and make the canary the stable release."""
        self._check_reason(reason, "promote")  # bad input is refused before anything is read
        resent = self._resend_wake(self.get(rollout_id))
        if resent is not None and resent.status is not RolloutStatus.RUNNING:
            return resent  # the lost wake was this very request's
        rollout = self._steerable(rollout_id, reason, "promote")
        self._refuse_without_execution(rollout, "promote")
        why = f"promoted by {actor}: {reason}"
        if rollout.status.is_waiting:
            step = Decision(Action.PROMOTE, rollout.stage_index, 0, why)
            return self._release_hold(
                rollout, "promote", why, actor, RolloutStatus.PROMOTING, output=step.as_payload()
            )
        return self._request(rollout, ControlAction.PROMOTE, actor, reason)

    @transitions.on_a_fresh_read
    def recover(self, rollout_id: str, actor: str, reason: str) -> Rollout:
        """Finish by hand what the workflow could not: stable for everyone, then free the target.

        For a FAILED rollout (its lock kept on purpose), and for a live rollout whose
        execution is gone (stopped from outside, timed out): nobody else will ever move it.
        A rollout whose execution still runs is refused: abort it instead. The route write
        is conditional on its revision like every other, and every step is audited.
        """
        if not reason.strip():
            raise ValueError("reason: required to recover a rollout")
        rollout = self.get(rollout_id)
        resent = self._resend_wake(rollout)
        if resent is not None:
            return resent
        why = f"recovered by {actor}: {reason}"
        if not rollout.status.is_final:
            ended = self._execution_status(rollout)
            if ended in (None, "RUNNING"):
                raise ControlRefused(
                    f"the rollout is {rollout.status} and its execution is "
                    f"{ended or 'unknown'}: use abort, the workflow will roll back"
                )
            why = f"{why} (execution {ended})"
            if rollout.status is not RolloutStatus.ROLLING_BACK:
                rollout = transitions.commit(
                    self.store,
                    rollout,
                    "rolling_back",
                    why,
                    actor=actor,
                    status=RolloutStatus.ROLLING_BACK,
                    reason=why,
                    task_token=None,
                )
        elif rollout.status is not RolloutStatus.FAILED:
            raise ControlRefused(f"nothing to recover: the rollout is {rollout.status}")
        change = transitions.route_change(self.store, rollout, 0)
        failed = rollout.status is RolloutStatus.FAILED
        return transitions.commit(
            self.store,
            rollout,
            "recovered",
            why,
            actor=actor,
            route=change,
            detail={"weights": transitions.weights(change)},
            status=RolloutStatus.FAILED if failed else RolloutStatus.ROLLED_BACK,
            control=None,
        )

    def _execution_status(self, rollout: Rollout) -> str | None:
        if not rollout.execution_arn:
            return None
        try:
            answer = self.sfn.describe_execution(executionArn=rollout.execution_arn)
        except (ClientError, BotoCoreError):
            return None
        return str(answer["status"])

    @staticmethod
    def _check_reason(reason: str, verb: str) -> None:
        if not reason.strip():
            raise ValueError(f"reason: required to {verb} a rollout")
        if len(reason) > MAX_REASON:
            raise ValueError(f"reason: at most {MAX_REASON} characters")

    def _steerable(self, rollout_id: str, reason: str, verb: str) -> Rollout:
        self._check_reason(reason, verb)
        rollout = self.get(rollout_id)
        if rollout.status.is_final or rollout.status in (
            RolloutStatus.PROMOTING,
            RolloutStatus.ROLLING_BACK,
        ):
            raise ControlRefused(f"cannot {verb}: the rollout is already {rollout.status}")
        return rollout

    def _ended_execution(self, rollout: Rollout) -> str | None:
        """The status of the rollout's execution when it no longer runs (stopped from the
        console, failed, timed out): then no request on the record is ever carried out."""
        status = self._execution_status(rollout)
        return status if status not in (None, "RUNNING") else None

    def _refuse_without_execution(self, rollout: Rollout, verb: str) -> None:
        ended = self._ended_execution(rollout)
        if ended is not None:
            raise ControlRefused(
                f"the rollout's execution is {ended} (stopped outside edgeshift), so nothing "
                f"would carry out a {verb}: run `rollout recover {rollout.rollout_id} --reason "
                "...` to send every user to stable and free the target"
            )

    def _request(self, rollout: Rollout, action: ControlAction, actor: str, reason: str) -> Rollout:
        pending = rollout.control
        # An abort is always allowed: it takes the place of a pending pause or promote
        # (stable for everyone is the safe side); any other request waits its turn.
        superseded = pending is not None and action is ControlAction.ABORT
        if pending is not None and (not superseded or pending.action is ControlAction.ABORT):
            raise ControlRefused(f"a {pending.action} request by {pending.actor} is pending")
        request = ControlRequest(action=action, actor=actor, reason=reason, at=utcnow())
        detail: dict[str, Any] = {"control": request.model_dump(mode="json")}
        why = f"{action} requested by {actor}: {reason}"
        if superseded and pending is not None:
            detail["superseded"] = pending.model_dump(mode="json")
            why += f" (in place of the {pending.action} {pending.actor} asked for)"
        return transitions.commit(
            self.store,
            rollout,
            "control_requested",
            why,
            actor=actor,
            detail=detail,
            control=request,
        )

    def _release_hold(
        self,
        rollout: Rollout,
        kind: str,
        why: str,
        actor: str,
        status: RolloutStatus,
        *,
        output: dict[str, Any] | None = None,
        error: str = "",
        detail: dict[str, Any] | None = None,
        **changes: Any,
    ) -> Rollout:
        """Answer the task token a PAUSED or AWAITING_APPROVAL execution is parked on.

        The new status is written first (conditional, audited, with the wake it needs in
        the event's detail), then the execution is woken: with ``output`` as its next step,
        or failed with ``error`` (-> Rollback). Woken first, it could act before the record
        says why. The token stays on the rollout until Step Functions accepts the wake, so
        a wake that is lost (throttled, the caller dies between the two calls) is sent
        again by the next resume, abort, promote or recover (see ``_resend_wake``).
        """
        if not rollout.task_token:
            raise ControlRefused(f"rollout {rollout.rollout_id} holds no task token")
        wake = {"output": output} if output is not None else {"error": error[:32000]}
        after = transitions.commit(
            self.store,
            rollout,
            kind,
            why,
            actor=actor,
            detail={**(detail or {}), "wake": wake},
            status=status,
            **{"reason": why, **changes},
        )
        return self._wake(after, wake)

    def _wake(self, rollout: Rollout, wake: dict[str, Any]) -> Rollout:
        """Send the wake (a few tries), then forget the token it used."""
        token = rollout.task_token or ""
        for attempt in range(WAKE_ATTEMPTS):
            try:
                if "output" in wake:
                    self.sfn.send_task_success(taskToken=token, output=json.dumps(wake["output"]))
                else:
                    self.sfn.send_task_failure(
                        taskToken=token, error=transitions.ABORTED_ERROR, cause=wake["error"]
                    )
                break
            except ClientError as exc:
                if exc.response["Error"]["Code"] in _TOKEN_GONE:
                    # The park timed out into Recheck just now (or the wake was accepted
                    # and its answer lost): the token stays, and the workflow carries the
                    # recorded request out and forgets the token itself.
                    return rollout
                if attempt == WAKE_ATTEMPTS - 1:
                    raise WakeFailed(rollout.rollout_id, exc) from exc
            except BotoCoreError as exc:
                if attempt == WAKE_ATTEMPTS - 1:
                    raise WakeFailed(rollout.rollout_id, exc) from exc
            time.sleep(WAKE_BACKOFF * 2**attempt)
        return self._forget_token(rollout.rollout_id, token)

    def _forget_token(self, rollout_id: str, token: str) -> Rollout:
        """Clear a used token, unless the workflow has parked on a new one meanwhile."""
        while True:
            rollout = self.get(rollout_id)
            if rollout.task_token != token:
                return rollout
            try:
                return transitions.commit(
                    self.store,
                    rollout,
                    "woken",
                    "the parked execution accepted its wake",
                    actor="workflow",
                    task_token=None,
                )
            except StaleWriteError:
                continue  # the woken execution wrote first; read again

    def _resend_wake(self, rollout: Rollout) -> Rollout | None:
        """A rollout that is no longer parked but still holds its token lost its wake:
        send the recorded one again. None when there is nothing to resend."""
        if not rollout.task_token or rollout.status.is_waiting or rollout.status.is_final:
            return None
        events = self.store.events(rollout.rollout_id)
        wakes = [e.detail["wake"] for e in events if isinstance(e.detail.get("wake"), dict)]
        if not wakes:
            return None
        return self._wake(rollout, wakes[-1])


class WakeFailed(RuntimeError):
    """The request is recorded, but the parked execution could not be woken: run the same
    command again (or ``rollout recover``) and the wake is sent again."""

    def __init__(self, rollout_id: str, cause: Exception) -> None:
        super().__init__(
            f"rollout {rollout_id}: the request is recorded but waking its execution failed "
            f"({cause}); run the same command again to resend it"
        )


def rollout_summary(rollout: Rollout) -> dict[str, Any]:
    return {
        "rollout_id": rollout.rollout_id,
        "status": rollout.status.value,
        "stage": rollout.stage_index + 1,
        "stages": len(rollout.plan.stages),
        "canary_weight": rollout.canary_weight_bp / 100,
        "reason": rollout.reason,
        "control": rollout.control.model_dump(mode="json") if rollout.control else None,
    }
