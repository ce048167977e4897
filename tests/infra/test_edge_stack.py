"""The edge stack: Lambda@Edge limits, its role, and the bundle CloudFront replicates."""

from __future__ import annotations

import json
from typing import Any

import pytest

from stacks import bundle
from stacks.config import ROUTES_TABLE_NAME

from .cfn import (
    Synthesized,
    as_list,
    default_context,
    functions_by_handler,
    resources,
    statements_of,
)

pytestmark = pytest.mark.infra

# Named here, not read from bundle.triggers(): the stack loops over that, so comparing the
# two would prove nothing. Every trigger the product needs, with its CloudFront event type.
HANDLERS = {
    "edge.viewer_request.handler",
    "edge.origin_request.handler",
    "edge.viewer_response.handler",
}
EVENT_TYPES = {"viewer-request", "origin-request", "viewer-response"}
TRIGGERS = {"ViewerRequest", "OriginRequest", "ViewerResponse"}


def _edge_functions(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return functions_by_handler(synthesized.edge)


def _role(synthesized: Synthesized) -> tuple[str, dict[str, Any]]:
    (role_id,) = {f["Role"]["Fn::GetAtt"][0] for f in _edge_functions(synthesized).values()}
    return role_id, resources(synthesized.edge, "AWS::IAM::Role")[role_id]["Properties"]


def test_edge_functions_respect_lambda_at_edge_limits(synthesized: Synthesized) -> None:
    """Every trigger runs python3.12 with 128 MB, 5 s, no environment variables, no layers."""
    functions = _edge_functions(synthesized)
    assert set(functions) == HANDLERS
    for fn in functions.values():
        assert "Environment" not in fn
        assert "Layers" not in fn
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
    """GetItem and Query on the routes table in the primary and every replica region, no more
    (the other statement is the functions' own logs, below)."""
    role_id, _ = _role(synthesized)
    (statement,) = [
        s for s in statements_of(synthesized.edge, role_id) if not _is_logs(s["Action"])
    ]
    assert statement["Effect"] == "Allow"
    assert sorted(as_list(statement["Action"])) == ["dynamodb:GetItem", "dynamodb:Query"]
    regions = [
        default_context()["edgeshift:primaryRegion"],
        *default_context()["edgeshift:replicaRegions"],
    ]
    arns = [json.dumps(r) for r in as_list(statement["Resource"])]
    assert all(arn.endswith(f':table/{ROUTES_TABLE_NAME}"]]}}') for arn in arns)
    assert sorted(arn.split(":dynamodb:")[1].split(":")[0] for arn in arns) == sorted(regions)


def _is_logs(actions: Any) -> bool:
    return all(a.startswith("logs:") for a in as_list(actions))


def test_edge_role_writes_only_the_functions_own_log_groups(synthesized: Synthesized) -> None:
    """No managed policy (AWSLambdaBasicExecutionRole allows every log group): the role may
    create and write /aws/lambda/us-east-1.<function> in any region, for its three functions."""
    role_id, role = _role(synthesized)
    assert "ManagedPolicyArns" not in role
    (statement,) = [s for s in statements_of(synthesized.edge, role_id) if _is_logs(s["Action"])]
    assert sorted(as_list(statement["Action"])) == [
        "logs:CreateLogGroup",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    ]
    named: dict[str, set[str]] = {}
    for resource in as_list(statement["Resource"]):
        parts = resource["Fn::Join"][1]
        assert parts[0] == "arn:aws:logs:*:"
        assert parts[2] == ":log-group:/aws/lambda/us-east-1."
        named.setdefault(parts[3]["Ref"], set()).add("".join(parts[4:]))
    function_ids = {f["id"] for f in _edge_functions(synthesized).values()}
    assert named == {fn: {"", ":*"} for fn in function_ids}


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
    assert config["variant_header"] == "x-edgeshift-variant"
    assert config["rule_header"] == "x-edgeshift-rule"
    assert config["deadline_seconds"] <= 0.5
    # The default context's demo distribution has no certificate, so it answers on its
    # *.cloudfront.net name, unknown at synth: every host is read, behind the bounded cache.
    assert config["hosts"] is None
    assert sum(p.stat().st_size for p in asset.rglob("*") if p.is_file()) < 1_000_000
    assert not list(asset.rglob("__pycache__"))


def _distribution(synthesized: Synthesized) -> dict[str, Any]:
    (distribution,) = resources(synthesized.edge, "AWS::CloudFront::Distribution").values()
    config: dict[str, Any] = distribution["Properties"]["DistributionConfig"]
    return config


def test_cache_policy_keys_on_the_variant_header_and_host(synthesized: Synthesized) -> None:
    """Each variant gets its own cache entries; Host is forwarded for origin-request's lookup."""
    (policy,) = resources(synthesized.edge, "AWS::CloudFront::CachePolicy").values()
    key = policy["Properties"]["CachePolicyConfig"]["ParametersInCacheKeyAndForwardedToOrigin"]
    assert key["HeadersConfig"]["HeaderBehavior"] == "whitelist"
    assert sorted(key["HeadersConfig"]["Headers"]) == sorted([bundle.variant_header(), "host"])
    assert key["CookiesConfig"] == {"CookieBehavior": "none"}


def test_only_routed_behaviours_run_the_edge_functions(synthesized: Synthesized) -> None:
    """The configured paths run every trigger's version; the default behaviour runs none."""
    config = _distribution(synthesized)
    (policy_id,) = resources(synthesized.edge, "AWS::CloudFront::CachePolicy")
    versions = {
        v["Properties"]["FunctionName"]["Ref"]: i
        for i, v in resources(synthesized.edge, "AWS::Lambda::Version").items()
    }
    routed = {b["PathPattern"]: b for b in config["CacheBehaviors"]}
    assert set(routed) == set(default_context()["edgeshift:routedPaths"])
    for behavior in routed.values():
        assert behavior["CachePolicyId"] == {"Ref": policy_id}
        associations = {
            a["EventType"]: a["LambdaFunctionARN"]["Ref"]
            for a in behavior["LambdaFunctionAssociations"]
        }
        assert set(associations.values()) == set(versions.values())
        assert set(associations) == EVENT_TYPES
        assert "IncludeBody" not in json.dumps(behavior)
    default = config["DefaultCacheBehavior"]
    assert "LambdaFunctionAssociations" not in default
    assert default["CachePolicyId"] != {"Ref": policy_id}


def test_demo_distribution_serves_https_from_the_context_origin(synthesized: Synthesized) -> None:
    """The demo origin comes from context and is reached over TLS 1.2 only."""
    config = _distribution(synthesized)
    (origin,) = config["Origins"]
    expected = default_context()["edgeshift:distribution"]["demoOriginDomain"]
    assert origin["DomainName"] == expected
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert origin["CustomOriginConfig"]["OriginSSLProtocols"] == ["TLSv1.2"]
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"


def test_edge_outputs_name_what_an_existing_distribution_needs(synthesized: Synthesized) -> None:
    """Cache policy id and one version ARN per trigger are stack outputs."""
    outputs = synthesized.edge.find_outputs("*")
    assert "CachePolicyId" in outputs
    assert {f"{t}VersionArn" for t in TRIGGERS} <= outputs.keys()


def test_origin_request_policy_forwards_the_chosen_rule(synthesized: Synthesized) -> None:
    """origin-request switches the origin by the rule viewer-request named, so the routed
    behaviours forward that header (and the viewer's host) without keying the cache on it;
    the segment header and CloudFront-Viewer-Country (origin-request adds the country to the
    segment, and CloudFront adds that header only when a policy names it) likewise."""
    ((policy_id, policy),) = resources(
        synthesized.edge, "AWS::CloudFront::OriginRequestPolicy"
    ).items()
    headers = policy["Properties"]["OriginRequestPolicyConfig"]["HeadersConfig"]
    assert headers["HeaderBehavior"] == "whitelist"
    assert sorted(headers["Headers"]) == [
        "cloudfront-viewer-country",
        "x-edgeshift-host",
        "x-edgeshift-rule",
        "x-edgeshift-segment",
    ]
    for behavior in _distribution(synthesized)["CacheBehaviors"]:
        assert behavior["OriginRequestPolicyId"] == {"Ref": policy_id}


@pytest.mark.parametrize(
    "distribution",
    [
        {"id": "E2QWRUHAPOMQZL"},
        {
            "demoOriginDomain": "origin.example.com",
            "certificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/"
            "12345678-1234-1234-1234-123456789012",
        },
    ],
)
def test_bundled_config_names_the_hosts_when_they_are_known(distribution: dict[str, Any]) -> None:
    """GIVEN a distribution whose viewers use the edgeshift:hosts names (an existing one, or
    the demo with a certificate) WHEN the edge config is written THEN it lists exactly them,
    so no other Host costs a table read."""
    from stacks.config import from_mapping

    context = {
        **default_context(),
        "edgeshift:hosts": ["www.example.com", "demo.example.com"],
        "edgeshift:distribution": distribution,
    }
    app = from_mapping(context)

    config = bundle.edge_config(table="t", regions=["us-east-1"], hosts=app.edge_hosts)

    assert config["hosts"] == ["demo.example.com", "www.example.com"]
