"""cdk-nag's AwsSolutions rules and cfn-lint, over every synthesized template."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .cfn import Synthesized

pytestmark = pytest.mark.infra

CFN_LINT = Path(sys.executable).with_name("cfn-lint")
# W3005 flags the DependsOn CDK adds from each function to its role's policy; CloudFormation
# needs it (the GetAtt on the role alone does not wait for the policy), so it is not noise
# we can remove, only acknowledge.
CFN_LINT_IGNORED = ("W3005",)


def test_no_unsuppressed_cdk_nag_error(synthesized: Synthesized) -> None:
    """Every AwsSolutions error is fixed or suppressed with a reason."""
    assert list(synthesized.nag_errors) == []


def test_every_nag_suppression_gives_a_reason(synthesized: Synthesized) -> None:
    """Suppressions in the templates all carry a sentence, not a placeholder."""
    suppressions = []
    for template in (synthesized.orchestrator.to_json(), synthesized.edge.to_json()):
        for holder in (template, *template["Resources"].values()):
            nag = holder.get("Metadata", {}).get("cdk_nag", {})
            suppressions.extend(nag.get("rules_to_suppress", []))
    assert suppressions
    for suppression in suppressions:
        assert suppression["id"].startswith("AwsSolutions-")
        assert len(suppression["reason"].split()) >= 8, suppression


def test_cfn_lint_passes_every_template(synthesized: Synthesized) -> None:
    """cfn-lint finds no error and no warning (but the acknowledged W3005) in any template."""
    templates = sorted(str(p) for p in synthesized.outdir.glob("*.template.json"))
    assert len(templates) == 2
    result = subprocess.run(
        [str(CFN_LINT), "--format", "json", "--ignore-checks", *CFN_LINT_IGNORED, "--", *templates],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], json.dumps(findings, indent=1)[:4000]
    assert result.returncode == 0, result.stderr
