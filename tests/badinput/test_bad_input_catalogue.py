"""The bad-input catalogue: invalid plans, routes, API bodies and edge events.

Each case is refused with an error that names the offending field, and where a table is
involved a scan of both tables afterwards equals the scan before: nothing was written.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from click.testing import CliRunner
from moto import mock_aws

from orchestrator.cli.main import cli
from orchestrator.cli.routes import InvalidRoutes, parse_routes
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.plans import InvalidPlan, parse_plan
from orchestrator.store import Store, TableNames, create_tables

HOST = "shop.example.com"
TABLES = TableNames()


def _plan() -> dict[str, Any]:
    return demo_plan(demo_route(HOST, 8001, 8002)).model_dump(mode="json", exclude_none=True)


def _route() -> dict[str, Any]:
    return demo_route(HOST, 8001, 8002).model_dump(mode="json", exclude_none=True)


def _set(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``document`` with the dotted ``path`` set (``...=DELETE`` removes it)."""
    changed = copy.deepcopy(document)
    *parents, last = path.split(".")
    node: Any = changed
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    key: Any = int(last) if isinstance(node, list) else last
    if value is DELETE:
        del node[key]
    else:
        node[key] = value
    return changed


DELETE = object()


def _cases(rows: list[tuple[Any, ...]], bugs: dict[str, pytest.MarkDecorator]) -> list[Any]:
    return [pytest.param(*row, id=row[0], marks=bugs.get(row[0], ())) for row in rows]


# (case id, change to a valid plan, field the error must name)
BAD_PLANS: list[tuple[str, str, Any, str]] = [
    ("no-target", "target", DELETE, "target"),
    ("host-uppercase", "target.host", "Shop.Example.com", "target.host"),
    ("host-with-scheme", "target.host", "https://shop.example.com", "target.host"),
    ("path-rule-unknown", "target.path_rule", "regex:/x", "target.path_rule"),
    ("stable-version-spaces", "stable.version", "v 1", "stable.version"),
    ("canary-version-empty", "canary.version", "", "canary.version"),
    ("canary-name-uppercase", "canary.name", "Canary", "canary.name"),
    ("no-stages", "stages", [], "stages"),
    ("weight-zero", "stages.0.weight", 0, "stages.0.weight"),
    ("weight-over-100", "stages.0.weight", 150, "stages.0.weight"),
    ("weight-finer-than-bp", "stages.0.weight", 10.001, "stages.0.weight"),
    ("weight-a-string", "stages.0.weight", "ten", "stages.0.weight"),
    ("weights-not-climbing", "stages.1.weight", 5, "stages"),
    ("bake-shorter-than-interval", "stages.0.bake", 1, "stages.0"),
    ("bake-unparseable", "stages.0.bake", "soon", "stages.0.bake"),
    ("interval-zero", "stages.0.interval", 0, "stages.0.interval"),
    ("approval-not-bool", "stages.0.approval", "maybe", "stages.0.approval"),
    ("unknown-stage-field", "stages.0.colour", "red", "stages.0.colour"),
    ("unknown-top-field", "surprise", True, "surprise"),
    ("provider-unknown", "analysis.provider", "prometheus", "analysis.provider"),
    ("period-zero", "analysis.period", 0, "analysis.period"),
    (
        "on-inconclusive-unknown",
        "policies",
        {"on_inconclusive": "shrug"},
        "policies.on_inconclusive",
    ),
    (
        "tolerated-failures-negative",
        "analysis.limits",
        {"tolerated_failures": -1},
        "analysis.limits.tolerated_failures",
    ),
    (
        "max-error-streak-zero",
        "analysis.limits",
        {"max_error_streak": 0},
        "analysis.limits.max_error_streak",
    ),
    ("fail-margin-negative", "analysis.fail_margin", -0.1, "analysis.fail_margin"),
    ("fail-margin-over-one", "analysis.fail_margin", 1.5, "analysis.fail_margin"),
    ("fail-margin-not-a-number", "analysis.fail_margin", "wide", "analysis.fail_margin"),
    ("initial-delay-not-a-duration", "analysis.initial_delay", "soon", "analysis.initial_delay"),
    ("initial-delay-negative", "analysis.initial_delay", -1, "analysis.initial_delay"),
    ("dispersion-unknown", "analysis.dispersion", "beta-binomial", "analysis.dispersion"),
    ("noise-history-negative", "analysis.noise_history", -60, "analysis.noise_history"),
    ("split-tolerance-zero", "analysis.split", {"tolerance": 0}, "analysis.split.tolerance"),
    ("split-tolerance-one", "analysis.split", {"tolerance": 1}, "analysis.split.tolerance"),
    ("split-tolerance-over-one", "analysis.split", {"tolerance": 2}, "analysis.split.tolerance"),
    (
        "on-split-mismatch-unknown",
        "policies",
        {"on_split_mismatch": "shrug"},
        "policies.on_split_mismatch",
    ),
    ("edge-settle-negative", "analysis.edge_settle", -1, "analysis.edge_settle"),
    ("segment-dimension-unknown", "analysis.segments", [{"by": "os"}], "analysis.segments.0.by"),
    (
        "segment-tag-without-group-by",
        "analysis.segments",
        [{"by": "browser", "tag": "sum:app.errors{*}"}],
        "analysis.segments.0.tag",
    ),
    (
        "segment-max-values-zero",
        "analysis.segments",
        [{"by": "browser", "max_values": 0}],
        "analysis.segments.0.max_values",
    ),
    (
        "segment-max-values-over-200",
        "analysis.segments",
        [{"by": "browser", "max_values": 201}],
        "analysis.segments.0.max_values",
    ),
    (
        "invalidation-bad-path",
        "invalidation",
        {"distribution_id": "E1", "paths": ["x"]},
        "invalidation.paths.0",
    ),
]


