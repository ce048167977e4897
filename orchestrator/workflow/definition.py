"""The one ASL definition, shared by the CDK app and the local stack."""

from __future__ import annotations

import re
from pathlib import Path

DEFINITION_PATH = Path(__file__).with_name("rollout.asl.json")
STATE_MACHINE_NAME = "edgeshift-rollout"

# Placeholder -> (Lambda function name suffix, handler). CDK substitutes real ARNs.
TASKS: dict[str, tuple[str, str]] = {
    "BeginFunctionArn": ("begin", "orchestrator.workflow.tasks.begin"),
    "ApplyStageFunctionArn": ("apply-stage", "orchestrator.workflow.tasks.apply_stage"),
    "AnalyzeFunctionArn": ("analyze", "orchestrator.workflow.tasks.analyze"),
    "PromoteFunctionArn": ("promote", "orchestrator.workflow.tasks.promote"),
    "RollbackFunctionArn": ("rollback", "orchestrator.workflow.tasks.rollback"),
    "HoldFunctionArn": ("hold", "orchestrator.workflow.tasks.hold"),
    "RecheckFunctionArn": ("recheck", "orchestrator.workflow.tasks.recheck"),
    "RecordFailureFunctionArn": ("record-failure", "orchestrator.workflow.tasks.record_failure"),
}
_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")


def placeholders(text: str | None = None) -> set[str]:
    return set(_PLACEHOLDER.findall(text if text is not None else DEFINITION_PATH.read_text()))


def render(substitutions: dict[str, str]) -> str:
    """Fill every placeholder, refusing to leave one behind or to invent one."""
    text = DEFINITION_PATH.read_text()
    missing = placeholders(text) - substitutions.keys()
    unknown = substitutions.keys() - placeholders(text)
    if missing or unknown:
        raise ValueError(f"placeholders missing: {sorted(missing)}, unknown: {sorted(unknown)}")
    return _PLACEHOLDER.sub(lambda match: substitutions[match.group(1)], text)
