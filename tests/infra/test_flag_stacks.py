"""Flag-driven routing in the CDK app: the flag viewer-request function on the flag-routed
behaviours only, and the scheduled flag sync with exactly the access it uses."""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

import pytest
from aws_cdk import Stack
from aws_cdk.assertions import Template

from stacks.app import build_app, nag_errors

from .cfn import default_context, functions_by_handler, resources, statements_of

SECRET = "edgeshift/launchdarkly/sdk-key"


@pytest.fixture(scope="module")
def flag_app() -> dict[str, Any]:
    context = {
        **default_context(),
        "edgeshift:launchDarklySdkKeySecret": SECRET,
        "edgeshift:flagRoutedPaths": ["/checkout/*"],
    }
    outdir = tempfile.mkdtemp(prefix="edgeshift-flags-cdk-")
    try:
        app = build_app(context, outdir=outdir)
        stacks = {c.node.id: c for c in app.node.children if isinstance(c, Stack)}
        assembly = app.synth()
        yield {
            "orchestrator": Template.from_stack(stacks["EdgeshiftOrchestrator"]),
            "edge": Template.from_stack(stacks["EdgeshiftEdge"]),
            "nag": nag_errors(assembly),
        }
    finally:
        shutil.rmtree(outdir, ignore_errors=True)


def _version_of(function_id: str, edge: Template) -> str:
    (version_id,) = [
        i
        for i, v in resources(edge, "AWS::Lambda::Version").items()
        if v["Properties"]["FunctionName"] == {"Ref": function_id}
    ]
    return version_id


def test_only_the_flag_routed_behaviour_runs_the_flag_viewer_request(
    flag_app: dict[str, Any],
) -> None:
    """GIVEN /checkout/* routed by flag WHEN synthesized THEN its viewer-request association
    is the flag function's version, and /app/* keeps the stdlib one."""
    edge = flag_app["edge"]
    functions = resources(edge, "AWS::Lambda::Function")
    flag_fn = next(i for i in functions if i.startswith("FunctionsFlagViewerRequest"))
    plain_fn = next(i for i in functions if i.startswith("FunctionsViewerRequest"))
    (distribution,) = resources(edge, "AWS::CloudFront::Distribution").values()
    behaviours = {
        b["PathPattern"]: b
        for b in distribution["Properties"]["DistributionConfig"]["CacheBehaviors"]
    }

    def viewer_request(path: str) -> str:
        (assoc,) = [
            a
            for a in behaviours[path]["LambdaFunctionAssociations"]
            if a["EventType"] == "viewer-request"
        ]
        return str(assoc["LambdaFunctionARN"]["Ref"])

    assert viewer_request("/checkout/*") == _version_of(flag_fn, edge)
    assert viewer_request("/app/*") == _version_of(plain_fn, edge)
    assert functions[flag_fn]["Properties"]["MemorySize"] == 128


def test_the_flag_sync_runs_every_minute(flag_app: dict[str, Any]) -> None:
    """GIVEN an SDK key secret WHEN synthesized THEN a rule runs the sync every minute."""
    orchestrator = flag_app["orchestrator"]
    (sync,) = functions_by_handler(orchestrator, "orchestrator.flags.sync").values()
    rules = [
        r["Properties"]
        for r in resources(orchestrator, "AWS::Events::Rule").values()
        if r["Properties"].get("ScheduleExpression")
    ]

    assert [r["ScheduleExpression"] for r in rules] == ["rate(1 minute)"]
    assert rules[0]["Targets"][0]["Arn"] == {"Fn::GetAtt": [sync["id"], "Arn"]}
    assert sync["Environment"]["Variables"]["EDGESHIFT_LAUNCHDARKLY_SDK_KEY_SECRET"] == SECRET


