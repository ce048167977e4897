"""The dashboard in a real Chromium: watch a local rollout advance, pause it from the page
with a reason, and read PAUSED and the reason back in the audit trail.

The rollout is the real state machine in moto's interpreter on the local stack, judged
from synthetic CloudWatch counts (a canary as healthy as stable). Set
EDGESHIFT_DASHBOARD_SCREENSHOT=docs/dashboard.png to keep a screenshot of the page in the
middle of the rollout.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from orchestrator.dashboard import DashboardServer
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.local.feeder import MetricsFeeder, constant
from orchestrator.local.stack import LocalStack
from orchestrator.models import RolloutPlan, RolloutStatus
from orchestrator.service import RolloutService

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]

HOST = "dashboard.browser.edgeshift.test"
STEP_MS = 30_000  # the longest any one step may take before the test fails
REASON = "checkout latency alert on call"


def _plan() -> RolloutPlan:
    document = demo_plan(demo_route(HOST, 8001, 8002)).model_dump(mode="json")
    document["stages"] = [
        {"weight": 10, "bake": 8, "interval": 2},
        {"weight": 50, "bake": 60, "interval": 2},
        {"weight": 100, "bake": 5, "interval": 2},
    ]
    return RolloutPlan.model_validate(document)


@pytest.fixture(scope="module")
def rollout(stack: LocalStack) -> Iterator[str]:
    """A running rollout on its own host, fed counts of a healthy canary."""
    stack.store().put_route(demo_route(HOST, 8001, 8002), expected_revision=None)
    feeder = MetricsFeeder(
        stack.store(), stack.client("cloudwatch"), HOST, constant(0.005), max_seconds=150
    ).start()
    service = RolloutService(stack.store(), stack.client("stepfunctions"), stack.state_machine_arn)
    try:
        yield service.start(_plan(), "cli:tests").rollout_id
    finally:
        feeder.stop()


@pytest.fixture
def page(open_page: Any) -> Iterator[Any]:
    context, opened = open_page(1000, STEP_MS)
    failed: list[str] = []
    opened.on("requestfailed", lambda request: failed.append(request.url))
    opened.on("pageerror", lambda error: failed.append(f"script error: {error}"))
    opened.on("console", lambda m: m.type == "error" and failed.append(f"console: {m.text}"))
    yield opened
    seen = list(failed)  # before closing, which cancels the polls in flight
    context.close()
    # Every request the page made was answered, and no script error or CSP refusal (the
    # console's errors) happened on the way. The 409 the test provokes is logged by
    # Chromium as a failed resource load, so that one is expected (matched by its words:
    # a rollout id or a port can hold "409" too).
    expected = "the server responded with a status of 409 (Conflict)"
    assert [m for m in seen if expected not in m] == [], seen


def test_watch_a_rollout_advance_then_pause_it_from_the_page(
    page: Any, dashboard: DashboardServer, stack: LocalStack, rollout: str
) -> None:
    """GIVEN a running rollout WHEN the dashboard shows it THEN the stages advance live;
    WHEN pause is asked without a reason THEN the page refuses; WITH a reason THEN the
    rollout is PAUSED and the audit trail shows who paused it and why."""
    origins: set[str] = set()
    posts: list[str] = []
    page.on("request", lambda request: origins.add(_origin(request.url)))
    page.on("request", lambda request: request.method == "POST" and posts.append(request.url))
    page.goto(dashboard.url + "/")

    _find_in_the_list(page, rollout)
    _watch_it_advance(page)
    if shot := os.environ.get("EDGESHIFT_DASHBOARD_SCREENSHOT"):
        # A few looks into stage 2, so the history and the split's trend show something.
        page.locator("#part-verdicts td", has_text="stage 2 · 50%").nth(2).wait_for()
        page.screenshot(path=str(Path(shot)), full_page=True)

    # A pause without a reason is refused in the page: nothing is sent.
    _ask(page, "pause", "   ")
    assert page.inner_text("#steer-error") == (
        "A reason is required: it is recorded in the audit trail."
    )
    assert page.locator("#steer[open]").count() == 1
    assert posts == []
    # Sent anyway (past the page), the API refuses it too, naming the field; the dashboard
    # passes its problem+json through.
    refused = page.request.post(
        f"{dashboard.url}/api/rollouts/{rollout}/pause", data={"reason": " "}
    )
    assert refused.status == 400, refused.text()
    assert refused.headers["content-type"] == "application/problem+json"
    assert [e["field"] for e in refused.json()["errors"]] == ["reason"]
    assert stack.store().get_rollout(rollout).control is None

    # With a reason it is sent, honoured at the next look, and audited with the reason.
    page.fill("#steer-reason", REASON)
    page.click("#steer-confirm")
    page.locator("#notice.ok", has_text="Pause sent").wait_for()
    assert posts == [f"{dashboard.url}/api/rollouts/{rollout}/pause"]
    page.locator("#status", has_text="PAUSED").wait_for()
    paused = page.locator('#audit tr[data-kind="paused"]')
    paused.wait_for()
    assert REASON in paused.inner_text()
    requested = page.locator('#audit tr[data-kind="control_requested"]').inner_text()
    assert REASON in requested
    assert "local-operator" in requested  # the API's IAM principal asked
    page.locator('.step[data-stage="2"].paused').wait_for()
    assert stack.store().get_rollout(rollout).status is RolloutStatus.PAUSED

    # An API refusal shows its problem+json detail: a paused rollout cannot be paused again.
    _ask(page, "pause", "again")
    notice = page.locator("#notice.problem")
    notice.wait_for()
    assert "Pause refused: Conflict (409)" in notice.inner_text()
    assert "only a RUNNING rollout can be paused; it is PAUSED" in notice.inner_text()

    # Abort from the page puts stable back for everyone.
    _ask(page, "abort", "rolled back from the dashboard test")
    page.locator("#status", has_text="ROLLED_BACK").wait_for()
    page.locator('#audit tr[data-kind="rolled_back"]').wait_for()
    assert stack.store().get_route(HOST).weights() == {"canary": 0, "stable": 10_000}
    assert origins == {dashboard.url}  # nothing but the dashboard server was asked


def _find_in_the_list(page: Any, rollout: str) -> None:
    """The list shows the rollout; filters by status and target keep it or hide it."""
    row = page.locator(f'tr[data-id="{rollout}"]')
    row.wait_for()
    page.check('input[name=status][value="PROMOTED"]')
    page.locator("#list-body", has_text="No rollouts match").wait_for()
    page.uncheck('input[name=status][value="PROMOTED"]')
    page.check('input[name=status][value="RUNNING"]')
    page.fill("#f-host", "other.edgeshift.test")
    page.dispatch_event("#filters", "change")
    page.locator("#list-body", has_text="No rollouts match").wait_for()
    page.fill("#f-host", HOST)
    page.dispatch_event("#filters", "change")
    row.wait_for()
    row.click()
    page.wait_for_url(re.compile(rf"#/rollouts/{rollout}$"))


def _watch_it_advance(page: Any) -> None:
    """Stage 1 bakes, looks judge it, then stage 2 is applied: all without a reload."""
    page.locator("#status", has_text="RUNNING").wait_for()
    page.locator('.step[data-stage="1"].baking').wait_for()
    page.locator("#bake", has_text="left").wait_for()
    page.locator('.step[data-stage="2"].baking').wait_for(timeout=60_000)
    page.locator('.step[data-stage="1"].passed').wait_for()
    page.locator('tr[data-metric="error-rate"] .outcome').wait_for()
    page.locator("svg.interval").first.wait_for()
    page.locator("#split-summary", has_text="canary served").wait_for()
    assert "canary 50%" in page.inner_text(".weights")


def _ask(page: Any, verb: str, reason: str) -> None:
    page.click(f"#action-{verb}")
    page.locator("#steer[open]").wait_for()
    page.fill("#steer-reason", reason)
    page.click("#steer-confirm")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
