"""The control plane's rules hold for every caller, against moto: route writes go through
the service and lose to a rollout that took the target's lock (even between a read and the
write), a resume says so on the rollout, a start's idempotency is one claim, and lifecycle
events are announced by the commit."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import yaml
from click.testing import CliRunner
from local_aws import edgeshift_event_queue, stand_in_state_machine
from moto import mock_aws

from orchestrator.api import app as api_app
from orchestrator.api.handler import handler
from orchestrator.cli.main import cli
from orchestrator.events.bus import DETAIL_TYPES, SOURCE
from orchestrator.local.apigw import proxy_event, response_headers
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.models import AuditEvent, RouteRule
from orchestrator.service import RolloutService
from orchestrator.store import Store, TableNames, TargetLockedError, create_tables
from orchestrator.workflow import tasks

HOST = "shop.example.com"


class _AcceptingSfn:
    """Step Functions as the service meets it for a parked execution: the wake is accepted."""

    def __init__(self) -> None:
        self.woken: list[str] = []

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        return {"executionArn": f"arn:aws:states:us-east-1:1:execution:m:{kwargs['name']}"}

    def send_task_success(self, *, taskToken: str, output: str) -> dict[str, Any]:
        self.woken.append(taskToken)
        return {}

    def describe_execution(self, **kwargs: Any) -> dict[str, Any]:
        return {"status": "RUNNING"}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        create_tables(dynamodb, TableNames())
        store = Store(dynamodb, TableNames())
        store.put_route(demo_route(HOST, 8001, 8002), expected_revision=None)
        sqs, queue, events = edgeshift_event_queue()
        sfn_arn = stand_in_state_machine()
        monkeypatch.setenv("EDGESHIFT_STATE_MACHINE_ARN", sfn_arn)
        api_app.service.cache_clear()
        tasks._store.cache_clear()
        yield {"store": store, "sqs": sqs, "queue": queue, "events": events}
        api_app.service.cache_clear()
        tasks._store.cache_clear()


def _api(method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    from orchestrator.local.dispatch import InvocationContext

    text = body if isinstance(body, str) or body is None else json.dumps(body)
    context = InvocationContext("edgeshift-api", "arn:aws:lambda:us-east-1:1:function:api")
    result = handler(proxy_event(method, path, body=text, headers=headers or {}), context)
    return result["statusCode"], json.loads(result["body"]), dict(response_headers(result))


def _plan(**changes: Any) -> dict[str, Any]:
    document = demo_plan(demo_route(HOST, 8001, 8002)).model_dump(mode="json")
    document.update(changes)
    return document


def _scan(store: Store) -> list[Any]:
    items = []
    for table in (store.tables.rollouts, store.tables.routes):
        items += store.client.scan(TableName=table)["Items"]
    return sorted(items, key=json.dumps)


def _fields(problem: dict[str, Any]) -> list[str]:
    return [error["field"] for error in problem.get("errors", [])]


def _received(aws: dict[str, Any], count: int) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    for _ in range(5):
        got = aws["sqs"].receive_message(QueueUrl=aws["queue"], MaxNumberOfMessages=10)
        bodies += [json.loads(m["Body"]) for m in got.get("Messages", [])]
        if len(bodies) >= count:
            break
    return bodies


# -- route writes -----------------------------------------------------------------------------


def test_put_routes_while_a_rollout_holds_the_target_is_409_naming_it_and_writes_nothing(aws):
    """GIVEN an active rollout on the target WHEN PUT /routes/{host} rewrites its weights
    THEN 409 problem+json naming the rollout, and neither table changes."""
    _, started, _ = _api("POST", "/rollouts", _plan())
    _, body, _ = _api("GET", f"/routes/{HOST}")
    rules = body["rules"]
    rules[0]["variants"][0]["weight"], rules[0]["variants"][1]["weight"] = 10000, 0
    before = _scan(aws["store"])

    status, problem, headers = _api("PUT", f"/routes/{HOST}", {"rules": rules, "reason": "x"})

    assert status == 409 and headers["Content-Type"] == "application/problem+json"
    assert problem["type"] == "urn:edgeshift:problem:target-locked"
    assert started["rollout_id"] in problem["detail"]
    assert _scan(aws["store"]) == before


def test_a_lock_taken_between_the_read_and_the_write_wins(aws):
    """GIVEN a caller that read the route while the target was free WHEN a rollout takes
    the lock before the caller writes THEN the write's own transaction refuses it
    (TargetLockedError naming the rollout), and nothing is written."""
    store: Store = aws["store"]
    service = RolloutService(store, _AcceptingSfn(), "arn")  # type: ignore[arg-type]
    read = store.get_route(HOST)
    assert read is not None and store.lock_holder(HOST, "default") is None
    rollout = service.start(demo_plan(read), "ci")  # the lock, taken after the read
    before = _scan(store)
    changed = read.model_copy(update={"salt": "someone-elses-edit"})

    with pytest.raises(TargetLockedError) as refused:
        service.define_routes(HOST, [(changed, read.revision)], "ana", "edit")

    assert refused.value.holder == rollout.rollout_id
    assert _scan(store) == before


def test_cli_routes_put_loses_to_a_lock_taken_after_its_read(aws, tmp_path, monkeypatch):
    """GIVEN `rollout routes put` that read the stored rules WHEN a rollout starts right
    after that read THEN exit 3 naming the rollout, and nothing is written."""
    store: Store = aws["store"]
    rule = store.get_route(HOST)
    assert rule is not None
    routes_file = tmp_path / "routes.yaml"
    document = rule.model_dump(mode="json", exclude_none=True, exclude={"revision"})
    routes_file.write_text(yaml.safe_dump({**document, "salt": "edited"}))
    started: list[str] = []
    real_get_routes = Store.get_routes

    def read_then_race(self: Store, host: str) -> list[RouteRule]:
        rules = real_get_routes(self, host)
        if not started:  # someone starts a rollout between the CLI's read and its write
            service = RolloutService(store, _AcceptingSfn(), "arn")  # type: ignore[arg-type]
            started.append(service.start(demo_plan(rules[0]), "ci").rollout_id)
        return rules

    monkeypatch.setattr(Store, "get_routes", read_then_race)

    result = CliRunner().invoke(cli, ["routes", "put", str(routes_file), "--reason", "x"])

    assert result.exit_code == 3, result.output
    assert started and started[0] in result.output
    assert store.get_route(HOST).salt == rule.salt  # type: ignore[union-attr]
    assert store.get_route(HOST).revision == rule.revision  # type: ignore[union-attr]


def test_routes_write_on_a_free_target_still_works_through_the_service(aws):
    """GIVEN no rollout WHEN PUT /routes/{host} at the read revision THEN it is written."""
    _, body, _ = _api("GET", f"/routes/{HOST}")
    body["rules"][0]["variants"][0]["version"] = "v3"
    status, written, _ = _api("PUT", f"/routes/{HOST}", {"rules": body["rules"]})
    assert status == 200 and written["rules"][0]["revision"] == 2


# -- resume -----------------------------------------------------------------------------------


def _paused(aws: dict[str, Any], lambda_context: Any) -> str:
    store: Store = aws["store"]
    service = RolloutService(store, _AcceptingSfn(), "arn")  # type: ignore[arg-type]
    rollout_id = service.start(demo_plan(store.get_route(HOST)), "ci").rollout_id  # type: ignore[arg-type]
    tasks.begin({"rollout_id": rollout_id}, lambda_context)
    apply = {"action": "apply", "stage": 0, "wait_seconds": 0, "reason": ""}
    tasks.apply_stage({"rollout_id": rollout_id, "step": apply}, lambda_context)
    pause = {
        "action": "pause",
        "stage": 0,
        "wait_seconds": 60,
        "reason": "paused by cli:root: p99 looks odd",
    }
    tasks.hold({"rollout_id": rollout_id, "step": pause, "task_token": "t-1"}, lambda_context)
    assert store.get_rollout(rollout_id).reason.startswith("paused by cli:root")
    return rollout_id


def test_after_pause_then_resume_the_reason_says_it_resumed(aws, lambda_context):
    """GIVEN a PAUSED rollout whose reason is "paused by cli:root: ..." WHEN it is resumed
    THEN its reason says who resumed it and why, in the service's answer and in GET."""
    rollout_id = _paused(aws, lambda_context)
    sfn = _AcceptingSfn()
    service = RolloutService(aws["store"], sfn, "arn")  # type: ignore[arg-type]

    after = service.resume(rollout_id, "cli:root", "p99 is back")

    assert after.status.value == "RUNNING" and sfn.woken == ["t-1"]
    assert after.reason == "resumed by cli:root: p99 is back"
    status, view, _ = _api("GET", f"/rollouts/{rollout_id}")
    assert status == 200 and view["reason"] == "resumed by cli:root: p99 is back"
    assert "paused" not in view["reason"]


