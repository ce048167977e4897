"""How a rollout changes: one audited, conditional commit per change, shared by the
workflow's tasks and the service's control commands."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Callable
from typing import Any, TypeVar

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from orchestrator.models import (
    FULL_WEIGHT,
    AuditEvent,
    Release,
    Rollout,
    RouteRule,
    Variant,
    utcnow,
)
from orchestrator.store import (
    InvalidTransition,
    RouteChange,
    StaleRolloutError,
    Store,
    StoreError,
)

_log = logging.getLogger(__name__)
STALE_RETRIES = 5
F = TypeVar("F", bound=Callable[..., Any])


def on_a_fresh_read(step: F) -> F:
    """Redo ``step`` when its conditional write finds the rollout changed meanwhile.

    The workflow writes the rollout at every look and people write requests on it at any
    time; each side's step re-reads the rollout, so redoing it decides again against what
    the rollout is now (a task honours the request; a request no longer valid is refused)
    instead of failing: a task would otherwise end in Rollback, a person's request in a
    refusal that means nothing.
    """

    @functools.wraps(step)
    def redo(*args: Any, **kwargs: Any) -> Any:
        for attempt in range(1, STALE_RETRIES + 1):
            try:
                return step(*args, **kwargs)
            except StaleRolloutError:
                if attempt == STALE_RETRIES:
                    raise
                _log.info("rollout changed during %s; redoing it", step.__name__)
        raise AssertionError("unreachable")

    return redo  # type: ignore[return-value]


def commit(
    store: Store,
    before: Rollout,
    kind: str,
    why: str,
    *,
    actor: str,
    detail: dict[str, Any] | None = None,
    route: RouteChange | None = None,
    keep_lock: bool = False,
    **changes: Any,
) -> Rollout:
    """Apply ``changes`` as version + 1 with its audit event; a final status frees the target
    unless ``keep_lock`` (a failed rollback keeps it so nobody starts over it)."""
    now = utcnow()
    after = before.model_copy(update={**changes, "version": before.version + 1, "updated_at": now})
    if after.status is not before.status and not before.status.can_become(after.status):
        raise InvalidTransition(f"a {before.status} rollout cannot become {after.status}")
    event = AuditEvent(
        rollout_id=before.rollout_id,
        seq=after.version,
        at=now,
        actor=actor,
        kind=kind,
        reason=why,
        detail=detail or {},
    )
    release = after.status.is_final and not keep_lock
    store.commit(before, after, event, route=route, release_lock=release)
    return after


def route_change(
    store: Store, rollout: Rollout, canary_weight: int, *, promote: bool = False
) -> RouteChange:
    """Canary first, so its bucket range starts at 0 and only grows (sticky, monotonic).

    A release without actions keeps the route's actions for that variant (usually only the
    version changes, and templates like ``/releases/{version}{uri}`` follow it). Promotion
    makes the canary's release the new stable at 100%, so the next rollout starts from it.
    """
    target, plan = rollout.plan.target, rollout.plan
    rule = store.get_route(target.host, target.path_rule)
    if rule is None:
        raise StoreError(f"route {target.host} {target.path_rule} disappeared")
    canary = _variant(plan.canary, rule, plan.canary.name, canary_weight)
    stable_release = plan.canary if promote else plan.stable
    stable = _variant(
        stable_release.model_copy(update={"name": plan.stable.name}),
        rule,
        plan.canary.name if promote else plan.stable.name,
        FULL_WEIGHT - canary.weight,
    )
    return RouteChange(
        rule=rule, variants=[canary, stable], salt=rollout.salt, rollout_id=rollout.rollout_id
    )


def _variant(release: Release, rule: RouteRule, actions_of: str, weight: int) -> Variant:
    actions = release.actions or rule.variant(actions_of).actions
    return Variant(name=release.name, version=release.version, actions=actions, weight=weight)


def weights(change: RouteChange) -> dict[str, int]:
    return {variant.name: variant.weight for variant in change.variants}


def rollback_reason(rollout: Rollout, event: dict[str, Any]) -> str:
    """Why this rollback happens, in words a person on call can act on."""
    error = event.get("error")
    if not error:
        step = event.get("step") or {}
        return rollout.reason or str(step.get("reason") or "rollback requested")
    name, cause = str(error.get("Error", "unknown")), str(error.get("Cause", ""))[:500]
    if name == ABORTED_ERROR:
        return cause
    return f"task failed: {name}: {cause}"


ABORTED_ERROR = "edgeshift.Aborted"


def invalidate(rollout: Rollout) -> dict[str, Any] | None:
    """Ask CloudFront to drop cached canary copies; never fails the rollback itself."""
    spec = rollout.plan.invalidation
    if spec is None:
        return None
    record: dict[str, Any] = {"distribution_id": spec.distribution_id, "paths": spec.paths}
    if os.environ.get("EDGESHIFT_INVALIDATION") == "record-only":  # the local stack
        return {**record, "status": "recorded only (local stack)"}
    try:
        answer = boto3.client("cloudfront").create_invalidation(
            DistributionId=spec.distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": len(spec.paths), "Items": spec.paths},
                "CallerReference": rollout.rollout_id,  # a retried rollback asks only once
            },
        )
        return {**record, "status": "requested", "id": answer["Invalidation"]["Id"]}
    except (BotoCoreError, ClientError) as exc:
        _log.warning("invalidation for %s failed: %s", rollout.rollout_id, exc)
        return {**record, "status": f"failed: {exc}"}
