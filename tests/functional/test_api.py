"""The REST API through its Lambda handler with API Gateway proxy events, against moto."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from local_aws import stand_in_state_machine
from moto import mock_aws

from orchestrator.api import app as api_app
from orchestrator.api.handler import handler
from orchestrator.local.apigw import LOCAL_PRINCIPAL, proxy_event, response_headers
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.store import Store, TableNames, create_tables

HOST = "shop.example.com"


@pytest.fixture
def api(monkeypatch, lambda_context):
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, TableNames())
        store = Store(dynamodb, TableNames())
        store.put_route(demo_route(HOST, 8001, 8002), expected_revision=None)
        arn = stand_in_state_machine()
        monkeypatch.setenv("EDGESHIFT_STATE_MACHINE_ARN", arn)
        api_app.service.cache_clear()

        def call(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None):
            text = body if isinstance(body, str) or body is None else json.dumps(body)
            result = handler(
                proxy_event(method, path, body=text, headers=headers or {}), lambda_context
            )
            payload = json.loads(result["body"]) if result.get("body") else None
            return result["statusCode"], payload, dict(response_headers(result))

        call.store = store  # type: ignore[attr-defined]
        yield call
        api_app.service.cache_clear()


def _plan(**changes) -> dict[str, Any]:
    document = demo_plan(demo_route(HOST, 8001, 8002)).model_dump(mode="json")
    document.update(changes)
    return document


def _fields(payload) -> list[str]:
    return [error["field"] for error in payload.get("errors", [])]


def test_start_returns_201_with_location_and_records_the_iam_caller(api):
    """POST /rollouts starts a rollout; the caller's IAM principal is the audit actor."""
    status, body, headers = api("POST", "/rollouts", _plan())
    assert status == 201 and headers["Location"] == f"/rollouts/{body['rollout_id']}"
    assert body["created_by"] == LOCAL_PRINCIPAL
    status, events, _ = api("GET", f"/rollouts/{body['rollout_id']}/events")
    assert status == 200 and events["items"][0]["actor"] == LOCAL_PRINCIPAL


def test_same_idempotency_key_same_body_gives_the_same_rollout(api):
    """A pipeline retrying its start with the same key and body gets the first answer."""
    key = {"Idempotency-Key": "pipeline-run-42"}
    first = api("POST", "/rollouts", _plan(), key)
    again = api("POST", "/rollouts", _plan(), key)
    assert first[0] == again[0] == 201 and first[1]["rollout_id"] == again[1]["rollout_id"]
    rollouts, _ = api.store.list_rollouts()
    assert len(rollouts) == 1


def test_same_idempotency_key_other_body_is_422(api):
    """Reusing a key for a different plan is refused (422, as the IETF Idempotency-Key
    draft answers it), naming the header."""
    api("POST", "/rollouts", _plan(), {"Idempotency-Key": "k-1"})
    plan = _plan()
    plan["stages"][0]["bake"] = 60
    status, body, headers = api("POST", "/rollouts", plan, {"Idempotency-Key": "k-1"})
    assert status == 422 and headers["Content-Type"] == "application/problem+json"
    assert body["type"] == "urn:edgeshift:problem:idempotency-key-reused"
    assert _fields(body) == ["Idempotency-Key"]


def test_second_start_on_a_busy_target_is_409_naming_the_active_rollout(api):
    """One active rollout per target: the conflict names the one holding it."""
    _, first, _ = api("POST", "/rollouts", _plan())
    status, body, _ = api("POST", "/rollouts", _plan())
    assert status == 409 and first["rollout_id"] in body["detail"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"stages": []}, "stages"),
        ({"stages": [{"weight": 150, "bake": 60, "interval": 60}]}, "stages.0.weight"),
        ({"surprise": True}, "surprise"),
    ],
)
def test_invalid_plans_are_422_with_the_field_and_nothing_written(api, change, field):
    """A plan breaking the model is refused with problem+json naming the field."""
    status, body, headers = api("POST", "/rollouts", _plan(**change))
    assert status == 422 and headers["Content-Type"] == "application/problem+json"
    assert field in _fields(body), body
    assert api.store.list_rollouts() == ([], None)


def test_the_api_words_plan_problems_as_the_cli_does(api):
    """GIVEN a plan whose first stage weighs 150 and whose counts are not per variant WHEN
    POSTed THEN the field errors say "(stage 1)" and give the rule in its own words, as
    `rollout start` does, without pydantic's "Value error," prefix."""
    document = _plan(stages=[{"weight": 150, "bake": 60, "interval": 60}])
    document["analysis"]["dimensions"] = {}

    status, body, _ = api("POST", "/rollouts", document)

    errors = {error["field"]: error["message"] for error in body["errors"]}
    assert status == 422, body
    assert errors["stages.0.weight"].endswith("(stage 1)"), errors
    assert errors["analysis"].startswith("analysis.metrics.0.numerator: "), errors


