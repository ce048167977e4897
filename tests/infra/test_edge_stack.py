"""The edge stack: Lambda@Edge limits, its role, and the bundle CloudFront replicates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks.config import ROUTES_TABLE_NAME

from .cfn import Synthesized, as_list, default_context, resources, statements_of

pytestmark = pytest.mark.infra

HANDLERS = {"edge.viewer_request.handler", "edge.origin_request.handler"}


def _edge_functions(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    functions = resources(synthesized.edge, "AWS::Lambda::Function")
    return {f["Properties"]["Handler"]: {"id": i, **f["Properties"]} for i, f in functions.items()}


def _role(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    (role_id,) = {f["Role"]["Fn::GetAtt"][0] for f in _edge_functions(synthesized).values()}
    return role_id, resources(synthesized.edge, "AWS::IAM::Role")[role_id]["Properties"]


def test_edge_functions_respect_lambda_at_edge_limits(synthesized: Synthesized) -> None:
    """Both triggers run python3.12 with 128 MB, 5 s and no environment variables."""
    functions = _edge_functions(synthesized)
    assert set(functions) == HANDLERS
    for fn in functions.values():
        assert "Environment" not in fn
        assert fn["MemorySize"] == 128
        assert fn["Timeout"] == 5
        assert fn["Runtime"] == "python3.12"
        assert fn.get("Architectures", ["x86_64"]) == ["x86_64"]


def test_each_edge_function_publishes_a_version(synthesized: Synthesized) -> None:
    """CloudFront can only associate a numbered version, so each function has one."""
    versions = resources(synthesized.edge, "AWS::Lambda::Version").values()
    versioned = {v["Properties"]["FunctionName"]["Ref"] for v in versions}
    assert versioned == {f["id"] for f in _edge_functions(synthesized).values()}


def test_edge_stack_is_in_us_east_1(synthesized: Synthesized) -> None:
    """Lambda@Edge functions can only be created in us-east-1."""
    manifest = json.loads((synthesized.outdir / "manifest.json").read_text())
    assert manifest["artifacts"]["EdgeshiftEdge"]["environment"].endswith("/us-east-1")


def test_edge_role_trusts_lambda_and_edgelambda(synthesized: Synthesized) -> None:
    """CloudFront's replicas assume the role as edgelambda.amazonaws.com."""
    _, role = _role(synthesized)
    principals: set[str] = set()
    for statement in role["AssumeRolePolicyDocument"]["Statement"]:
        principals.update(as_list(statement["Principal"]["Service"]))
    assert principals == {"lambda.amazonaws.com", "edgelambda.amazonaws.com"}


def test_edge_role_only_reads_the_routes_table_in_each_region(synthesized: Synthesized) -> None:
    """GetItem and Query on the routes table in the primary and every replica region, no more."""
    role_id, _ = _role(synthesized)
    (statement,) = statements_of(synthesized.edge, role_id)
    assert statement["Effect"] == "Allow"
    assert sorted(as_list(statement["Action"])) == ["dynamodb:GetItem", "dynamodb:Query"]
    regions = [
        default_context()["edgeshift:primaryRegion"],
        *default_context()["edgeshift:replicaRegions"],
    ]
    arns = [json.dumps(r) for r in as_list(statement["Resource"])]
    assert all(arn.endswith(f':table/{ROUTES_TABLE_NAME}"]]}}') for arn in arns)
    assert sorted(arn.split(":dynamodb:")[1].split(":")[0] for arn in arns) == sorted(regions)


def test_edge_bundle_carries_the_deployed_config_and_nothing_else(
    synthesized: Synthesized,
) -> None:
    """The zip holds the stdlib `edge` package, config naming table and regions, under 1 MB."""
    fn = next(iter(_edge_functions(synthesized).values()))
    asset = synthesized.asset(fn["Code"]["S3Key"].removesuffix(".zip"))
    assert {p.name for p in asset.iterdir()} == {"edge"}
    config = json.loads((asset / "edge" / "config.json").read_text())
    assert config["table"] == ROUTES_TABLE_NAME
    assert config["regions"] == [
        default_context()["edgeshift:primaryRegion"],
        *default_context()["edgeshift:replicaRegions"],
    ]
    assert config["endpoint_url"] is None
    assert sum(p.stat().st_size for p in asset.rglob("*") if p.is_file()) < 1_000_000
