"""What the CLI, the API and the EventBridge starter all call: one place for the rules of
starting and reading rollouts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from orchestrator.models import AuditEvent, Rollout, RolloutPlan, RolloutStatus, utcnow
from orchestrator.store import Store

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


class PlanRejected(ValueError):
    """The plan cannot run against the current state of the world; nothing was written."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


@dataclass
class RolloutService:
    store: Store
    sfn: SFNClient
    state_machine_arn: str

    def start(self, plan: RolloutPlan, actor: str) -> Rollout:
        """Check the plan against its route, take the target's lock, start the execution."""
        self._check_route(plan)
        rollout = Rollout.start(plan, actor)
        self.store.create_rollout(
            rollout,
            AuditEvent(
                rollout_id=rollout.rollout_id,
                seq=1,
                at=rollout.created_at,
                actor=actor,
                kind="created",
                reason="rollout requested",
                detail={"plan": plan.model_dump(mode="json")},
            ),
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

    def get(self, rollout_id: str) -> Rollout:
        return self.store.get_rollout(rollout_id)

    def events(self, rollout_id: str) -> list[AuditEvent]:
        return self.store.events(rollout_id)

    def _check_route(self, plan: RolloutPlan) -> None:
        target = plan.target
        rule = self.store.get_route(target.host, target.path_rule)
        if rule is None:
            raise PlanRejected(
                "target", f"no route for {target.host} {target.path_rule}; define it first"
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
        now = utcnow()
        after = rollout.model_copy(
            update={
                "status": RolloutStatus.FAILED,
                "version": 2,
                "updated_at": now,
                "reason": reason,
            }
        )
        event = AuditEvent(
            rollout_id=rollout.rollout_id, seq=2, at=now, actor=actor, kind="failed", reason=reason
        )
        self.store.commit(rollout, after, event, release_lock=True)


def rollout_summary(rollout: Rollout) -> dict[str, Any]:
    return {
        "rollout_id": rollout.rollout_id,
        "status": rollout.status.value,
        "stage": rollout.stage_index + 1,
        "stages": len(rollout.plan.stages),
        "canary_weight": rollout.canary_weight_bp / 100,
        "reason": rollout.reason,
    }
