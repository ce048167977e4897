"""Every demo rollout end to end on the embedded local stack: the real ASL in moto's
interpreter, in-process task Lambdas, the real edge handlers behind the CloudFront
emulator, simulated viewers and CloudWatch counts."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pytest

from orchestrator.local.demo import SCENARIOS, run_scenario
from orchestrator.local.stack import LocalStack
from orchestrator.models import RolloutStatus

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def stack():
    with LocalStack() as running:
        yield running


@pytest.fixture(scope="module")
def results(stack):
    lines: list[str] = []
    outcome = {
        name: run_scenario(stack, scenario, lines.append) for name, scenario in SCENARIOS.items()
    }
    return outcome, lines


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenario_ends_as_expected(results, name):
    """GIVEN a good or a bad canary, or a faulty edge WHEN the rollout runs THEN it ends
    PROMOTED, ROLLED_BACK or PAUSED as its scenario expects."""
    result = results[0][name]
    assert result["outcome"] == SCENARIOS[name].expected.value, results[1]


def test_segment_regression_is_rolled_back_by_its_browser(results):
    """GIVEN a canary that fails only IE 11 (about 1% of viewers) WHEN Analyze runs under
    its deployed role THEN the browser cut is judged (its values discovered with
    ListMetrics) and the reason names the segment."""
    result = results[0]["segment-regression"]
    assert result["outcome"] == "ROLLED_BACK", results[1]
    assert "browser=ie-11" in result["reason"], result["reason"]


def test_split_mismatch_is_paused_by_the_served_split_check(stack, results):
    """GIVEN an edge that serves the canary about twice its weight (the emulator's
    reassign_variant fault) WHEN the rollout runs THEN the workflow's own look finds the
    split mismatched and pauses; the audit's analysis event carries the split check, and
    the demo's abort afterwards puts stable back."""
    result = results[0]["split-mismatch"]
    assert result["outcome"] == "PAUSED", results[1]
    assert result["reason"].startswith("split_mismatch:"), result["reason"]
    events = stack.store().events(result["rollout_id"])
    looks = [e for e in events if e.kind == "analysis"]
    last = looks[-1].detail
    assert last["verdict"]["split"]["outcome"] == "mismatch"
    assert last["verdict"]["split"]["share"] > 0.15  # planned 10%
    assert last["decision"]["action"] == "pause"
    assert last["decision"]["reason"].startswith("split_mismatch:")
    kinds = [e.kind for e in events]
    assert kinds.index("paused") < kinds.index("rolled_back")
    route = stack.store().get_route(SCENARIOS["split-mismatch"].host)
    assert route.weights() == {"canary": 0, "stable": 10_000}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_execution_history_shows_the_real_states(results, name):
    """The Step Functions history read back from moto holds the states of the ASL file (a
    paused rollout is rolled back by the demo's abort)."""
    states = results[0][name]["states"]
    final = "Promote" if SCENARIOS[name].expected is RolloutStatus.PROMOTED else "Rollback"
    for state in ("Begin", "ApplyStage", "Wait", "Analyze", "Decide", final):
        assert state in states, states
    assert states[-1] in ("Promoted", "RolledBack")


def test_good_canary_reaches_every_stage_and_becomes_stable(stack, results):
    """A promoted release is the route's new stable at 100%, and the target is free again."""
    result = results[0]["good-canary"]
    scenario = SCENARIOS["good-canary"]
    assert result["stages_completed"] == 3
    route = stack.store().get_route(scenario.host)
    assert route.weights() == {"canary": 0, "stable": 10_000}
    assert route.variant("stable").version == "v2"
    assert stack.store().lock_holder(scenario.host, "default") is None


def test_bad_canary_is_rolled_back_before_widening(stack, results):
    """A canary with 8% errors never gets past its first stage, and stable keeps everyone."""
    result = results[0]["bad-canary"]
    scenario = SCENARIOS["bad-canary"]
    assert result["stages_completed"] == 0
    route = stack.store().get_route(scenario.host)
    assert route.weights() == {"canary": 0, "stable": 10_000}
    assert route.variant("stable").version == "v1"
    events = stack.store().events(result["rollout_id"])
    applied = [e for e in events if e.kind == "stage_applied"]
    assert [e.detail["stage"] for e in applied] == [0]
    assert events[-1].kind == "rolled_back" and "failed analysis" in events[-1].reason


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_audit_trail_agrees_with_the_route(stack, results, name):
    """Every route revision the rollout wrote has its audit event, in order, with no gaps."""
    result = results[0][name]
    events = stack.store().events(result["rollout_id"])
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[0].kind == "created" and events[1].kind == "started"
    route = stack.store().get_route(SCENARIOS[name].host)
    writes = [e for e in events if e.kind in ("stage_applied", "promoted", "rolled_back")]
    assert route.revision == 1 + len(writes)  # revision 1 was the route's creation
    assert route.weights() == writes[-1].detail["weights"]


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_viewers_saw_both_variants_and_no_edge_failures(results, name):
    """Traffic really went through the edge: both variants served, no function error."""
    result = results[0][name]
    assert result["edge_function_errors"] == 0
    assert result["requests"].get("canary", 0) > 100
    assert result["requests"].get("stable", 0) > 1000
    rate = result["errors"].get("canary", 0) / result["requests"]["canary"]
    assert rate > 0.04 if name == "bad-canary" else rate < 0.03


def test_cli_demo_json_contract():
    """`rollout demo --scenario bad-canary --json` ends stdout with one JSON object, exit 0."""
    run = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "demo", "--scenario", "bad-canary", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["scenario"] == "bad-canary" and result["outcome"] == "ROLLED_BACK"
    for key in ("rollout_id", "stages_completed", "requests", "errors", "seconds"):
        assert key in result
    assert "stage 1/3" in run.stderr  # progress goes to stderr, one line per decision


def test_port_in_use_names_the_port_and_the_flag():
    """A busy port for the local AWS endpoint is refused with the port and --aws-port."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "demo", "--aws-port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert run.returncode == 2
    assert str(port) in run.stderr and "--aws-port" in run.stderr
