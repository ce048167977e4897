"""The five Lambda functions the rollout state machine calls, one per Task state."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

# The placeholder -> handler table is the orchestrator's own, shared with the local stack, so
# the deployed functions and the local dispatcher cannot drift apart. It is stdlib-only.
from orchestrator.workflow.definition import TASKS
from stacks.functions import FunctionSettings, orchestrator_function

# Analyze queries metric backends over the network; the others do a few DynamoDB calls.
_TIMEOUTS = {"Analyze": Duration.seconds(60)}
# Analyze also computes the stage's sequential boundaries once per container (about 3 s of
# one vCPU for a 3-hour bake of 1-minute looks and its extension); Lambda's CPU share
# grows with memory, and 1,024 MB keeps that well inside the timeout.
_MEMORY = {"Analyze": 1024}


def _state(placeholder: str) -> str:
    return placeholder.removesuffix("FunctionArn")


class RolloutTasks(Construct):
    """One function per task, sharing one code asset; permissions are granted by the stack."""

    def __init__(self, scope: Construct, construct_id: str, *, settings: FunctionSettings) -> None:
        super().__init__(scope, construct_id)
        # Keyed by placeholder (`BeginFunctionArn`), i.e. exactly what the ASL asks for.
        self.functions: dict[str, lambda_.Function] = {}
        for placeholder, (_suffix, handler) in TASKS.items():
            state = _state(placeholder)
            self.functions[placeholder] = orchestrator_function(
                self,
                state,
                handler=handler,
                settings=settings,
                timeout=_TIMEOUTS.get(state, Duration.seconds(30)),
                memory_size=_MEMORY.get(state, 256),
            )

    @property
    def begin(self) -> lambda_.Function:
        return self.functions["BeginFunctionArn"]

    @property
    def apply_stage(self) -> lambda_.Function:
        return self.functions["ApplyStageFunctionArn"]

    @property
    def analyze(self) -> lambda_.Function:
        return self.functions["AnalyzeFunctionArn"]

    @property
    def promote(self) -> lambda_.Function:
        return self.functions["PromoteFunctionArn"]

    @property
    def rollback(self) -> lambda_.Function:
        return self.functions["RollbackFunctionArn"]

    def definition_substitutions(self) -> dict[str, str]:
        """Each ASL placeholder -> the ARN of the function that serves it."""
        return {placeholder: fn.function_arn for placeholder, fn in self.functions.items()}
