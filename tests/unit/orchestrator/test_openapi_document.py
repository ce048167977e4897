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
