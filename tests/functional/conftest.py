"""Shared fixtures for the functional tests: fake AWS credentials, a plan, a seeded route,
and a store on moto in-process with the default table names."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from orchestrator.models import RolloutPlan, RouteRule
from orchestrator.store import Store, TableNames, create_tables

HOST = "shop.example.com"


@pytest.fixture(autouse=True)
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No real credentials, no endpoint override, default table names, one region."""
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_ENDPOINT_URL_LAMBDA",
        "AWS_ENDPOINT_URL_SFN",
        "EDGESHIFT_ENDPOINT_URL",
        "EDGESHIFT_STATE_MACHINE_ARN",
        "EDGESHIFT_ROUTES_TABLE",
        "EDGESHIFT_ROLLOUTS_TABLE",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "MOTO_PORT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_LOG_LEVEL", "WARNING")


@pytest.fixture
def plan_doc() -> dict[str, Any]:
    """A valid two-stage plan for shop.example.com as plain data; each test gets its own."""
    return {
        "target": {"host": HOST, "path_rule": "default"},
        "stable": {"name": "stable", "version": "v1"},
        "canary": {"name": "canary", "version": "v2"},
        "stages": [
            {"weight": 10, "bake": "5m", "interval": "1m"},
            {"weight": 50, "bake": "5m", "interval": "1m"},
        ],
        "analysis": {
            "namespace": "Shop/Edge",
            "dimensions": {"Variant": "{variant}"},
            "requests_metric": "Requests",
            "errors_metric": "Errors",
        },
    }


@pytest.fixture
def plan(plan_doc: dict[str, Any]) -> RolloutPlan:
    """The same plan, validated."""
    return RolloutPlan.model_validate(plan_doc)


@pytest.fixture
def route() -> RouteRule:
    """The route the plan targets: everyone on stable v1."""
    return RouteRule.model_validate(
        {
            "host": HOST,
            "variants": [
                {"name": "canary", "version": "v1", "weight": 0},
                {"name": "stable", "version": "v1", "weight": 10_000},
            ],
        }
    )


@pytest.fixture
def lambda_context():
    """The attributes of a Lambda context that powertools reads."""
    from orchestrator.local.dispatch import InvocationContext

    return InvocationContext(
        "edgeshift-test", "arn:aws:lambda:us-east-1:123456789012:function:edgeshift-test"
    )


@pytest.fixture
def store() -> Iterator[Store]:
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, TableNames())
        yield Store(dynamodb, TableNames())