def test_the_flag_sync_may_do_what_it_does_and_no_more(flag_app: dict[str, Any]) -> None:
    """GIVEN the sync function's role WHEN its statements are read THEN the SDK key secret
    only, Query/Scan/Put/Delete on the routes table, Put (audit) on the rollouts table."""
    orchestrator = flag_app["orchestrator"]
    (sync,) = functions_by_handler(orchestrator, "orchestrator.flags.sync").values()
    role = sync["Role"]["Fn::GetAtt"][0]
    statements = statements_of(orchestrator, role)
    tables = resources(orchestrator, "AWS::DynamoDB::GlobalTable")
    arn = {t["Properties"]["TableName"]: {"Fn::GetAtt": [i, "Arn"]} for i, t in tables.items()}
    granted = {
        (action, str(s["Resource"]))
        for s in statements
        for action in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        if action.startswith(("dynamodb:", "secretsmanager:")) and s["Effect"] == "Allow"
    }

    routes = str(arn["edgeshift-routes"])
    secrets = [r for a, r in granted if a.startswith("secretsmanager:")]
    assert len(secrets) == 1 and SECRET + "-??????" in secrets[0]
    assert {(a, r) for a, r in granted if a.startswith("dynamodb:")} == {
        ("dynamodb:Query", routes),
        ("dynamodb:Scan", routes),
        ("dynamodb:PutItem", routes),
        ("dynamodb:DeleteItem", routes),
        ("dynamodb:PutItem", str(arn["edgeshift-rollouts"])),
    }
    # Its writes to the routes table are held to the flag partition: the routes are not its.
    (deny,) = [s for s in statements if s["Effect"] == "Deny"]
    assert sorted(deny["Action"]) == ["dynamodb:DeleteItem", "dynamodb:PutItem"]
    assert str(deny["Resource"]) == routes
    assert deny["Condition"] == {
        "ForAnyValue:StringNotEquals": {"dynamodb:LeadingKeys": ["edgeshift:flags"]}
    }


def test_the_flag_stacks_pass_cdk_nag(flag_app: dict[str, Any]) -> None:
    """GIVEN the flag resources WHEN checked by cdk-nag THEN no unsuppressed error."""
    assert flag_app["nag"] == []


def test_three_failed_syncs_page_the_alarms_topic(flag_app: dict[str, Any]) -> None:
    """GIVEN the sync WHEN synthesized THEN FlagSyncFailed watches its Errors over three
    one-minute periods and notifies the alarms topic."""
    orchestrator = flag_app["orchestrator"]
    (sync,) = functions_by_handler(orchestrator, "orchestrator.flags.sync").values()
    alarms = [
        a["Properties"]
        for i, a in resources(orchestrator, "AWS::CloudWatch::Alarm").items()
        if "FlagSyncFailed" in i
    ]

    assert len(alarms) == 1
    alarm = alarms[0]
    assert alarm["MetricName"] == "Errors" and alarm["EvaluationPeriods"] == 3
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": sync["id"]}}]
    assert len(alarm["AlarmActions"]) == 1


def test_the_flag_viewer_request_may_read_the_flags_partition(flag_app: dict[str, Any]) -> None:
    """GIVEN the flag viewer-request function WHEN its role's statements are read THEN it may
    Query and GetItem the routes table with no condition on the partition key (a
    dynamodb:LeadingKeys list of hosts would leave out edgeshift:flags), and may write
    nothing."""
    edge = flag_app["edge"]
    functions = resources(edge, "AWS::Lambda::Function")
    flag_fn = next(i for i in functions if i.startswith("FunctionsFlagViewerRequest"))
    role = functions[flag_fn]["Properties"]["Role"]["Fn::GetAtt"][0]
    statements = [
        s
        for s in statements_of(edge, role)
        if any(
            a.startswith("dynamodb:")
            for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
        )
    ]

    actions = {
        a
        for s in statements
        for a in (s["Action"] if isinstance(s["Action"], list) else [s["Action"]])
    }
    assert actions == {"dynamodb:GetItem", "dynamodb:Query"}
    assert all("Condition" not in s and s["Effect"] == "Allow" for s in statements)
    assert all("edgeshift-routes" in str(s["Resource"]) for s in statements)