@pytest.mark.parametrize(("case", "path", "value", "field"), _cases(BAD_PLANS, {}))
def test_bad_plan_is_refused_naming_the_field(case: str, path: str, value: Any, field: str) -> None:
    """GIVEN a plan with one bad field WHEN parsed THEN InvalidPlan names that field."""
    with pytest.raises(InvalidPlan) as refused:
        parse_plan(json.dumps(_set(_plan(), path, value)))
    fields = [f for f, _ in refused.value.problems]
    assert any(f == field or f.startswith(field + ".") for f in fields), (case, fields)


# (case id, change to a valid plan, field the error is reported on, words its message has)
RULES_ACROSS_FIELDS: list[tuple[str, str, Any, str, list[str]]] = [
    # The demo's stages bake 8s, 6s (and 6s at 100%, which is not judged).
    (
        "initial-delay-as-long-as-a-bake",
        "analysis.initial_delay",
        6,
        "(plan)",
        ["analysis.initial_delay", "stage 2", "6s"],
    ),
    (
        "initial-delay-not-a-whole-interval",
        "analysis.initial_delay",
        3,
        "(plan)",
        ["analysis.initial_delay", "whole number", "2s"],
    ),
    (
        "initial-delay-longer-than-the-first-bake",
        "analysis.initial_delay",
        "1m",
        "(plan)",
        ["analysis.initial_delay", "stage 1", "8s"],
    ),
    (
        "segment-metric-not-in-the-plan",
        "analysis.segments",
        [{"by": "browser", "metrics": ["latency"]}],
        "analysis",
        ["analysis.segments.0.metrics", "'latency'", "error-rate"],
    ),
    (
        "segment-dimension-twice",
        "analysis.segments",
        [{"by": "country"}, {"by": "country"}],
        "analysis",
        ["analysis.segments.1.by", "'country'"],
    ),
    (
        "split-metric-not-a-ratio-metric",
        "analysis.split",
        {"metric": "latency"},
        "analysis",
        ["analysis.split.metric", "'latency'", "error-rate"],
    ),
    (
        "cloudwatch-counts-not-per-variant",
        "analysis.dimensions",
        {"Host": "{host}"},
        "analysis",
        [
            "analysis.metrics.0.numerator: 'Errors'",
            "analysis.metrics.0.denominator: 'Requests'",
            "{variant}",
            "{version}",
            "the same counts",
        ],
    ),
    (
        "datadog-query-not-per-variant",
        "analysis",
        {
            "provider": "datadog",
            "datadog": {"api_key_secret": "edgeshift/datadog/api", "app_key_secret": "k/app"},
            "metrics": [
                {
                    "name": "error-rate",
                    "numerator": "sum:web.errors{variant:{variant}}.as_count()",
                    "denominator": "sum:web.requests{host:{host}}.as_count()",
                }
            ],
        },
        "analysis",
        ["analysis.metrics.0.denominator", "names neither {variant} nor {version}"],
    ),
    (
        "old-failure-limit",
        "analysis.limits",
        {"failure_limit": 1},
        "analysis.limits",
        ["analysis.limits.failure_limit", "analysis.limits.tolerated_failures"],
    ),
    (
        "old-inconclusive-limit",
        "analysis.limits",
        {"inconclusive_limit": 3},
        "analysis.limits",
        ["analysis.limits.inconclusive_limit", "analysis.limits.max_inconclusive_looks"],
    ),
    (
        "old-consecutive-error-limit",
        "analysis.limits",
        {"consecutive_error_limit": 3},
        "analysis.limits",
        ["analysis.limits.consecutive_error_limit", "analysis.limits.max_error_streak"],
    ),
    (
        "old-policies-failure-limit",
        "policies",
        {"failure_limit": 2},
        "policies",
        ["policies.failure_limit", "analysis.limits.tolerated_failures"],
    ),
]


