"""``Idempotency-Key`` on POST /rollouts with powertools' idempotency utility.

Records live in the rollouts table under one partition (``IDEMPOTENCY#api``) and expire
through its TTL attribute. The same key with the same body returns the first response;
the same key with another body is refused by powertools' payload validation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)

from orchestrator.models import RolloutPlan
from orchestrator.runtime import per_process
from orchestrator.store import TableNames

CONFIG = IdempotencyConfig(
    event_key_jmespath="key",
    payload_validation_jmespath="plan",
    expires_after_seconds=24 * 3600,
    raise_on_no_idempotency_key=True,
)


@per_process
def persistence() -> DynamoDBPersistenceLayer:
    return DynamoDBPersistenceLayer(
        table_name=TableNames.from_env().rollouts,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value="IDEMPOTENCY#api",
        expiry_attr="expires_at",
    )


def idempotent_start(plan: RolloutPlan, key: str) -> dict[str, Any]:
    return _decorated()(request={"key": key, "plan": plan.model_dump(mode="json")})


@per_process
def _decorated() -> Callable[..., dict[str, Any]]:
    # Built on first use: the persistence layer needs the table name from the environment.
    decorate = idempotent_function(
        data_keyword_argument="request", config=CONFIG, persistence_store=persistence()
    )
    return decorate(_start)  # type: ignore[no-any-return]


def _start(request: dict[str, Any]) -> dict[str, Any]:
    from .app import start_rollout

    return start_rollout(RolloutPlan.model_validate(request["plan"]), request["key"])
