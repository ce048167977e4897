"""Moto set-ups the functional tests share: a moto server, a one-key DynamoDB table, a route
seeded on v1, a flag-routed rule, a stand-in state machine and a queue that captures
edgeshift events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3

from orchestrator.events.bus import SOURCE
from orchestrator.models import RouteRule
from orchestrator.store import Store


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


def seed_v1_route(store: Store, host: str) -> None:
    """``host``'s route with canary and stable both on v1, all traffic on stable."""
    store.put_route(
        RouteRule.model_validate(
            {
                "host": host,
                "variants": [
                    {"name": "canary", "version": "v1", "weight": 0},
                    {"name": "stable", "version": "v1", "weight": 10_000},
                ],
            }
        ),
        expected_revision=None,
    )


def flag_rule(
    flag: str, variations: dict[str, str], *, key_from: str = "cookie:ld_uid"
) -> RouteRule:
    """shop.example.com's default rule, its variant taken from LaunchDarkly flag ``flag``."""
    return RouteRule.model_validate(
        {
            "host": "shop.example.com",
            "variants": [
                {"name": "canary", "version": "v2", "weight": 0},
                {"name": "stable", "version": "v1", "weight": 10_000},
            ],
            "assignment": {
                "provider": "launchdarkly",
                "flag": flag,
                "context": {"key_from": key_from},
                "variations": variations,
                "fallback": "stable",
            },
        }
    )


def stand_in_state_machine() -> str:
    """The ARN of a one-state machine in moto (in-process), for starts never executed."""
    return boto3.client("stepfunctions", region_name="us-east-1").create_state_machine(
        name="edgeshift-rollout",
        roleArn="arn:aws:iam::123456789012:role/sfn",
        definition=json.dumps({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}),
    )["stateMachineArn"]


def edgeshift_event_queue() -> tuple[Any, str, Any]:
    """An SQS queue an EventBridge rule fills with every edgeshift event, in moto
    (in-process): the SQS client, the queue URL and the EventBridge client."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="rollout-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events = boto3.client("events", region_name="us-east-1")
    events.put_rule(Name="edgeshift", EventPattern=json.dumps({"source": [SOURCE]}))
    events.put_targets(Rule="edgeshift", Targets=[{"Id": "q", "Arn": arn}])
    return sqs, queue, events
