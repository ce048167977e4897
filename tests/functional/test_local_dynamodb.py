"""Functional tests for orchestrator.local.transact_tokens: moto's TransactWriteItems
answering a ClientRequestToken the way DynamoDB does, on a real moto server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from orchestrator.local import transact_tokens

TABLE = "tokens"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{server.get_host_and_port()[1]}"
    finally:
        server.stop()


@pytest.fixture
def clock() -> Iterator[_Clock]:
    clock = _Clock()
    tokens = transact_tokens.Tokens(clock)
    transact_tokens.install(tokens)
    yield clock
    transact_tokens.install()  # back to the process-wide tokens


@pytest.fixture
def dynamodb(endpoint: str, clock: _Clock) -> Any:
    client = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1")
    if TABLE not in client.list_tables()["TableNames"]:
        client.create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
    return client


def _add_one(key: str, condition: str | None = None) -> list[dict[str, Any]]:
    update: dict[str, Any] = {
        "TableName": TABLE,
        "Key": {"pk": {"S": key}},
        "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }
    if condition:
        update["ConditionExpression"] = condition
    return [{"Update": update}]


def _count(client: Any, key: str) -> int:
    item = client.get_item(TableName=TABLE, Key={"pk": {"S": key}}, ConsistentRead=True)
    return int(item.get("Item", {}).get("n", {}).get("N", 0))


def test_a_retry_with_the_same_token_succeeds_without_applying_again(dynamodb):
    """GIVEN a committed transaction WHEN it is sent again with its token THEN DynamoDB's
    answer is success and the items are not applied a second time."""
    key, token = uuid.uuid4().hex, uuid.uuid4().hex
    dynamodb.transact_write_items(TransactItems=_add_one(key), ClientRequestToken=token)
    dynamodb.transact_write_items(TransactItems=_add_one(key), ClientRequestToken=token)
    assert _count(dynamodb, key) == 1


def test_the_same_token_with_other_items_is_a_mismatch(dynamodb):
    """GIVEN a committed transaction WHEN its token comes with other items THEN
    IdempotentParameterMismatchException, and nothing is written."""
    key, other, token = uuid.uuid4().hex, uuid.uuid4().hex, uuid.uuid4().hex
    dynamodb.transact_write_items(TransactItems=_add_one(key), ClientRequestToken=token)
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=_add_one(other), ClientRequestToken=token)
    assert refused.value.response["Error"]["Code"] == "IdempotentParameterMismatchException"
    assert _count(dynamodb, other) == 0


def test_a_token_older_than_ten_minutes_is_a_new_request(dynamodb, clock):
    """GIVEN a transaction completed ten minutes ago WHEN its token is used again THEN it is
    a new request: applied again (another payload is no longer a mismatch either)."""
    key, token = uuid.uuid4().hex, uuid.uuid4().hex
    dynamodb.transact_write_items(TransactItems=_add_one(key), ClientRequestToken=token)
    clock.now += transact_tokens.WINDOW_SECONDS - 1
    dynamodb.transact_write_items(TransactItems=_add_one(key), ClientRequestToken=token)
    assert _count(dynamodb, key) == 1
    clock.now += 1
    dynamodb.transact_write_items(TransactItems=_add_one(key), ClientRequestToken=token)
    assert _count(dynamodb, key) == 2


def test_a_refused_transaction_is_not_remembered(dynamodb):
    """GIVEN a transaction its condition refused WHEN it is sent again with the same token
    THEN its conditions are evaluated again: refused again while they are false, applied
    once they hold (the first call changed nothing)."""
    key, token = uuid.uuid4().hex, uuid.uuid4().hex
    items = _add_one(key, "attribute_exists(pk)")
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            dynamodb.transact_write_items(TransactItems=items, ClientRequestToken=token)
        assert refused.value.response["Error"]["Code"] == "TransactionCanceledException"
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": key}})
    dynamodb.transact_write_items(TransactItems=items, ClientRequestToken=token)
    dynamodb.transact_write_items(TransactItems=items, ClientRequestToken=token)
    assert _count(dynamodb, key) == 1


def test_each_call_gets_its_own_token(dynamodb):
    """GIVEN botocore filling the token WHEN the same items are written in two calls THEN
    both are applied (two calls, two tokens: only a retry repeats a token)."""
    key = uuid.uuid4().hex
    dynamodb.transact_write_items(TransactItems=_add_one(key))
    dynamodb.transact_write_items(TransactItems=_add_one(key))
    assert _count(dynamodb, key) == 2


def test_a_token_still_in_progress_is_refused():
    """GIVEN a transaction still running WHEN its token arrives again THEN
    TransactionInProgressException (botocore retries it as a throttle)."""
    tokens = transact_tokens.Tokens()
    key = ("123456789012", "us-east-1", "t")

    def apply() -> str:
        with pytest.raises(transact_tokens.TransactionInProgressException):
            tokens.transact(key, {"TransactItems": []}, lambda: "second")
        return "first"

    assert tokens.transact(key, {"TransactItems": []}, apply) == "first"
    assert tokens.transact(key, {"TransactItems": []}, lambda: "again") is None
