"""Context validation: a bad value stops synthesis with the context key in the message."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk import App, Environment
from aws_cdk.assertions import Template

from orchestrator.store.tables import TableNames
from stacks.app import build_app
from stacks.config import (
    EDGE_REGION,
    ROLLOUTS_TABLE_NAME,
    ROUTES_TABLE_NAME,
    ContextError,
    from_mapping,
)
from stacks.edge_stack import EdgeStack

from .cfn import default_context

pytestmark = pytest.mark.infra

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
CERT_EU = CERT.replace("us-east-1", "eu-west-1")


def _context(**overrides: Any) -> dict[str, Any]:
    context = default_context()
    for key, value in overrides.items():
        name = f"edgeshift:{key}"
        if value is None:
            context.pop(name, None)
        else:
            context[name] = value
    return context


def test_missing_hosts_names_the_key() -> None:
    """Building the app without hosts fails and says which context key is missing."""
    with pytest.raises(ContextError, match="edgeshift:hosts"):
        build_app(_context(hosts=None))


def test_martian_replica_region_names_the_key() -> None:
    """A replica region that is not an AWS region fails and names edgeshift:replicaRegions."""
    with pytest.raises(ContextError, match=r"edgeshift:replicaRegions.*mars-1"):
        build_app(_context(replicaRegions=["us-west-2", "mars-1"]))


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"hosts": []}, "edgeshift:hosts"),
        ({"hosts": ["Demo.Example.com"]}, "edgeshift:hosts"),
        ({"hosts": "demo.example.com"}, None),
        ({"replicaRegions": ["us-east-1"]}, "edgeshift:replicaRegions"),
        ({"replicaRegions": ["eu-west-1", "eu-west-1"]}, "edgeshift:replicaRegions"),
        ({"replicaRegions": '["us-west-2"]'}, None),
        ({"replicaRegions": "us-west-2,us-gov-west-1"}, None),
        ({"primaryRegion": "earth"}, "edgeshift:primaryRegion"),
        ({"datadogSecretName": ""}, "edgeshift:datadogSecretName"),
        ({"datadogSecretName": None}, "edgeshift:datadogSecretName"),
        ({"datadogSecretName": "edgeshift/data dog"}, "edgeshift:datadogSecretName"),
        ({"datadogSite": "datadoghq.org"}, "edgeshift:datadogSite"),
        ({"distribution": None}, "edgeshift:distribution"),
        ({"distribution": {}}, "edgeshift:distribution"),
        (
            {"distribution": {"id": "E2ABCDEF12", "demoOriginDomain": "o.example.com"}},
            "edgeshift:distribution",
        ),
        ({"distribution": {"id": "not-an-id"}}, "edgeshift:distribution"),
        ({"distribution": {"demoOriginDomain": "https://o.example.com"}}, "edgeshift:distribution"),
        (
            {"distribution": {"demoOriginDomain": "o.example.com", "certificateArn": CERT_EU}},
            "edgeshift:distribution",
        ),
        ({"distribution": {"demoOriginDomain": "o.example.com", "certificateArn": CERT}}, None),
        ({"distribution": '{"id": "E2ABCDEF12"}'}, None),
        ({"routedPaths": []}, "edgeshift:routedPaths"),
        ({"routedPaths": ["app/*"]}, "edgeshift:routedPaths"),
        ({"routedPaths": None}, "edgeshift:routedPaths"),
        ({"powertoolsLayerVersion": "3.x"}, "edgeshift:powertoolsLayerVersion"),
        ({"powertoolsLayerVersion": "3.4.0"}, None),
        ({"metricProviders": []}, "edgeshift:metricProviders"),
        ({"metricProviders": ["cloudwatch", "newrelic"]}, "edgeshift:metricProviders"),
        ({"metricProviders": "cloudwatch,datadog"}, None),
        ({"metricProviders": ["cloudwatch"], "datadogSecretName": None}, None),
        ({"datadogSecretName": "edgeshift/datadog/"}, "edgeshift:datadogSecretName"),
        ({"invalidationDistributionIds": ["E2QWRUHAPOMQZL"]}, None),
        ({"invalidationDistributionIds": "E2QWRUHAPOMQZL,E1ABCDEF23456"}, None),
        ({"invalidationDistributionIds": []}, None),
        (
            {"invalidationDistributionIds": ["d111111abcdef8"]},
            "edgeshift:invalidationDistributionIds",
        ),
        (
            {"invalidationDistributionIds": ["E2QWRUHAPOMQZL", "E2QWRUHAPOMQZL"]},
            "edgeshift:invalidationDistributionIds",
        ),
    ],
)
def test_context_values_are_checked(overrides: dict[str, Any], key: str | None) -> None:
    """Each malformed value is refused under its own key; `-c` strings are accepted."""
    if key is None:
        from_mapping(_context(**overrides))
    else:
        with pytest.raises(ContextError, match=key):
            from_mapping(_context(**overrides))


@pytest.mark.parametrize("secret", [None, ""])
def test_datadog_without_its_secret_folder_stops_synthesis(secret: str | None) -> None:
    """GIVEN Datadog among the providers and no secret name WHEN the app is built THEN it
    stops, naming the key: Begin and Analyze would be deployed unable to read the keys."""
    context = _context(metricProviders=["cloudwatch", "datadog"], datadogSecretName=secret)
    with pytest.raises(ContextError, match=r"'edgeshift:datadogSecretName': missing: the datadog"):
        build_app(context)


def test_providers_default_to_both_and_the_folder_is_kept() -> None:
    """Without edgeshift:metricProviders both providers are granted, as before the key."""
    config = from_mapping(_context(metricProviders=None))
    assert config.metric_providers == ("cloudwatch", "datadog")
    assert config.datadog_secret_name == "edgeshift/datadog"
    assert config.invalidation_distribution_ids == ()


def test_cdk_json_context_is_valid() -> None:
    """The defaults shipped in cdk.json pass validation."""
    config = from_mapping(default_context())
    assert config.hosts and config.table_regions[0] == config.primary_region


def test_table_names_match_the_store_defaults() -> None:
    """The stack names its tables as the orchestrator's TableNames defaults do."""
    assert (TableNames().routes, TableNames().rollouts) == (ROUTES_TABLE_NAME, ROLLOUTS_TABLE_NAME)


def test_synth_stays_within_budget(synthesized: Any) -> None:
    """Synthesizing both stacks takes well under a minute on these machines."""
    assert synthesized.seconds < 60


def test_existing_distribution_gets_outputs_instead_of_a_new_distribution() -> None:
    """With an existing distribution id the edge stack creates none and exports what to attach."""
    app = App()
    config = from_mapping(_context(distribution={"id": "E2ABCDEF12"}))
    stack = EdgeStack(app, "Edge", config=config, env=Environment(region=EDGE_REGION))
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::CloudFront::Distribution", 0)
    template.resource_count_is("AWS::CloudFront::CachePolicy", 1)
    outputs = template.find_outputs("*")
    assert outputs["DistributionId"]["Value"] == "E2ABCDEF12"
    assert {"CachePolicyId", "ViewerRequestVersionArn", "OriginRequestVersionArn"} <= outputs.keys()
