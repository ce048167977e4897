"""The committed OpenAPI document is the API's own: regenerate with `make openapi`."""

from __future__ import annotations

import json
from pathlib import Path

from orchestrator.local.apigw import openapi_document

COMMITTED = Path(__file__).resolve().parents[3] / "openapi.json"


def test_committed_openapi_document_is_current():
    """The document generated from the routes equals openapi.json (run `make openapi`)."""
    assert json.loads(COMMITTED.read_text()) == json.loads(openapi_document()), (
        "openapi.json is stale: run `make openapi`"
    )


def test_every_route_of_the_api_is_documented():
    """Every route the control plane promises is in the document."""
    paths = json.loads(COMMITTED.read_text())["paths"]
    expected = {
        ("/rollouts", "post"),
        ("/rollouts", "get"),
        ("/rollouts/{rollout_id}", "get"),
        ("/rollouts/{rollout_id}/events", "get"),
        ("/routes/{host}", "get"),
        ("/routes/{host}", "put"),
        *(
            (f"/rollouts/{{rollout_id}}/{verb}", "post")
            for verb in ("pause", "resume", "abort", "promote")
        ),
    }
    documented = {(path, method) for path, methods in paths.items() for method in methods}
    assert expected <= documented


DOCUMENT = json.loads(COMMITTED.read_text())
START = DOCUMENT["paths"]["/rollouts"]["post"]


def test_a_created_rollout_links_to_what_can_be_done_with_it():
    """The 201 of POST /rollouts links to get, events, pause, resume, abort and promote,
    each by an operationId the document has, passing the created rollout_id."""
    links = START["responses"]["201"]["links"]
    operation_ids = {
        op["operationId"]: (path, method)
        for path, methods in DOCUMENT["paths"].items()
        for method, op in methods.items()
    }
    targets = {operation_ids[link["operationId"]] for link in links.values()}
    expected = {
        ("/rollouts/{rollout_id}", "get"),
        ("/rollouts/{rollout_id}/events", "get"),
        *(
            (f"/rollouts/{{rollout_id}}/{verb}", "post")
            for verb in ("pause", "resume", "abort", "promote")
        ),
    }
    assert targets == expected
    assert all(
        link["parameters"] == {"rollout_id": "$response.body#/rollout_id"}
        for link in links.values()
    )


def test_the_idempotency_key_header_is_documented_with_its_rule():
    """README's Idempotency-Key is a documented header of POST /rollouts, with its pattern."""
    (header,) = [p for p in START["parameters"] if p["in"] == "header"]
    assert header["name"].lower() == "idempotency-key" and header["required"] is False
    assert "^[!-~]{1,255}$" in json.dumps(header["schema"])


def test_a_steering_reason_is_documented_as_required_and_not_blank():
    """The document says what the API enforces: a reason, not empty, not only whitespace
    (the same characters Python's str.strip() removes, which the service checks)."""
    import re
    import sys

    reason = DOCUMENT["components"]["schemas"]["Reason"]
    assert reason["required"] == ["reason"]
    prop = reason["properties"]["reason"]
    assert prop["minLength"] == 1
    pattern = re.compile(prop["pattern"])
    blank = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    assert all(pattern.search(ch) is None for ch in blank)
    assert pattern.search("  p99 ") and pattern.search("\ufeff")
    for verb in ("pause", "resume", "abort", "promote"):
        body = DOCUMENT["paths"][f"/rollouts/{{rollout_id}}/{verb}"]["post"]["requestBody"]
        assert body["required"] is True


def test_the_plan_example_is_the_walkthrough_plan():
    """The document's example plan is examples/plan.yaml (durations in seconds)."""
    import yaml

    from orchestrator.api.examples import PLAN
    from orchestrator.models import RolloutPlan

    walkthrough = yaml.safe_load((COMMITTED.parent / "examples" / "plan.yaml").read_text())
    assert RolloutPlan.model_validate(PLAN) == RolloutPlan.model_validate(walkthrough)
    example = START["requestBody"]["content"]["application/json"]["examples"]["walkthrough"]
    assert example["value"] == PLAN


def test_a_start_documents_the_location_it_answers():
    """POST /rollouts answers 201 with a Location header, and the document says so."""
    assert "Location" in START["responses"]["201"]["headers"]
