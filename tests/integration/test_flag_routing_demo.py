"""The flag-routing demo on the embedded local stack: flag data synced into moto's routes
table, read by the real edge handlers behind the CloudFront emulator through the edge's
own DynamoDB client, every viewer served as the SDK evaluates them."""

from __future__ import annotations

import json

import pytest

from edge import flags
from orchestrator.flags import FlagStore
from orchestrator.local.demo import DEMO_SCENARIOS, SCENARIOS, run_scenario
from orchestrator.local.flag_demo import AGREED, FlagScenario
from orchestrator.local.stack import LocalStack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack():
    with LocalStack() as running:
        yield running


def test_every_viewer_is_served_as_the_sdk_evaluates(stack: LocalStack) -> None:
    """GIVEN examples/flags.json (30% of users on true) WHEN 2,000 viewers pass the CDN
    emulator THEN each got the variant the SDK's own evaluation maps to, about 30% canary,
    and no edge function failed."""
    result = run_scenario(stack, DEMO_SCENARIOS["flag-routing"], lambda _: None)

    assert result["outcome"] == AGREED, result
    assert result["sdk_agreed"] == result["viewers"] == 2000
    assert 0.26 < result["served_share"]["canary"] < 0.34
    assert result["edge_function_errors"] == 0


def test_without_flag_data_every_viewer_gets_the_fallback(
    stack: LocalStack, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GIVEN flag data without new-checkout while the route still names it (stored as if by
    a sync that never saw the rule: a sync that does see it refuses) WHEN the viewers pass
    THEN every one is served the fallback (stable), so the SDK comparison fails."""
    monkeypatch.setattr(FlagStore, "flag_routed_rules", lambda self: [])
    document = json.loads(FlagScenario().flag_file.read_text())
    del document["flags"]["new-checkout"]
    other = tmp_path / "flags.json"
    other.write_text(json.dumps(document))
    flags.reset_default_cache()

    result = run_scenario(stack, FlagScenario(flag_file=other, users=300), lambda _: None)

    assert result["served_share"] == {"stable": 1.0}
    assert result["edge_function_errors"] == 0


def test_the_rollout_scenarios_are_unchanged() -> None:
    """GIVEN the demo's scenarios WHEN listed THEN the four rollouts, then flag-routing."""
    assert list(DEMO_SCENARIOS) == [*SCENARIOS, "flag-routing"]
    assert list(SCENARIOS) == ["good-canary", "bad-canary", "segment-regression", "split-mismatch"]
