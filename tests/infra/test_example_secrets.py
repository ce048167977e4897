"""The Datadog secrets the examples name are ones the deployed Begin and Analyze may read.

Checked with the evaluator the local stack enforces (moto's, orchestrator/local/iam.py)
against the synthesized policies, on the requests a GetSecretValue by that name makes.
"""

from __future__ import annotations

import re

import pytest
import yaml

from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.local.iam import ACCOUNT, REGION, allows, requests_of
from orchestrator.models import RolloutPlan
from stacks.policies import function_policies

from .cfn import REPO_ROOT, Synthesized

pytestmark = pytest.mark.infra

READERS = ("orchestrator.workflow.tasks.begin", "orchestrator.workflow.tasks.analyze")
# The commands the docs give for storing the keys: the names plans then use.
_STORE_COMMAND = re.compile(r"aws secretsmanager \S+ --(?:name|secret-id) (\S+)")


def _plan_secrets() -> list[tuple[str, str]]:
    """(secret name, where it is named): every example plan, and the demo's Datadog plan."""
    plans = {
        str(path.relative_to(REPO_ROOT)): RolloutPlan.model_validate(
            yaml.safe_load(path.read_text())
        )
        for path in sorted((REPO_ROOT / "examples").glob("*.yaml"))
    }
    plans["orchestrator/local/demo.py"] = demo_plan(
        demo_route("demo.edgeshift.test", 8001, 8002), provider="datadog"
    )
    return [
        (secret, where)
        for where, plan in plans.items()
        if plan.analysis.datadog is not None
        for secret in (plan.analysis.datadog.api_key_secret, plan.analysis.datadog.app_key_secret)
    ]


def _documented_secrets() -> list[tuple[str, str]]:
    return [
        (name, str(path.relative_to(REPO_ROOT)))
        for path in [*sorted((REPO_ROOT / "runbooks").glob("*.md")), REPO_ROOT / "docs/deploy.md"]
        for name in _STORE_COMMAND.findall(path.read_text())
    ]


def _get_secret_value(name: str) -> list:
    return requests_of("secretsmanager", "GetSecretValue", {"SecretId": name})


def test_examples_name_datadog_secrets() -> None:
    """The examples do name secrets (so the next test checks something): a Datadog example
    plan, the demo's Datadog plan and the commands in the deploy guide and the runbook."""
    named_in = {where for _name, where in [*_plan_secrets(), *_documented_secrets()]}
    assert {
        "examples/plan-datadog.yaml",
        "orchestrator/local/demo.py",
        "docs/deploy.md",
        "runbooks/rotate-datadog-keys.md",
    } <= named_in


def test_every_example_secret_is_readable_by_begin_and_analyze(synthesized: Synthesized) -> None:
    """GIVEN the synthesized policies WHEN Begin or Analyze reads a secret an example names
    THEN the evaluator allows it; a secret outside the configured folder is refused."""
    policies = function_policies(synthesized.orchestrator.to_json(), account=ACCOUNT, region=REGION)
    for reader in READERS:
        statements = policies[reader]
        for name, where in [*_plan_secrets(), *_documented_secrets()]:
            for request in _get_secret_value(name):
                assert allows(statements, request), f"{reader} may not read {name} ({where})"
        for outside in ("prod/database-password", "edgeshift/datadog-other/api-key"):
            (request,) = _get_secret_value(outside)
            assert not allows(statements, request), f"{reader} may read {outside}"