@pytest.mark.parametrize("verb", ["pause", "resume"])
def test_the_service_refuses_a_blank_reason_before_reading(aws, lambda_context, verb):
    """GIVEN a PAUSED rollout WHEN the service is asked to pause or resume it with a blank
    reason (any caller, not only the CLI and the API) THEN ValueError names `reason` and the
    rollout is unchanged."""
    rollout_id = _paused(aws, lambda_context)
    service = RolloutService(aws["store"], _AcceptingSfn(), "arn")  # type: ignore[arg-type]
    before = aws["store"].get_rollout(rollout_id)
    with pytest.raises(ValueError, match=f"reason: required to {verb} a rollout"):
        getattr(service, verb)(rollout_id, "cli:ana", " \t")
    assert aws["store"].get_rollout(rollout_id) == before


# -- lifecycle events -------------------------------------------------------------------------


def test_resume_is_announced_by_its_commit_through_the_services_client(aws, lambda_context):
    """GIVEN a service with its own EventBridge client WHEN a person resumes THEN exactly
    one Rollout Resumed arrives, after started, advanced and paused, shaped as before."""
    rollout_id = _paused(aws, lambda_context)
    service = RolloutService(
        aws["store"],
        _AcceptingSfn(),  # type: ignore[arg-type]
        "arn",
        eventbridge=aws["events"],
    )
    service.resume(rollout_id, "cli:root", "ok")
    bodies = _received(aws, 4)
    types = [body["detail-type"] for body in bodies]
    kinds = ("started", "stage_applied", "paused", "resumed")
    assert types == [DETAIL_TYPES[k] for k in kinds]
    resumed = bodies[-1]
    assert resumed["source"] == SOURCE
    assert set(resumed["detail"]) == {
        "rollout_id",
        "host",
        "path_rule",
        "status",
        "stage",
        "canary_weight",
        "canary_version",
        "reason",
    }
    assert resumed["detail"]["status"] == "RUNNING"
    assert resumed["detail"]["reason"] == "resumed by cli:root: ok"


