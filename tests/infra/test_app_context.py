"""Context validation: a bad value stops synthesis with the context key in the message."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.store.tables import TableNames
from stacks.app import build_app
from stacks.config import ROLLOUTS_TABLE_NAME, ROUTES_TABLE_NAME, ContextError, from_mapping

from .cfn import default_context

pytestmark = pytest.mark.infra


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
    ],
)
def test_context_values_are_checked(overrides: dict[str, Any], key: str | None) -> None:
    """Each malformed value is refused under its own key; `-c` strings are accepted."""
    if key is None:
        from_mapping(_context(**overrides))
    else:
        with pytest.raises(ContextError, match=key):
            from_mapping(_context(**overrides))


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
