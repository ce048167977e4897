"""Functional tests for orchestrator.local.dynamodb on a real moto server: TransactWriteItems
answering a ClientRequestToken the way DynamoDB does, all or nothing without copying
tables, and key queries that read their partition."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError
from local_aws import moto_server, one_key_table

from orchestrator.local import dynamodb as dynamodb_local

TABLE = "tokens"


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    yield from moto_server()


@pytest.fixture
def clock() -> Iterator[_Clock]:
    clock = _Clock()
    tokens = dynamodb_local.Tokens(clock)
    dynamodb_local.install(tokens)
    yield clock
    dynamodb_local.install()  # back to the process-wide tokens


@pytest.fixture
def dynamodb(endpoint: str, clock: _Clock) -> Any:
    return one_key_table(endpoint, TABLE)


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
    clock.now += dynamodb_local.WINDOW_SECONDS - 1
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
    tokens = dynamodb_local.Tokens()
    key = ("123456789012", "us-east-1", "t")

    def apply() -> str:
        with pytest.raises(dynamodb_local.TransactionInProgressException):
            tokens.transact(key, {"TransactItems": []}, lambda: "second")
        return "first"

    assert tokens.transact(key, {"TransactItems": []}, apply) == "first"
    assert tokens.transact(key, {"TransactItems": []}, lambda: "again") is None


RANGED = "ranged"


@pytest.fixture
def ranged(dynamodb: Any) -> Any:
    if RANGED not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(
            TableName=RANGED,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
    return dynamodb


def _put(key: str, condition: str | None = None, **attrs: str) -> dict[str, Any]:
    put: dict[str, Any] = {
        "TableName": TABLE,
        "Item": {"pk": {"S": key}, **{k: {"S": v} for k, v in attrs.items()}},
    }
    if condition:
        put["ConditionExpression"] = condition
        put["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
    return {"Put": put}


def _exists(client: Any, key: str) -> bool:
    return "Item" in client.get_item(TableName=TABLE, Key={"pk": {"S": key}}, ConsistentRead=True)


def test_one_refused_condition_cancels_every_write(dynamodb):
    """GIVEN a transaction whose second item's condition fails WHEN it is written THEN
    nothing is written, and the reasons name each item in order (ALL_OLD returned)."""
    fresh, taken = uuid.uuid4().hex, uuid.uuid4().hex
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": taken}, "v": {"S": "old"}})
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(
            TransactItems=[_put(fresh), _put(taken, "attribute_not_exists(pk)", v="new")]
        )
    reasons = refused.value.response["CancellationReasons"]
    assert [r["Code"] for r in reasons] == ["None", "ConditionalCheckFailed"]
    assert reasons[1]["Item"]["v"] == {"S": "old"}
    assert not _exists(dynamodb, fresh)


def test_a_write_that_fails_after_the_checks_undoes_the_others(dynamodb):
    """GIVEN a transaction whose conditions hold but whose second write fails (an update
    adding a number to a string) WHEN it is written THEN the first write is undone."""
    fresh, text = uuid.uuid4().hex, uuid.uuid4().hex
    dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": text}, "n": {"S": "text"}})
    update = {
        "Update": {
            "TableName": TABLE,
            "Key": {"pk": {"S": text}},
            "UpdateExpression": "SET n = n + :one",
            "ExpressionAttributeValues": {":one": {"N": "1"}},
        }
    }
    with pytest.raises(ClientError):
        dynamodb.transact_write_items(TransactItems=[_put(fresh), update])
    assert not _exists(dynamodb, fresh)


def test_two_operations_on_one_item_are_refused(dynamodb):
    """GIVEN two items of a transaction naming the same key WHEN it is written THEN
    ValidationException, and nothing is written."""
    key = uuid.uuid4().hex
    with pytest.raises(ClientError) as refused:
        dynamodb.transact_write_items(TransactItems=[_put(key), _put(key, v="again")])
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert not _exists(dynamodb, key)


def test_a_key_query_reads_its_partition_in_order(ranged):
    """GIVEN items in two partitions WHEN one partition is queried (begins_with on the sort
    key, newest first) THEN only its items come back, in sort-key order; a scan sees all."""
    ours, theirs = uuid.uuid4().hex, uuid.uuid4().hex
    for pk, sk in [(ours, "EVENT#2"), (theirs, "EVENT#1"), (ours, "EVENT#1"), (ours, "LOCK")]:
        ranged.put_item(TableName=RANGED, Item={"pk": {"S": pk}, "sk": {"S": sk}})
    page = ranged.query(
        TableName=RANGED,
        KeyConditionExpression="pk = :pk AND begins_with(sk, :ev)",
        ExpressionAttributeValues={":pk": {"S": ours}, ":ev": {"S": "EVENT#"}},
        ScanIndexForward=False,
    )
    assert [(i["pk"]["S"], i["sk"]["S"]) for i in page["Items"]] == [
        (ours, "EVENT#2"),
        (ours, "EVENT#1"),
    ]
    scanned = {i["pk"]["S"] for i in ranged.scan(TableName=RANGED)["Items"]}
    assert {ours, theirs} <= scanned