@pytest.mark.parametrize(
    ("case", "path", "value", "field", "words"), _cases(RULES_ACROSS_FIELDS, {})
)
def test_bad_plan_is_refused_with_a_message_naming_the_fields(
    case: str, path: str, value: Any, field: str, words: list[str]
) -> None:
    """GIVEN a plan breaking a rule on several fields, or an old field name WHEN parsed THEN
    InvalidPlan names the fields (and the new name of an old one) in its message."""
    with pytest.raises(InvalidPlan) as refused:
        parse_plan(json.dumps(_set(_plan(), path, value)))
    messages = [rule for f, rule in refused.value.problems if f == field]
    assert messages, (case, refused.value.problems)
    assert all(word in messages[0] for word in words), (case, messages[0])


@pytest.mark.parametrize(
    "analysis",
    [
        {"dimensions": {"Release": "{version}"}},
        {
            "dimensions": {},
            "requests_metric": "Requests-{variant}",
            "errors_metric": "Errors-{variant}",
        },
    ],
)
def test_counts_read_per_version_or_per_metric_name_are_accepted(analysis: dict[str, Any]) -> None:
    """GIVEN CloudWatch counts kept apart by a {version} dimension, or by metric names that
    name the variant WHEN parsed THEN the plan is valid: each variant reads its own counts."""
    document = _plan()
    document["analysis"] = {
        "namespace": "Shop",
        "requests_metric": "Requests",
        "errors_metric": "Errors",
        **analysis,
    }
    assert parse_plan(json.dumps(document)).analysis.dimensions == analysis["dimensions"]


def test_a_stage_is_named_as_people_count_it_and_rules_read_as_written() -> None:
    """GIVEN a plan whose second stage weighs 150 and whose counts are not per variant WHEN
    parsed THEN the weight's problem says "(stage 2)" beside its path ``stages.1.weight``,
    and the rule's message is its own words, without pydantic's "Value error," prefix."""
    document = _set(_plan(), "stages.1.weight", 150)
    document["analysis"]["dimensions"] = {}
    with pytest.raises(InvalidPlan) as refused:
        parse_plan(json.dumps(document))
    problems = dict(refused.value.problems)
    assert problems["stages.1.weight"].endswith("(stage 2)"), problems
    assert problems["analysis"].startswith("analysis.metrics.0.numerator: "), problems


def test_an_initial_delay_shorter_than_every_bake_is_accepted() -> None:
    """GIVEN initial_delay one interval under the shortest judged bake WHEN parsed THEN the
    plan is accepted (the boundary of the rule above)."""
    plan = parse_plan(json.dumps(_set(_plan(), "analysis.initial_delay", 4)))

    assert plan.analysis.initial_delay == 4


@pytest.mark.parametrize(
    ("text", "field"),
    [("target: [unclosed", "(file)"), ("- just\n- a list", "(file)"), ("", "(file)")],
    ids=["not-yaml", "a-list", "empty"],
)
def test_unreadable_plan_files_name_the_file(text: str, field: str) -> None:
    """A plan that is not a mapping is refused as a whole file."""
    with pytest.raises(InvalidPlan) as refused:
        parse_plan(text)
    assert refused.value.problems[0][0] == field


# (case id, change to a valid route, field)
BAD_ROUTES: list[tuple[str, str, Any, str]] = [
    ("weights-not-summing", "variants.0.weight", 1, "variants"),
    ("weight-negative", "variants.0.weight", -1, "variants.0.weight"),
    ("weight-over-full", "variants.1.weight", 10_001, "variants.1.weight"),
    ("one-variant", "variants", [], "variants"),
    (
        "uri-not-rooted",
        "variants.0.actions.set_uri",
        "releases/{version}",
        "variants.0.actions.set_uri",
    ),
    ("uri-unknown-template", "variants.0.actions.set_uri", "/{nope}", "variants.0.actions.set_uri"),
    (
        "origin-ip",
        "variants.0.actions.set_origin.domain",
        "10.0.0.1",
        "variants.0.actions.set_origin",
    ),
    ("origin-port-low", "variants.0.actions.set_origin.port", 22, "variants.0.actions.set_origin"),
    (
        "origin-protocol",
        "variants.0.actions.set_origin.protocol",
        "ftp",
        "variants.0.actions.set_origin.protocol",
    ),
    (
        "header-reserved",
        "variants.0.actions.set_headers",
        {"x-edgeshift-variant": "a"},
        "variants.0.actions.set_headers",
    ),
    (
        "header-host",
        "variants.0.actions.set_headers",
        {"Host": "a"},
        "variants.0.actions.set_headers",
    ),
    ("stickiness-unknown", "stickiness", {"key": "fingerprint"}, "stickiness.key"),
    ("cache-control-newline", "cache_control", "no-store\nx: y", "cache_control"),
    ("allow-forced-string", "allow_forced", "yes", "allow_forced"),
    ("unknown-field", "colour", "red", "colour"),
]


