"""A moto server and a one-key DynamoDB table, for tests of the local stack's emulations."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3


def moto_server() -> Iterator[str]:
    """A moto server on a free loopback port, stopped when the generator closes."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    finally:
        server.stop()


def one_key_table(endpoint: str, name: str) -> Any:
    """A DynamoDB client on ``endpoint`` with table ``name`` (hash key ``pk``) in place."""
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    if name not in client.list_tables()["TableNames"]:
        client.create_table(
            TableName=name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    return client