def test_malformed_json_and_oversized_bodies(api):
    """Malformed JSON is 422 naming the body; a body over 256 KiB is 413; neither writes
    anything."""
    status, body, _ = api("POST", "/rollouts", "{not json")
    assert status == 422 and _fields(body) == ["body"]
    status, body, _ = api("POST", "/rollouts", "x" * (256 * 1024 + 1))
    assert status == 413 and body["status"] == 413
    assert api.store.list_rollouts() == ([], None)


def test_get_list_and_unknown_ids(api):
    """GET by id, list with filters, 404 for an unknown id and 422 for a malformed one."""
    _, started, _ = api("POST", "/rollouts", _plan())
    rid = started["rollout_id"]
    assert api("GET", f"/rollouts/{rid}")[1]["status"] == "PENDING"
    status, page, _ = api("GET", f"/rollouts?host={HOST}&active=true&limit=5")
    assert status == 200 and [r["rollout_id"] for r in page["items"]] == [rid]
    assert api("GET", "/rollouts/r-20990101T000000Z-deadbeef")[0] == 404
    assert api("GET", "/rollouts/r-20990101T000000Z-deadbeef/events")[0] == 404
    assert api("GET", "/rollouts/not-an-id")[0] == 422
    assert api("GET", "/rollouts?limit=0")[0] == 422


def test_control_routes(api):
    """Every steering request needs a reason (400 naming it); a request that does not
    apply to the rollout as it is now is 409."""
    _, started, _ = api("POST", "/rollouts", _plan())
    rid = started["rollout_id"]
    assert api("POST", f"/rollouts/{rid}/abort")[0] == 400
    assert api("POST", f"/rollouts/{rid}/promote", {"reason": " "})[0] == 400
    status, body, _ = api("POST", f"/rollouts/{rid}/abort", {"reason": "bad p99"})
    assert status == 200 and body["control"]["action"] == "abort"
    assert api("POST", f"/rollouts/{rid}/pause", {"reason": "x"})[0] == 409  # PENDING
    assert api("POST", f"/rollouts/{rid}/resume", {"reason": "x"})[0] == 409


def test_routes_get_and_put_with_revisions(api):
    """GET a host's rules; PUT at the read revision works once, the stale second try is 409."""
    status, body, _ = api("GET", f"/routes/{HOST}")
    assert status == 200 and body["rules"][0]["revision"] == 1
    rules = body["rules"]
    rules[0]["variants"][0]["version"] = "v3"
    status, written, _ = api("PUT", f"/routes/{HOST}", {"rules": rules, "reason": "new canary"})
    assert status == 200 and written["rules"][0]["revision"] == 2
    assert api("PUT", f"/routes/{HOST}", {"rules": rules})[0] == 409
    assert api("GET", "/routes/unknown.example.com")[0] == 404


def test_bad_route_writes_name_the_field(api):
    """Weights not summing to 10000, or a rule for another host, are refused by field."""
    _, body, _ = api("GET", f"/routes/{HOST}")
    rules = body["rules"]
    rules[0]["variants"][0]["weight"] = 1
    status, problem, _ = api("PUT", f"/routes/{HOST}", {"rules": rules})
    assert status == 422 and any(f.startswith("rules.0") for f in _fields(problem)), problem
    _, body, _ = api("GET", f"/routes/{HOST}")
    status, problem, _ = api("PUT", "/routes/other.example.com", body)
    assert status == 400 and _fields(problem) == ["rules.0.host"]


def test_the_audit_trail_is_read_a_page_at_a_time(api):
    """GIVEN a rollout with seven audit events WHEN read three at a time THEN each page
    holds the next events oldest first, next_after names where the next page starts, the
    last page's is null, and the pages together are the whole trail; a bad page size or
    start is 422 naming the parameter, as every invalid query is."""
    from orchestrator.models import AuditEvent, utcnow
    from orchestrator.store import codec

    _, started, _ = api("POST", "/rollouts", _plan())
    rid = started["rollout_id"]
    _, whole, _ = api("GET", f"/rollouts/{rid}/events")
    first = whole["items"][-1]["seq"]
    store = api.store
    for seq in range(first + 1, first + 7):
        event = AuditEvent(
            rollout_id=rid, seq=seq, at=utcnow(), actor="t", kind="analysis", reason=f"{seq}"
        )
        store.client.put_item(TableName=store.tables.rollouts, Item=codec.event_item(event))
    _, whole, _ = api("GET", f"/rollouts/{rid}/events")
    assert whole["next_after"] is None and len(whole["items"]) == first + 6

    pages, after = [], 0
    while after is not None:
        status, page, _ = api("GET", f"/rollouts/{rid}/events?after={after}&limit=3")
        assert status == 200 and len(page["items"]) <= 3
        pages.append(page)
        after = page["next_after"]
    read = [event["seq"] for page in pages for event in page["items"]]
    assert read == [event["seq"] for event in whole["items"]]
    assert all(page["next_after"] == page["items"][-1]["seq"] for page in pages[:-1])
    for query, field in (("limit=0", "limit"), ("limit=1001", "limit"), ("after=-1", "after")):
        status, problem, _ = api("GET", f"/rollouts/{rid}/events?{query}")
        assert status == 422 and field in json.dumps(problem), (query, problem)
