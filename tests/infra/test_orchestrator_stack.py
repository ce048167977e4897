"""The orchestrator stack: tables, task functions, state machine and who may call what."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from aws_cdk.assertions import Match

from orchestrator.store.tables import ROLLOUTS_KEY, ROUTES_KEY, TableNames
from orchestrator.workflow.definition import DEFINITION_PATH, TASKS, render

from .cfn import (
    Synthesized,
    as_list,
    default_context,
    functions_by_handler,
    resources,
    statements_of,
)

pytestmark = pytest.mark.infra

STATES = ("Begin", "ApplyStage", "Wait", "Analyze", "Decide", "Promote", "Rollback")


def _table(synthesized: Synthesized, name: str) -> dict[str, Any]:
    tables = resources(synthesized.orchestrator, "AWS::DynamoDB::GlobalTable").values()
    return next(t["Properties"] for t in tables if t["Properties"]["TableName"] == name)


def _key(props: dict[str, Any]) -> tuple[str, str]:
    by_type = {k["KeyType"]: k["AttributeName"] for k in props["KeySchema"]}
    return by_type["HASH"], by_type["RANGE"]


def _state_machine(synthesized: Synthesized) -> dict[str, Any]:
    (machine,) = resources(synthesized.orchestrator, "AWS::StepFunctions::StateMachine").values()
    props: dict[str, Any] = machine["Properties"]
    return props


def _task_functions(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    """Handler -> function properties, for the state machine's task functions."""
    return functions_by_handler(synthesized.orchestrator, "orchestrator.workflow.tasks.")


def test_routes_table_is_global_with_a_replica_per_context_region(synthesized: Synthesized) -> None:
    """The routes table lives in the primary region and every replica region from context."""
    routes = _table(synthesized, TableNames().routes)
    expected = {
        default_context()["edgeshift:primaryRegion"],
        *default_context()["edgeshift:replicaRegions"],
    }
    assert {r["Region"] for r in routes["Replicas"]} == expected
    assert _key(routes) == ROUTES_KEY == ("host", "path_rule")
    assert routes["BillingMode"] == "PAY_PER_REQUEST"
    for replica in routes["Replicas"]:
        assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        assert replica["DeletionProtectionEnabled"] is True