@pytest.mark.parametrize(
    ("case", "path", "value", "field"),
    _cases(BAD_ROUTES, {}),
)
def test_bad_route_is_refused_naming_the_field(
    case: str, path: str, value: Any, field: str
) -> None:
    """GIVEN a route with one bad field WHEN parsed as a routes file THEN the field is named."""
    with pytest.raises(InvalidRoutes) as refused:
        parse_routes(json.dumps(_set(_route(), path, value)))
    fields = [f for f, _ in refused.value.problems]
    assert any(f == field or f.startswith(field + ".") for f in fields), (case, fields)


def test_routes_file_for_two_hosts_or_twice_one_rule_is_refused() -> None:
    """One routes file is for one host, each path rule once."""
    other = {**_route(), "host": "other.example.com"}
    for document, field in (([_route(), other], "host"), ([_route(), _route()], "path_rule")):
        with pytest.raises(InvalidRoutes) as refused:
            parse_routes(json.dumps(document))
        assert refused.value.problems[0][0] == field


# -- through the CLI and the API, with a scan of both tables -----------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """moto, both tables, the route of HOST, a state machine; no endpoint override."""
    for name in (
        "AWS_ENDPOINT_URL",
        "EDGESHIFT_ENDPOINT_URL",
        "EDGESHIFT_STATE_MACHINE_ARN",
        "EDGESHIFT_ROUTES_TABLE",
        "EDGESHIFT_ROLLOUTS_TABLE",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in (
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_REGION", "us-east-1"),
    ):
        monkeypatch.setenv(name, value)
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        create_tables(dynamodb, TABLES)
        store = Store(dynamodb, TABLES)
        store.put_route(demo_route(HOST, 8001, 8002), expected_revision=None)
        arn = boto3.client("stepfunctions").create_state_machine(
            name="edgeshift-rollout",
            roleArn="arn:aws:iam::123456789012:role/sfn",
            definition=json.dumps({"StartAt": "S", "States": {"S": {"Type": "Succeed"}}}),
        )["stateMachineArn"]
        monkeypatch.setenv("EDGESHIFT_STATE_MACHINE_ARN", arn)
        yield store


def _scan() -> dict[str, list[Any]]:
    dynamodb = boto3.client("dynamodb")
    return {
        table: sorted(
            json.dumps(i, sort_keys=True) for i in dynamodb.scan(TableName=table)["Items"]
        )
        for table in (TABLES.routes, TABLES.rollouts)
    }


CLI_PLANS = [
    ("weight-over-100", "stages.0.weight", 150, "stages.0.weight"),
    ("unknown-field", "surprise", 1, "surprise"),
    ("stable-not-served", "stable.version", "v9", "stable.version"),
    ("no-route-for-host", "target.host", "nowhere.example.com", "target"),
    ("variant-names-differ", "canary.name", "blue", "stable.name"),
]


@pytest.mark.parametrize(("case", "path", "value", "field"), _cases(CLI_PLANS, {}))
def test_rollout_start_refuses_bad_plans_exit_2_writing_nothing(
    aws: Store, tmp_path: Path, case: str, path: str, value: Any, field: str
) -> None:
    """`rollout start` exits 2, names the field, and both tables are as they were."""
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(yaml.safe_dump(_set(_plan(), path, value)))
    before = _scan()
    result = CliRunner().invoke(cli, ["start", str(plan_file)])
    assert result.exit_code == 2, result.output
    assert field in result.output, result.output
    assert _scan() == before


CLI_ROUTES = [
    ("weights-not-summing", "variants.0.weight", 1, "variants"),
    ("uri-not-rooted", "variants.0.actions.set_uri", "x", "variants.0.actions.set_uri"),
    ("unknown-field", "colour", "red", "colour"),
    ("host-uppercase", "host", "SHOP.example.com", "host"),
]


@pytest.mark.parametrize(
    ("case", "path", "value", "field"),
    _cases(CLI_ROUTES, {}),
)
def test_routes_put_refuses_bad_routes_exit_2_writing_nothing(
    aws: Store, tmp_path: Path, case: str, path: str, value: Any, field: str
) -> None:
    """`rollout routes put` exits 2, names the field, and both tables are as they were."""
    routes_file = tmp_path / "routes.yaml"
    routes_file.write_text(yaml.safe_dump(_set(_route(), path, value)))
    before = _scan()
    result = CliRunner().invoke(cli, ["routes", "put", str(routes_file)])
    assert result.exit_code == 2, result.output
    assert field in result.output, result.output
    assert _scan() == before


@pytest.fixture
def api(aws: Store) -> Any:
    from orchestrator.api import app as api_app
    from orchestrator.api.handler import handler
    from orchestrator.local.apigw import proxy_event
    from orchestrator.local.dispatch import InvocationContext

    api_app.service.cache_clear()
    context = InvocationContext(
        "edgeshift-api", "arn:aws:lambda:us-east-1:123456789012:function:api"
    )

    def call(method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        text = body if isinstance(body, str) else json.dumps(body)
        result = handler(proxy_event(method, path, body=text), context)
        return result["statusCode"], json.loads(result["body"])

    yield call
    api_app.service.cache_clear()


API_BODIES = [
    (
        "plan-weight-string",
        "POST",
        "/rollouts",
        _set(_plan(), "stages.0.weight", "x"),
        "stages.0.weight",
    ),
    ("plan-no-analysis", "POST", "/rollouts", _set(_plan(), "analysis", DELETE), "analysis"),
    ("plan-bad-host", "POST", "/rollouts", _set(_plan(), "target.host", "a b"), "target.host"),
    ("plan-a-list", "POST", "/rollouts", [1, 2], None),
    ("abort-without-reason", "POST", "/rollouts/r-20990101T000000Z-deadbeef/abort", {}, "reason"),
    (
        "promote-reason-number",
        "POST",
        "/rollouts/r-20990101T000000Z-deadbeef/promote",
        {"reason": 5},
        "reason",
    ),
    ("routes-rules-missing", "PUT", f"/routes/{HOST}", {"reason": "x"}, "rules"),
    (
        "routes-weight-negative",
        "PUT",
        f"/routes/{HOST}",
        {"rules": [_set(_route(), "variants.0.weight", -5)]},
        "rules.0.variants.0.weight",
    ),
    (
        "routes-unknown-field",
        "PUT",
        f"/routes/{HOST}",
        {"rules": [_route()], "colour": 1},
        "colour",
    ),
]


@pytest.mark.parametrize(
    ("case", "method", "path", "body", "field"), API_BODIES, ids=[c[0] for c in API_BODIES]
)
def test_api_refuses_bad_bodies_naming_the_field_writing_nothing(
    api: Any, case: str, method: str, path: str, body: Any, field: str | None
) -> None:
    """A bad body is a 4xx problem+json naming the field; both tables are as they were."""
    before = _scan()
    status, problem = api(method, path, body)
    assert 400 <= status < 500, (status, problem)
    if field is not None:
        named = [e.get("field", "") for e in problem.get("errors", [])]
        assert any(f == field or f.startswith(field + ".") for f in named), (case, problem)
    assert _scan() == before


# -- edge events ----------------------------------------------------------------------------

EDGE_EVENTS = [
    ("no-records", "viewer_request", {}, "request"),
    ("records-empty", "viewer_request", {"Records": []}, "request"),
    ("cf-not-a-dict", "origin_request", {"Records": [{"cf": "x"}]}, "request"),
    ("no-response", "viewer_response", {"Records": [{"cf": {"request": {}}}]}, "response"),
    (
        "other-trigger",
        "viewer_request",
        {
            "Records": [
                {
                    "cf": {
                        "config": {"eventType": "origin-response"},
                        "request": {"uri": "/", "headers": {}},
                    }
                }
            ]
        },
        "event_type",
    ),
]


@pytest.mark.parametrize(
    ("case", "module", "event", "field"), EDGE_EVENTS, ids=[c[0] for c in EDGE_EVENTS]
)
def test_edge_handlers_pass_bad_events_through_and_say_which_part(
    capsys: pytest.CaptureFixture[str], case: str, module: str, event: Any, field: str
) -> None:
    """An event the edge cannot read is never an exception: the handler changes nothing
    and its warning names the missing or unexpected part (the edge writes no table)."""
    import importlib

    handler = importlib.import_module(f"edge.{module}").handler
    before = copy.deepcopy(event)
    handler(event, None)
    assert event == before
    assert field in capsys.readouterr().out