def test_a_refused_commit_announces_nothing(aws, lambda_context):
    """GIVEN a commit DynamoDB refuses (stale version) WHEN it fails THEN no event goes out."""
    from orchestrator.store import StaleRolloutError
    from orchestrator.workflow import transitions

    store: Store = aws["store"]
    service = RolloutService(store, _AcceptingSfn(), "arn")  # type: ignore[arg-type]
    rollout = service.start(demo_plan(store.get_route(HOST)), "ci")  # type: ignore[arg-type]
    tasks.begin({"rollout_id": rollout.rollout_id}, lambda_context)
    assert len(_received(aws, 1)) == 1  # started
    with pytest.raises(StaleRolloutError):
        transitions.commit(store, rollout, "failed", "stale", actor="t", reason="x")
    assert aws["sqs"].receive_message(QueueUrl=aws["queue"]).get("Messages", []) == []


def test_an_analysis_that_finds_a_split_mismatch_announces_its_evidence():
    """GIVEN the audit event of a look whose split check found a mismatch WHEN the commit
    says what to announce THEN one Rollout Split Mismatch with the reason and the check."""
    from orchestrator.store.lifecycle import announcements

    split = {"share": 0.2, "weight": 0.1, "outcome": "mismatch", "reason": "served 20%"}
    event = AuditEvent(
        rollout_id="r-1",
        seq=3,
        at="2026-01-01T00:00:00Z",  # type: ignore[arg-type]
        actor="workflow",
        kind="analysis",
        detail={"verdict": {"outcome": "pass", "split": split}},
    )
    assert announcements(event) == [("split_mismatch", {"reason": "served 20%", "split": split})]
    ok = event.model_copy(update={"detail": {"verdict": {"split": {**split, "outcome": "ok"}}}})
    assert announcements(ok) == []
    assert announcements(event.model_copy(update={"kind": "rolling_back"})) == []


