"""Starting a rollout from a "release published" event.

The event names the target, the new version and a plan template; the template (in SSM
Parameter Store under ``/edgeshift/plans/<name>``, YAML or JSON) holds the stages, analysis
and policies. The stable release is whatever the route serves now, so templates stay valid
across promotions. The event id is the idempotency key: EventBridge's retries of one event
start one rollout.
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.models import RolloutPlan
from orchestrator.models.route import Host, PathRule
from orchestrator.plans import InvalidPlan, validation_problems
from orchestrator.service import PlanRejected, RolloutService

PLAN_PREFIX = "/edgeshift/plans/"
DETAIL_TYPE = "Release Published"


class ReleasePublished(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: Host
    path_rule: PathRule = "default"
    version: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    plan: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")


def plan_for(release: ReleasePublished, template_text: str, service: RolloutService) -> RolloutPlan:
    """The template, aimed at the event's target, from the route's stable to the new version."""
    template = yaml.safe_load(template_text)
    if not isinstance(template, dict):
        raise InvalidPlan(release.plan, [("(template)", "must hold a mapping")])
    route = service.store.get_route(release.host, release.path_rule)
    if route is None:
        raise PlanRejected("host", f"no route for {release.host} {release.path_rule}")
    stable_name = (template.get("stable") or {}).get("name", "stable")
    canary_name = (template.get("canary") or {}).get("name", "canary")
    try:
        live = route.variant(stable_name)
    except KeyError:
        raise PlanRejected("stable.name", f"the route has no variant {stable_name!r}") from None
    document = {
        **template,
        "target": {"host": release.host, "path_rule": release.path_rule},
        "stable": {"name": stable_name, "version": live.version},
        "canary": {"name": canary_name, "version": release.version},
    }
    try:
        return RolloutPlan.model_validate(document)
    except ValidationError as exc:
        raise InvalidPlan(f"{PLAN_PREFIX}{release.plan}", validation_problems(exc)) from None


def start_from_event(
    event: dict[str, Any], service: RolloutService, templates: Any
) -> dict[str, Any]:
    """Returns what happened; bad input is reported, not raised (a retry would not fix it)."""
    try:
        release = ReleasePublished.model_validate(event.get("detail"))
    except ValidationError as exc:
        problems = validation_problems(exc)
        return {"status": "rejected", "problems": [f"detail.{f}: {r}" for f, r in problems]}
    try:
        plan = plan_for(release, templates(f"{PLAN_PREFIX}{release.plan}"), service)
    except InvalidPlan as exc:
        return {"status": "rejected", "problems": [f"{f}: {r}" for f, r in exc.problems]}
    except PlanRejected as exc:
        return {"status": "rejected", "problems": [str(exc)]}
    actor = f"eventbridge:{event.get('source', 'unknown')}"
    rollout = service.start(plan, actor, idempotency_key=f"event-{event['id']}")
    return {"status": "started", "rollout_id": rollout.rollout_id}
