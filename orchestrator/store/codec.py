"""Item <-> model conversion. Routes are native maps (the edge reads them); rollouts keep
their document as JSON next to the few attributes that conditions and queries need."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from orchestrator.models import AuditEvent, Rollout, RouteRule
from orchestrator.models.analysis import STORED

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_attributes(plain: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_decimals(v)) for k, v in plain.items() if v is not None}


def from_attributes(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def _decimals(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def route_item(rule: RouteRule) -> dict[str, Any]:
    return to_attributes(rule.model_dump(mode="json", exclude_none=True))


def route_from_item(item: dict[str, Any]) -> RouteRule:
    return RouteRule.model_validate(from_attributes(item))


def rollout_key(rollout_id: str) -> dict[str, Any]:
    return to_attributes({"pk": f"ROLLOUT#{rollout_id}", "sk": "META"})


def lock_key(host: str, path_rule: str) -> dict[str, Any]:
    return to_attributes({"pk": f"LOCK#{host}#{path_rule}", "sk": "LOCK"})


def rollout_item(rollout: Rollout) -> dict[str, Any]:
    target = rollout.plan.target
    return {
        **rollout_key(rollout.rollout_id),
        **to_attributes(
            {
                "kind": "rollout",
                "rollout_id": rollout.rollout_id,
                "status": rollout.status.value,
                "version": rollout.version,
                "target": f"{target.host}#{target.path_rule}",
                "created_at": rollout.created_at.isoformat(),
                "doc": rollout.model_dump_json(),
            }
        ),
    }


def rollout_from_item(item: dict[str, Any]) -> Rollout:
    # The plan was valid when it started; rules added since must not make it unreadable.
    return Rollout.model_validate_json(item["doc"]["S"], context={STORED: True})


def encode_cursor(key: dict[str, Any]) -> str:
    """An opaque page token for callers; it only ever goes back into ``decode_cursor``."""
    return base64.urlsafe_b64encode(json.dumps(key, sort_keys=True).encode()).decode()


def decode_cursor(token: str) -> dict[str, Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError("next_token: not a token this API returned") from exc
    if not isinstance(key, dict) or not all(isinstance(v, dict) for v in key.values()):
        raise ValueError("next_token: not a token this API returned")
    return key


def event_item(event: AuditEvent) -> dict[str, Any]:
    return to_attributes(
        {
            "pk": f"ROLLOUT#{event.rollout_id}",
            "sk": f"EVENT#{event.seq:08d}",
            "kind": "event",
            "event_kind": event.kind,
            "at": event.at.isoformat(),
            "doc": event.model_dump_json(),
        }
    )


def event_from_item(item: dict[str, Any]) -> AuditEvent:
    return AuditEvent.model_validate(json.loads(item["doc"]["S"]))