# -- starts -----------------------------------------------------------------------------------


def test_a_keyed_start_leaves_one_claim_and_replays_201(aws):
    """GIVEN a start with an Idempotency-Key WHEN it is sent again with the same plan THEN
    201 with the same rollout, one rollout and exactly one idempotency record (the
    service's claim, no second layer)."""
    key = {"Idempotency-Key": "deploy-7"}
    first = _api("POST", "/rollouts", _plan(), key)
    again = _api("POST", "/rollouts", _plan(), key)
    assert first[0] == again[0] == 201
    assert first[1]["rollout_id"] == again[1]["rollout_id"]
    assert again[2]["Location"] == f"/rollouts/{first[1]['rollout_id']}"
    items = aws["store"].client.scan(TableName=aws["store"].tables.rollouts)["Items"]
    claims = [item for item in items if item["pk"]["S"].startswith("IDEMPOTENCY#")]
    assert [c["pk"]["S"] for c in claims] == ["IDEMPOTENCY#deploy-7"]
    assert claims[0]["rollout_id"]["S"] == first[1]["rollout_id"]


def test_a_key_reused_with_another_plan_is_422_naming_the_header(aws):
    """GIVEN a key used for one plan WHEN another plan is sent with it THEN 422 problem+json
    naming Idempotency-Key, and nothing more is written."""
    _api("POST", "/rollouts", _plan(), {"Idempotency-Key": "deploy-8"})
    before = _scan(aws["store"])
    other = _plan()
    other["stages"][0]["bake"] = 60
    status, problem, headers = _api("POST", "/rollouts", other, {"Idempotency-Key": "deploy-8"})
    assert status == 422 and headers["Content-Type"] == "application/problem+json"
    assert _fields(problem) == ["Idempotency-Key"]
    assert _scan(aws["store"]) == before


def test_the_api_has_no_second_idempotency_layer():
    """The start's idempotency is the service's claim alone: the API imports no
    powertools idempotency (which was also the API's import cycle)."""
    import importlib.util
    import sys

    assert importlib.util.find_spec("orchestrator.api.idempotency") is None
    assert not [m for m in sys.modules if m.startswith("aws_lambda_powertools.utilities.idem")]


def test_a_canary_of_the_stable_version_is_refused_naming_the_field(aws):
    """GIVEN a plan whose canary is the version the route already serves WHEN it is started
    THEN 422 naming canary.version, no lock taken, nothing written."""
    plan = _plan()
    plan["canary"]["version"] = plan["stable"]["version"]
    before = _scan(aws["store"])
    status, problem, _ = _api("POST", "/rollouts", plan)
    assert status == 422 and "canary.version" in _fields(problem), problem
    assert _scan(aws["store"]) == before


