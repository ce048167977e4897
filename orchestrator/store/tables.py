"""Table names and key schemas, shared by the local stack, tests and the CDK app."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ROUTES_KEY = ("host", "path_rule")
ROLLOUTS_KEY = ("pk", "sk")


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


def create_tables(client: DynamoDBClient, names: TableNames) -> None:
    """Create both tables (local stack and tests; in AWS the CDK app owns them)."""
    existing = set(client.list_tables()["TableNames"])
    for name, key in ((names.routes, ROUTES_KEY), (names.rollouts, ROLLOUTS_KEY)):
        if name not in existing:
            client.create_table(TableName=name, **_key_schema(*key))
