"""Alarms page the on-call topic for failed executions, rollbacks and failed rollbacks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from orchestrator.workflow.definition import DEFINITION_PATH
from stacks.alarms import METRIC_NAMESPACE, ROLLBACK_FAILED_STATE, ROLLBACK_STATE

from .cfn import Synthesized, resources

pytestmark = pytest.mark.infra


def _alarms(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    alarms = resources(synthesized.orchestrator, "AWS::CloudWatch::Alarm").values()
    return {a["Properties"]["MetricName"]: a["Properties"] for a in alarms}


def test_four_alarms_notify_the_encrypted_topic(synthesized: Synthesized) -> None:
    """Execution failed, rollback happened, rollback failed, split mismatch: each fires on
    one occurrence."""
    alarms = _alarms(synthesized)
    assert set(alarms) == {
        "ExecutionsFailed",
        "RollbackEntered",
        "RollbackFailedEntered",
        "SplitMismatch",
    }
    (topic_id,) = resources(synthesized.orchestrator, "AWS::SNS::Topic")
    for alarm in alarms.values():
        assert alarm["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
    (topic,) = resources(synthesized.orchestrator, "AWS::SNS::Topic").values()
    assert topic["Properties"]["KmsMasterKeyId"]


def test_execution_failed_alarm_watches_the_rollout_state_machine(
    synthesized: Synthesized,
) -> None:
    """ExecutionsFailed is read for the rollout state machine, not the whole account."""
    alarm = _alarms(synthesized)["ExecutionsFailed"]
    assert alarm["Namespace"] == "AWS/States"
    (machine_id,) = resources(synthesized.orchestrator, "AWS::StepFunctions::StateMachine")
    assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": machine_id}}]


def test_rollback_alarms_count_states_that_exist_in_the_definition(
    synthesized: Synthesized,
) -> None:
    """The log filters name states of the ASL file and read the state machine's own log."""
    states = json.loads(DEFINITION_PATH.read_text())["States"]
    assert states[ROLLBACK_STATE]["Type"] == "Task"
    assert states[ROLLBACK_FAILED_STATE]["Type"] == "Fail"
    machine = next(
        iter(resources(synthesized.orchestrator, "AWS::StepFunctions::StateMachine").values())
    )
    log_group = machine["Properties"]["LoggingConfiguration"]["Destinations"][0]
    log_group_id = log_group["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"][0]
    filters = {
        f["Properties"]["MetricTransformations"][0]["MetricName"]: f["Properties"]
        for f in resources(synthesized.orchestrator, "AWS::Logs::MetricFilter").values()
    }
    expected = {
        "RollbackEntered": ("TaskStateEntered", ROLLBACK_STATE),
        "RollbackFailedEntered": ("FailStateEntered", ROLLBACK_FAILED_STATE),
    }
    for metric, (event, state) in expected.items():
        props = filters[metric]
        assert props["LogGroupName"] == {"Ref": log_group_id}
        assert f'$.type = "{event}"' in props["FilterPattern"]
        assert f'$.details.name = "{state}"' in props["FilterPattern"]
        assert props["MetricTransformations"][0]["MetricNamespace"] == METRIC_NAMESPACE
        assert _alarms(synthesized)[metric]["Namespace"] == METRIC_NAMESPACE


def test_split_mismatch_alarm_reads_the_analyze_tasks_metric(synthesized: Synthesized) -> None:
    """The alarm reads the metric the Analyze task emits (powertools: namespace EdgeShift,
    dimension service=edgeshift-workflow), not a name nobody publishes."""
    from orchestrator.workflow import tasks

    alarm = _alarms(synthesized)["SplitMismatch"]
    assert alarm["Namespace"] == "EdgeShift" == tasks.metrics.namespace
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "edgeshift-workflow"}]
    assert tasks.metrics.service == "edgeshift-workflow"
    assert alarm["Statistic"] == "Sum" and alarm["Period"] == 60
