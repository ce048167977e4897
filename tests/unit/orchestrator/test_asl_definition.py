"""Tests for the rollout ASL file and orchestrator.workflow.definition's placeholder filling."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.workflow.definition import DEFINITION_PATH, TASKS, placeholders, render


def _arns() -> dict[str, str]:
    return {
        name: f"arn:aws:lambda:us-east-1:123456789012:function:edgeshift-{suffix}"
        for name, (suffix, _) in TASKS.items()
    }


@pytest.fixture(scope="module")
def states() -> dict[str, dict[str, Any]]:
    document: dict[str, Any] = json.loads(render(_arns()))
    return document["States"]


def _tasks(states: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {name: state for name, state in states.items() if state["Type"] == "Task"}


def test_asl_file_is_json_with_a_valid_start() -> None:
    """GIVEN the ASL file WHEN read as JSON THEN StartAt names one of its states."""
    document = json.loads(DEFINITION_PATH.read_text())

    assert document["StartAt"] in document["States"]


def test_placeholders_are_exactly_the_task_functions() -> None:
    """GIVEN the ASL file WHEN its ${...} placeholders are listed THEN they equal TASKS' keys."""
    assert placeholders() == set(TASKS)


def test_placeholders_reads_given_text() -> None:
    """GIVEN explicit text WHEN placeholders are listed THEN only names in it are found."""
    assert placeholders("${A} and ${B_c} but not $D or {E}") == {"A", "B_c"}


def test_render_fills_every_placeholder() -> None:
    """GIVEN an ARN for every task WHEN rendered THEN no placeholder is left and ARNs appear."""
    arns = _arns()

    text = render(arns)

    assert placeholders(text) == set()
    assert "${" not in text
    names = {
        s["Parameters"]["FunctionName"]
        for s in json.loads(text)["States"].values()
        if s["Type"] == "Task"
    }
    assert names == set(arns.values())


def test_render_refuses_a_missing_substitution() -> None:
    """GIVEN no ARN for the rollback task WHEN rendered THEN ValueError names it."""
    arns = _arns()
    del arns["RollbackFunctionArn"]

    with pytest.raises(ValueError, match=r"missing: \['RollbackFunctionArn'\], unknown: \[\]"):
        render(arns)


def test_render_refuses_an_unknown_substitution() -> None:
    """GIVEN an ARN for a task the file does not have WHEN rendered THEN ValueError names it."""
    arns = {**_arns(), "PauseFunctionArn": "arn:aws:lambda:us-east-1:1:function:pause"}

    with pytest.raises(ValueError, match=r"missing: \[\], unknown: \['PauseFunctionArn'\]"):
        render(arns)


def test_task_handlers_are_importable_names() -> None:
    """GIVEN TASKS WHEN each dotted handler is resolved THEN it is a callable in tasks.py."""
    from orchestrator.local.dispatch import load_handler

    for _, dotted in TASKS.values():
        assert callable(load_handler(dotted)), dotted


def test_every_task_but_rollback_catches_all_errors_into_rollback(
    states: dict[str, dict[str, Any]],
) -> None:
    """GIVEN the task states WHEN any of them but the rollback path fails THEN -> Rollback."""
    for name, state in _tasks(states).items():
        if name in ("Rollback", "RecordFailure"):
            continue
        catchers = state.get("Catch", [])
        assert any(
            "States.ALL" in c["ErrorEquals"] and c["Next"] == "Rollback" for c in catchers
        ), name


def test_rollback_retries_everything_then_fails_loudly(
    states: dict[str, dict[str, Any]],
) -> None:
    """GIVEN the Rollback task WHEN it keeps failing THEN it retries, records FAILED, then Fail."""
    rollback, record = states["Rollback"], states["RecordFailure"]

    assert any(
        "States.ALL" in r["ErrorEquals"] and r["MaxAttempts"] >= 1 for r in rollback["Retry"]
    )
    assert [c["Next"] for c in rollback["Catch"]] == ["RecordFailure"]
    assert "States.ALL" in rollback["Catch"][0]["ErrorEquals"]
    # Recording the failure may fail too; the execution still ends in the Fail state.
    assert record["Next"] == "RollbackFailed"
    assert [c["Next"] for c in record["Catch"]] == ["RollbackFailed"]
    assert states["RollbackFailed"]["Type"] == "Fail"


def test_catches_keep_the_input_and_record_the_error(states: dict[str, dict[str, Any]]) -> None:
    """GIVEN every Catch WHEN it fires THEN the error goes to its own path, keeping rollout_id."""
    for name, state in _tasks(states).items():
        for catcher in state["Catch"]:
            assert catcher["ResultPath"] not in (None, "$"), name


def test_choice_defaults_to_rollback(states: dict[str, dict[str, Any]]) -> None:
    """GIVEN the Decide choice WHEN no action matches THEN its Default is Rollback; the only
    other choice, Ended (after Rollback), ends as Promoted only for a rollout Rollback found
    PROMOTED, else as RolledBack."""
    choices = {name: s for name, s in states.items() if s["Type"] == "Choice"}

    assert sorted(choices) == ["Decide", "Ended"]
    assert choices["Decide"]["Default"] == "Rollback"
    assert choices["Ended"]["Default"] == "RolledBack"
    assert choices["Ended"]["Choices"] == [
        {"Variable": "$.step.action", "StringEquals": "promote", "Next": "Promoted"}
    ]
    assert states["Rollback"]["Next"] == "Ended"


def test_choice_covers_every_decision_action(states: dict[str, dict[str, Any]]) -> None:
    """GIVEN decide's actions WHEN routed by the Choice THEN each has its own branch."""
    from orchestrator.workflow.decide import Action

    routes = {c["StringEquals"]: c["Next"] for c in states["Decide"]["Choices"]}

    assert routes == {
        Action.BAKE.value: "Wait",
        Action.APPLY.value: "ApplyStage",
        Action.PAUSE.value: "Paused",
        Action.AWAIT_APPROVAL.value: "AwaitApproval",
        Action.PROMOTE.value: "Promote",
        Action.ROLLBACK.value: "Rollback",
    }


def test_every_next_names_an_existing_state(states: dict[str, dict[str, Any]]) -> None:
    """GIVEN every Next, Default and Catch target WHEN checked THEN each names a state."""
    targets: list[str] = []
    for state in states.values():
        targets += [state[key] for key in ("Next", "Default") if key in state]
        targets += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]

    assert targets
    assert set(targets) <= set(states)


def test_non_terminal_states_lead_somewhere(states: dict[str, dict[str, Any]]) -> None:
    """GIVEN every state WHEN it is not Succeed/Fail/Choice THEN it has a Next or End."""
    for name, state in states.items():
        if state["Type"] not in ("Succeed", "Fail", "Choice"):
            assert "Next" in state or state.get("End") is True, name


def test_every_state_is_reachable_from_start() -> None:
    """GIVEN the ASL file WHEN walked from StartAt THEN no state is left unreachable."""
    document = json.loads(render(_arns()))
    states = document["States"]
    seen, todo = set(), [document["StartAt"]]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        state = states[name]
        todo += [state[key] for key in ("Next", "Default") if key in state]
        todo += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]

    assert seen == set(states)
