"""Functional tests for orchestrator.local.faults: AWS calls failed inside botocore's own
request loop, against a real moto server, with DynamoDB's ClientRequestToken emulated."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from local_aws import moto_server, one_key_table

from orchestrator.local import dynamodb as dynamodb_local
from orchestrator.local.faults import CallFaults, Fault, Race

TABLE = "faults"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    dynamodb_local.install()
    yield from moto_server()


@pytest.fixture
def faults() -> Iterator[CallFaults]:
    injector = CallFaults(scope_of=lambda event: None)
    injector.install()
    yield injector
    injector.uninstall()


@pytest.fixture
def dynamodb(endpoint: str, faults: CallFaults) -> Any:
    """Made after the hooks are installed, as the functions' clients are."""
    return one_key_table(endpoint, TABLE)


def _add_one(key: str) -> list[dict[str, Any]]:
    return [
        {
            "Update": {
                "TableName": TABLE,
                "Key": {"pk": {"S": key}},
                "UpdateExpression": "ADD n :one",
                "ExpressionAttributeValues": {":one": {"N": "1"}},
            }
        }
    ]


def _count(client: Any, key: str) -> int:
    item = client.get_item(TableName=TABLE, Key={"pk": {"S": key}}, ConsistentRead=True)
    return int(item.get("Item", {}).get("n", {}).get("N", 0))


@pytest.mark.parametrize("error", ["throttle", "5xx", "timeout"])
def test_one_failed_attempt_is_retried_by_botocore(dynamodb, faults, error):
    """GIVEN a call failing once before it reaches DynamoDB WHEN the function makes it
    THEN botocore's retry sends it again and it succeeds, applied once."""
    key = uuid.uuid4().hex
    faults.add("s", Fault("fn", "TransactWriteItems", error, "before"))
    with faults.scoped("s", "fn"):
        answer = dynamodb.transact_write_items(TransactItems=_add_one(key))
    assert answer["ResponseMetadata"]["RetryAttempts"] == 1
    assert [f.attempt for f in faults.fired["s"]] == [1]
    assert _count(dynamodb, key) == 1


@pytest.mark.parametrize("error", ["5xx", "timeout"])
def test_a_lost_answer_is_retried_with_its_token_and_applied_once(dynamodb, faults, error):
    """GIVEN a transaction carried out whose answer is lost WHEN botocore retries it with
    the same ClientRequestToken THEN DynamoDB answers success and applies nothing again."""
    key = uuid.uuid4().hex
    faults.add("s", Fault("fn", "TransactWriteItems", error, "after"))
    with faults.scoped("s", "fn"):
        dynamodb.transact_write_items(TransactItems=_add_one(key))
    assert _count(dynamodb, key) == 1


def test_a_lost_answer_of_a_conditional_put_is_refused_on_retry(dynamodb, faults):
    """GIVEN a conditional PutItem (no token) whose answer is lost WHEN botocore retries it
    THEN the retry meets its own write: ConditionalCheckFailedException, as in AWS."""
    key = uuid.uuid4().hex
    faults.add("s", Fault("fn", "PutItem", "timeout", "after"))
    with faults.scoped("s", "fn"), pytest.raises(ClientError) as refused:
        dynamodb.put_item(
            TableName=TABLE, Item={"pk": {"S": key}}, ConditionExpression="attribute_not_exists(pk)"
        )
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


@pytest.mark.parametrize(
    ("error", "when", "raised"),
    [
        ("throttle", "before", "ProvisionedThroughputExceededException"),
        ("5xx", "before", "InternalServerError"),
        ("5xx", "after", "InternalServerError"),
        ("timeout", "before", ConnectTimeoutError),
        ("timeout", "after", ReadTimeoutError),
    ],
)
def test_a_fault_on_every_attempt_reaches_the_caller(dynamodb, faults, error, when, raised):
    """GIVEN every attempt of a call failing WHEN botocore has used its attempts THEN the
    caller gets the service's error (or botocore's timeout), after DynamoDB's four."""
    key = uuid.uuid4().hex
    faults.add("s", Fault("fn", "GetItem", error, when, attempts=None))
    expected = ClientError if isinstance(raised, str) else raised
    with faults.scoped("s", "fn"), pytest.raises(expected) as failed:
        dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": key}})
    if isinstance(raised, str):
        assert failed.value.response["Error"]["Code"] == raised  # type: ignore[attr-defined]
    assert len(faults.fired["s"]) == 4  # standard retry mode: four attempts for DynamoDB


def test_only_the_named_call_of_the_named_function_in_its_scope_fails(dynamodb, faults):
    """GIVEN a fault on the second GetItem of fn in scope s WHEN other functions, other
    scopes and unscoped code call GetItem THEN only fn's second call in s fails."""
    key = uuid.uuid4().hex
    faults.add("s", Fault("fn", "GetItem", "5xx", call=2, attempts=None))

    def get() -> None:
        dynamodb.get_item(TableName=TABLE, Key={"pk": {"S": key}})

    get()
    with faults.scoped("other", "fn"):
        get(), get()
    with faults.scoped("s", "other-fn"):
        get(), get()
    with faults.scoped("s", "fn"):
        get()
        with pytest.raises(ClientError):
            get()
        get()
    assert faults.calls["s"].count(("fn", "GetItem")) == 3
    assert {f.fault.call for f in faults.fired["s"]} == {2}


def test_a_race_writes_first_from_outside_the_function(dynamodb, faults):
    """GIVEN a race on fn's conditional put WHEN fn makes it THEN the other writer's put
    lands first, outside fn's scope, and fn's condition refuses fn's own."""
    key = uuid.uuid4().hex

    def other_writer() -> None:
        dynamodb.put_item(TableName=TABLE, Item={"pk": {"S": key}, "by": {"S": "other"}})

    faults.add("s", Race("fn", "PutItem", other_writer))
    with faults.scoped("s", "fn"), pytest.raises(ClientError) as refused:
        dynamodb.put_item(
            TableName=TABLE, Item={"pk": {"S": key}}, ConditionExpression="attribute_not_exists(pk)"
        )
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    assert [f.answer for f in faults.fired["s"]] == ["raced"]
    assert faults.calls["s"] == [("fn", "PutItem")]  # the other writer's call is not fn's
