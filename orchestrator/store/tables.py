"""Table names and key schemas, shared by the local stack, tests and the CDK app."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ROUTES_KEY = ("host", "path_rule")
ROLLOUTS_KEY = ("pk", "sk")
# Listing without scans: every rollout item carries kind="rollout", its target and created_at.
BY_KIND_INDEX = ("by-kind", "kind", "created_at")
BY_TARGET_INDEX = ("by-target", "target", "created_at")
ROLLOUT_INDEXES = (BY_KIND_INDEX, BY_TARGET_INDEX)


@dataclass(frozen=True)
class TableNames:
    routes: str = "edgeshift-routes"
    rollouts: str = "edgeshift-rollouts"

    @classmethod
    def from_env(cls) -> TableNames:
        """Deployed Lambdas get the names from the stack; locally the defaults apply."""
        return cls(
            routes=os.environ.get("EDGESHIFT_ROUTES_TABLE", cls.routes),
            rollouts=os.environ.get("EDGESHIFT_ROLLOUTS_TABLE", cls.rollouts),
        )


def _key_schema(partition: str, sort: str) -> dict[str, Any]:
    return {
        "KeySchema": [
            {"AttributeName": partition, "KeyType": "HASH"},
            {"AttributeName": sort, "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": partition, "AttributeType": "S"},
            {"AttributeName": sort, "AttributeType": "S"},
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }


def _indexes() -> dict[str, Any]:
    attributes = {attr for _, pk, sk in ROLLOUT_INDEXES for attr in (pk, sk)}
    return {
        "GlobalSecondaryIndexes": [
            {
                "IndexName": name,
                "KeySchema": [
                    {"AttributeName": pk, "KeyType": "HASH"},
                    {"AttributeName": sk, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for name, pk, sk in ROLLOUT_INDEXES
        ],
        "ExtraAttributes": [{"AttributeName": a, "AttributeType": "S"} for a in sorted(attributes)],
    }


def create_routes_table(client: DynamoDBClient, name: str) -> None:
    """The routes table alone, as the edge reads it (tests that exercise only the edge)."""
    client.create_table(TableName=name, **_key_schema(*ROUTES_KEY))


def create_tables(client: DynamoDBClient, names: TableNames) -> None:
    """Create both tables (local stack and tests; in AWS the CDK app owns them)."""
    existing = set(client.list_tables()["TableNames"])
    if names.routes not in existing:
        create_routes_table(client, names.routes)
    if names.rollouts not in existing:
        schema = _key_schema(*ROLLOUTS_KEY)
        indexes = _indexes()
        schema["AttributeDefinitions"] += indexes.pop("ExtraAttributes")
        client.create_table(TableName=names.rollouts, **schema, **indexes)
