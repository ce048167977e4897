"""The deployed API Gateway has exactly the paths and methods the API document names and
the handler serves: no more, no fewer."""

from __future__ import annotations

import json
from typing import Any

import pytest

from .cfn import REPO_ROOT, Synthesized, resources

pytestmark = pytest.mark.infra

_VERBS = {"get", "put", "post", "delete", "patch", "head", "options"}


def deployed_routes(template: dict[str, Any]) -> set[tuple[str, str]]:
    """(METHOD, /path/{param}) for every API Gateway method in a template."""
    all_resources = template["Resources"]
    parts = {
        logical_id: (r["Properties"]["ParentId"], r["Properties"]["PathPart"])
        for logical_id, r in all_resources.items()
        if r["Type"] == "AWS::ApiGateway::Resource"
    }

    def path(ref: Any) -> str:
        if "Fn::GetAtt" in ref:  # the API's root resource
            return ""
        parent, part = parts[ref["Ref"]]
        return f"{path(parent)}/{part}"

    return {
        (r["Properties"]["HttpMethod"], path(r["Properties"]["ResourceId"]) or "/")
        for r in all_resources.values()
        if r["Type"] == "AWS::ApiGateway::Method"
    }


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (verb.upper(), p)
        for p, item in document["paths"].items()
        for verb in item
        if verb in _VERBS
    }


def test_deployed_api_is_the_documented_api(synthesized: Synthesized) -> None:
    """Every path x method of openapi.json is deployed, and nothing else is."""
    document = json.loads((REPO_ROOT / "openapi.json").read_text())
    deployed = deployed_routes(synthesized.orchestrator.to_json())
    documented = documented_routes(document)
    assert deployed - documented == set(), "deployed but not served"
    assert documented - deployed == set(), "served but not deployed"


def test_documented_api_is_what_the_handler_serves() -> None:
    """openapi.json is generated from the handler's routes (make openapi), so it names
    exactly what the app serves; the README's list names the same routes."""
    from orchestrator.local.apigw import openapi_document

    served = documented_routes(json.loads(openapi_document()))
    committed = documented_routes(json.loads((REPO_ROOT / "openapi.json").read_text()))
    assert served == committed
    assert ("GET", "/rollouts/{rollout_id}/events") in served
    assert ("PUT", "/routes/{host}") in served
    assert ("GET", "/routes") not in served


def test_parity_check_sees_a_missing_and_an_extra_method(synthesized: Synthesized) -> None:
    """Dropping PUT /routes/{host} or adding GET /routes changes what the check reads."""
    template = synthesized.orchestrator.to_json()
    deployed = deployed_routes(template)
    methods = resources(synthesized.orchestrator, "AWS::ApiGateway::Method")
    (put_id,) = [i for i, m in methods.items() if m["Properties"]["HttpMethod"] == "PUT"]
    trimmed = {**template, "Resources": dict(template["Resources"])}
    del trimmed["Resources"][put_id]
    assert deployed - deployed_routes(trimmed) == {("PUT", "/routes/{host}")}
