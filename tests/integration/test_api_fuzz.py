"""Schemathesis against `rollout local up`'s REST API: generated requests from the committed
OpenAPI document find no 5xx and no response that breaks the document.

Driven through schemathesis' Python API (each operation's hypothesis strategy) rather than
its pytest plugin, which does not support the pytest version used here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from orchestrator.local.apigw import LocalApi
from orchestrator.local.demo import demo_route
from orchestrator.local.stack import LocalStack

pytestmark = pytest.mark.integration
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
DOCUMENT = json.loads((Path(__file__).resolve().parents[2] / "openapi.json").read_text())
OPERATIONS = [
    (path, method.upper()) for path, methods in DOCUMENT["paths"].items() for method in methods
]
EXAMPLES_PER_OPERATION = 30


@pytest.fixture(scope="module")
def api_url():
    with LocalStack() as stack:
        stack.store().put_route(
            demo_route("demo.edgeshift.test", 8001, 8002), expected_revision=None
        )
        api = LocalApi().start()
        try:
            yield api.url
        finally:
            api.stop()


@pytest.mark.parametrize(("path", "method"), OPERATIONS, ids=[f"{m} {p}" for p, m in OPERATIONS])
def test_api_conforms_to_its_document(api_url, path, method):
    """Bounded generated requests for one operation: never a 5xx, always as documented."""
    schema = schemathesis.openapi.from_dict(DOCUMENT)
    operation = schema[path][method]

    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def conforms(case):
        case.call_and_validate(base_url=api_url, checks=CHECKS)

    conforms()