# -- steering and bodies ----------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["pause", "resume", "abort", "promote"])
@pytest.mark.parametrize(
    "body", [None, {}, {"reason": ""}, {"reason": "   "}, {"reason": "\t\n"}], ids=repr
)
def test_steering_through_the_api_needs_a_reason(aws, verb, body):
    """GIVEN a rollout WHEN pause/resume/abort/promote come without a reason (none, empty,
    only spaces) THEN 400 problem+json naming reason, and nothing is written."""
    _, started, _ = _api("POST", "/rollouts", _plan())
    before = _scan(aws["store"])
    status, problem, headers = _api("POST", f"/rollouts/{started['rollout_id']}/{verb}", body)
    assert status == 400 and headers["Content-Type"] == "application/problem+json"
    assert _fields(problem) == ["reason"], problem
    assert _scan(aws["store"]) == before


@pytest.mark.parametrize("text", ["{not json", "x", "[1, 2", '{"a": }'])
def test_a_body_that_is_not_json_is_reported_as_the_body(aws, text):
    """A body that is not JSON names the field `body` (not the character where parsing
    stopped, which read as field "0")."""
    status, problem, _ = _api("POST", "/rollouts", text)
    assert status == 422 and _fields(problem) == ["body"], problem
    assert "not valid JSON" in problem["errors"][0]["message"]


def test_an_unknown_path_of_the_api_is_problem_json(aws):
    """The handler's own answer to a path it does not serve is problem+json 404."""
    status, problem, headers = _api("GET", "/nothing/here")
    assert status == 404 and headers["Content-Type"] == "application/problem+json"
    assert problem["status"] == 404 and "GET /nothing/here" in problem["detail"]


def test_status_json_after_resume_reads_resumed(aws, lambda_context):
    """GIVEN a paused rollout resumed from the CLI WHEN `rollout status ID --json` THEN the
    reason says it resumed (what the watch header and plain status print too)."""
    rollout_id = _paused(aws, lambda_context)
    service = RolloutService(aws["store"], _AcceptingSfn(), "arn")  # type: ignore[arg-type]
    service.resume(rollout_id, "cli:root", "error rate is back")
    result = CliRunner().invoke(cli, ["status", rollout_id, "--json"])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout.splitlines()[0])
    assert shown["status"] == "RUNNING"
    assert shown["reason"] == "resumed by cli:root: error rate is back"


def test_cli_start_of_a_canary_of_the_stable_version_exits_2_naming_the_field(aws, tmp_path):
    """GIVEN a plan file whose canary is the stable's version WHEN `rollout start` THEN exit
    2 naming canary.version, and nothing is written (no lock taken)."""
    plan = _plan()
    plan["canary"]["version"] = plan["stable"]["version"]
    path = tmp_path / "plan.yaml"
    path.write_text(yaml.safe_dump(plan))
    before = _scan(aws["store"])
    result = CliRunner().invoke(cli, ["start", str(path)])
    assert result.exit_code == 2, result.output
    assert "canary.version" in result.output
    assert _scan(aws["store"]) == before


@pytest.mark.parametrize(("bake", "seconds"), [("1h30m", 5400), ("2m30s", 150), ("1h", 3600)])
def test_a_plan_takes_compound_durations(bake, seconds):
    """GIVEN a stage bake like 1h30m WHEN the plan is read THEN it is whole seconds."""
    from orchestrator.plans import parse_plan

    plan = _plan()
    plan["stages"][0].update(bake=bake, interval="30s")
    plan["analysis"]["initial_delay"] = 0
    assert parse_plan(yaml.safe_dump(plan)).stages[0].bake == seconds


@pytest.mark.parametrize(
    ("bake", "words"),
    [("1m1h", "largest first"), ("1h30", "needs a unit"), ("90 minutes", "unknown unit")],
)
def test_a_bad_duration_names_the_field_and_the_rule(bake, words):
    """GIVEN a malformed bake WHEN the plan is read THEN the problem names stages.0.bake and
    says what is wrong with the spelling."""
    from orchestrator.plans import InvalidPlan, parse_plan

    plan = _plan()
    plan["stages"][0]["bake"] = bake
    with pytest.raises(InvalidPlan) as refused:
        parse_plan(yaml.safe_dump(plan))
    assert [(f, m) for f, m in refused.value.problems if f == "stages.0.bake" and words in m]
