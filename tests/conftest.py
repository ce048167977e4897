"""Every test session runs the local stack's functions under their deployed IAM policies,
timeouts and memory sizes.

The policies are read from the synthesized CDK template the first time a local stack starts
(tests that never start one never synthesize); a call a function's role does not allow is
answered with AccessDeniedException, as in AWS, and recorded (see orchestrator/local/iam.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from orchestrator.local import limits
from orchestrator.local.iam import ACCOUNT, REGION, DeployedIam, Statements


def deployed_policies() -> Mapping[str, Statements]:
    from infra.cfn import synthesize  # tests/ is on sys.path: the same module infra uses

    from stacks.policies import function_policies

    template = synthesize().orchestrator.to_json()
    return function_policies(template, account=ACCOUNT, region=REGION)


@pytest.fixture(scope="session", autouse=True)
def deployed_iam() -> Iterator[DeployedIam]:
    enforcer = DeployedIam(deployed_policies)
    enforcer.install()
    yield enforcer
    enforcer.uninstall()


def deployed_limits() -> Mapping[str, limits.FunctionLimits]:
    from infra.cfn import synthesize

    return limits.limits_from_template(synthesize().orchestrator.to_json())


@pytest.fixture(scope="session", autouse=True)
def deployed_function_limits() -> Iterator[None]:
    """Local stacks register each function with the synthesized Timeout and MemorySize."""
    with limits.synthesized(deployed_limits):
        yield