def test_rollouts_table_has_pk_sk_pitr_and_ttl(synthesized: Synthesized) -> None:
    """The rollouts table keys on pk/sk like the store, keeps PITR and expires on expires_at."""
    rollouts = _table(synthesized, TableNames().rollouts)
    assert _key(rollouts) == ROLLOUTS_KEY == ("pk", "sk")
    assert rollouts["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    (replica,) = rollouts["Replicas"]
    assert replica["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


def test_tables_are_retained_when_the_stack_goes(synthesized: Synthesized) -> None:
    """Deleting the stack never deletes live weights or the audit trail."""
    synthesized.orchestrator.all_resources(
        "AWS::DynamoDB::GlobalTable", {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
    )


def test_state_machine_is_standard_traced_and_fully_logged(synthesized: Synthesized) -> None:
    """Rollouts bake for hours, so Standard; X-Ray and ALL-level logs are on."""
    synthesized.orchestrator.has_resource_properties(
        "AWS::StepFunctions::StateMachine",
        {
            "StateMachineType": "STANDARD",
            "TracingConfiguration": {"Enabled": True},
            "LoggingConfiguration": Match.object_like({"Level": "ALL"}),
        },
    )


def test_definition_is_the_asl_file_after_substitution(synthesized: Synthesized) -> None:
    """The deployed definition is the very file the local stack runs, placeholders filled."""
    machine = _state_machine(synthesized)
    staged = synthesized.asset(machine["DefinitionS3Location"]["Key"]).read_text()
    assert staged == DEFINITION_PATH.read_text()

    functions = resources(synthesized.orchestrator, "AWS::Lambda::Function")
    resolved = {}
    for name, value in machine["DefinitionSubstitutions"].items():
        logical_id, attribute = value["Fn::GetAtt"]
        assert attribute == "Arn" and logical_id in functions
        resolved[name] = f"arn:aws:lambda:us-east-1:123456789012:function:{logical_id}"
    # render() refuses a missing or an unknown placeholder, so the two sets are equal.
    text = render(resolved)

    assert not re.search(r"\$\{[^}]*\}", text)
    states = json.loads(text)["States"]
    assert set(STATES) <= states.keys()
    for placeholder, (_suffix, handler) in TASKS.items():
        targets = [
            state["Parameters"]["FunctionName"]
            for state in states.values()
            if state.get("Parameters", {}).get("FunctionName") == resolved[placeholder]
        ]
        assert targets, f"no state calls {placeholder}"
        logical_id = targets[0].rsplit(":", 1)[1]
        assert functions[logical_id]["Properties"]["Handler"] == handler


def test_state_machine_may_invoke_the_tasks_and_nothing_else(synthesized: Synthesized) -> None:
    """The state machine role's lambda:InvokeFunction covers exactly the task functions."""
    role_id = _state_machine(synthesized)["RoleArn"]["Fn::GetAtt"][0]
    invoked: set[str] = set()
    for statement in statements_of(synthesized.orchestrator, role_id):
        if "lambda:InvokeFunction" in as_list(statement["Action"]):
            for resource in as_list(statement["Resource"]):
                invoked.add(json.dumps(resource))
    task_ids = {f["id"] for f in _task_functions(synthesized).values()}
    # Each function appears as itself and as `<arn>:*` (its versions and aliases).
    assert {_logical_id(r) for r in invoked} == task_ids
    assert all(_logical_id(r) for r in invoked)


def test_task_functions_run_python312_with_table_names(synthesized: Synthesized) -> None:
    """Each task handler from the orchestrator's table runs on 3.12 with both table names."""
    functions = _task_functions(synthesized)
    assert set(functions) == {handler for _suffix, handler in TASKS.values()}
    for fn in functions.values():
        assert fn["Runtime"] == "python3.12"
        assert fn["TracingConfig"] == {"Mode": "Active"}
        assert fn["Environment"]["Variables"]["EDGESHIFT_ROUTES_TABLE"] == TableNames().routes
        assert fn["Environment"]["Variables"]["EDGESHIFT_ROLLOUTS_TABLE"] == TableNames().rollouts


@pytest.mark.parametrize(
    ("task", "writes_routes"),
    [
        ("begin", False),
        ("analyze", False),
        ("apply_stage", True),
        ("promote", True),
        ("rollback", True),
    ],
)
def test_only_traffic_moving_tasks_can_touch_routes(
    synthesized: Synthesized, task: str, writes_routes: bool
) -> None:
    """Begin and Analyze cannot reach the routes table; every task can write rollouts."""
    fn = _task_functions(synthesized)[f"orchestrator.workflow.tasks.{task}"]
    role_id = fn["Role"]["Fn::GetAtt"][0]
    touched = json.dumps(statements_of(synthesized.orchestrator, role_id))
    routes_id = _logical_id_of_table(synthesized, TableNames().routes)
    rollouts_id = _logical_id_of_table(synthesized, TableNames().rollouts)
    assert (routes_id in touched) is writes_routes
    assert rollouts_id in touched


def test_task_code_asset_holds_only_the_orchestrator_package(synthesized: Synthesized) -> None:
    """The shared zip carries `orchestrator/` without the local stack, bytecode or dotfiles,
    and the `edge` package whose rule checks and flag names the orchestrator imports."""
    fn = next(iter(_task_functions(synthesized).values()))
    asset = synthesized.asset(fn["Code"]["S3Key"].removesuffix(".zip"))
    top_level = {p.name for p in asset.iterdir()}
    assert top_level == {"orchestrator", "edge"}
    assert (asset / "edge" / "validate.py").is_file()
    assert (asset / "orchestrator" / "workflow" / "rollout.asl.json").is_file()
    assert not (asset / "orchestrator" / "local").exists()
    assert not list(asset.rglob("__pycache__"))
    assert not [p for p in asset.rglob(".*")]


def _snake(state: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", state).lower()


def _logical_id(resource_json: str) -> str:
    match = re.search(r'"Fn::GetAtt": \["(\w+)", "Arn"\]', resource_json)
    return match.group(1) if match else ""


def _logical_id_of_table(synthesized: Synthesized, name: str) -> str:
    tables = resources(synthesized.orchestrator, "AWS::DynamoDB::GlobalTable")
    return next(i for i, t in tables.items() if t["Properties"]["TableName"] == name)
