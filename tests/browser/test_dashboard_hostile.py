"""The dashboard in a real Chromium against an API that answers what a test chooses:
fields users wrote holding markup, a trail of thousands of events, an API that goes away
mid-session and comes back, and a rollout that has ended."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs

import pytest

from orchestrator.api.schemas import RolloutView
from orchestrator.dashboard import DashboardServer, Upstream
from orchestrator.local.demo import demo_plan, demo_route
from orchestrator.local.loopback import LoopbackServer
from orchestrator.models import Rollout, RolloutStatus

pytestmark = pytest.mark.timeout(120)

STEP_MS = 20_000
T0 = datetime.now(UTC) - timedelta(seconds=30)
# Each would run a script if the page put it into its HTML unescaped.
MARKUP = '<img src=x onerror="window.__pwned=1">'
ATTRIBUTE = '"><svg onload="window.__pwned=1">'


def _rollout(status: RolloutStatus = RolloutStatus.RUNNING) -> dict[str, Any]:
    plan = demo_plan(demo_route("hostile.edgeshift.test", 8001, 8002))
    started = Rollout.start(plan, f"cli:{MARKUP}", now=T0)
    view = RolloutView.of(started.model_copy(update={"status": status})).model_dump(mode="json")
    view["reason"] = f"paused by {ATTRIBUTE}: {MARKUP}"
    view["plan"]["canary"]["version"] = f"v2{MARKUP}"  # drawn as it is, whatever it holds
    view["plan"]["stable"]["name"] = ATTRIBUTE
    view["control"] = {"action": "pause", "actor": ATTRIBUTE, "reason": MARKUP,
                       "at": T0.isoformat()}  # fmt: skip
    return view


def _events(rid: str, count: int) -> list[dict[str, Any]]:
    def event(seq: int, kind: str, actor: str = "workflow", reason: str = "", **detail: Any):
        at = (T0 + timedelta(seconds=seq)).isoformat()
        return {"rollout_id": rid, "seq": seq, "at": at, "actor": actor, "kind": kind,
                "reason": reason or kind, "detail": detail}  # fmt: skip

    metric = {"metric": MARKUP, "outcome": "pass", "reason": MARKUP,
              "canary": {"errors": 5, "total": 1000}, "baseline": {"errors": 5, "total": 1000},
              "effect": 0.0, "interval": [-0.002, 0.002], "margin": 0.015}  # fmt: skip
    split = {"weight": 0.1, "low": 0.075, "high": 0.125, "share": 0.1, "requests": 1000,
             "outcome": "ok", "reason": MARKUP}  # fmt: skip
    trail = [
        event(1, "created", f"cli:{MARKUP}", "rollout requested"),
        event(2, "stage_applied", stage=0),
        event(3, "control_requested", ATTRIBUTE, f"pause requested: {MARKUP}"),
    ]
    for seq in range(4, count + 1):
        verdict = {"outcome": "pass", "metrics": [metric], "split": split}
        decision = {"action": "bake", "reason": MARKUP}
        trail.append(event(seq, "analysis", reason=MARKUP, stage=0, weight=10.0,
                           verdict=verdict, decision=decision))  # fmt: skip
    return trail


@dataclass
class FakeApi:
    view: dict[str, Any]
    events: list[dict[str, Any]]
    asked: list[str] = field(default_factory=list)
    delay: float = 0.0  # seconds before each answer: a slow API
    next_token: str | None = None  # the list has more pages

    def handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.asked.append(self.path)
                time.sleep(api.delay)
                rid = api.view["rollout_id"]
                path, _, query = self.path.partition("?")
                if path == f"/rollouts/{rid}/events":  # one page: after=N, as the API pages
                    after = int(parse_qs(query).get("after", ["0"])[0])
                    items = [event for event in api.events if event["seq"] > after]
                    answer: Any = {"items": items, "next_after": None}
                elif self.path == f"/rollouts/{rid}":
                    answer = api.view
                else:
                    answer = {"items": [api.view], "next_token": api.next_token}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def served() -> Iterator[tuple[FakeApi, LoopbackServer, DashboardServer]]:
    view = _rollout()
    api = FakeApi(view, _events(view["rollout_id"], 12))
    server = LoopbackServer(api.handler()).start()
    dashboard = DashboardServer(Upstream(server.url), port=0).start()
    try:
        yield api, server, dashboard
    finally:
        dashboard.stop()
        server.stop()


@pytest.fixture
def page(open_page: Any) -> Iterator[Any]:
    context, opened = open_page(900, STEP_MS)
    dialogs: list[str] = []
    opened.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    yield opened
    context.close()
    assert dialogs == []


def _pwned(page: Any) -> Any:
    return page.evaluate("window.__pwned")


def test_markup_in_what_users_wrote_is_shown_as_text(page, served):
    """GIVEN a rollout whose actor, reasons, names, versions and metric hold markup WHEN
    the list and the rollout page draw it THEN it reads as text and no script runs."""
    api, _, dashboard = served
    rid = api.view["rollout_id"]
    page.goto(dashboard.url + "/")
    page.locator(f'tr[data-id="{rid}"]').wait_for()
    assert MARKUP in page.inner_text("#list-body")
    page.goto(f"{dashboard.url}/#/rollouts/{rid}")
    page.locator('#audit tr[data-kind="control_requested"]').wait_for()
    page.locator("#split-summary").wait_for()
    header = page.inner_text("#part-header")
    assert f"v2{MARKUP}" in header and f"by cli:{MARKUP}" in header and ATTRIBUTE in header
    assert MARKUP in page.inner_text("#part-metrics")
    assert MARKUP in page.inner_text("#part-verdicts")
    assert MARKUP in page.inner_text("#audit")
    assert page.locator("#main img, #main svg[onload]").count() == 0
    assert _pwned(page) is None


def test_a_long_trail_draws_its_latest_events_and_says_how_many(page, served):
    """GIVEN 3000 events WHEN the rollout page draws them THEN the audit shows the latest
    200 and says how many there are and where to read them all."""
    api, _, dashboard = served
    api.events = _events(api.view["rollout_id"], 3000)
    page.goto(f"{dashboard.url}/#/rollouts/{api.view['rollout_id']}")
    page.locator("#audit-more").wait_for()
    assert page.locator("#audit tbody tr").count() == 200
    assert page.locator("#audit tbody tr").first.get_attribute("data-kind") == "analysis"
    assert page.inner_text("#audit-more") == (
        f"the latest 200 of 3000 events; rollout history {api.view['rollout_id']} lists them all"
    )


def test_the_api_going_away_mid_session_is_said_and_recovered_from(page, served):
    """GIVEN the page drawn WHEN the API stops answering THEN the page says it cannot reach
    the API and keeps what it drew; WHEN the API is back THEN it is live again."""
    api, server, dashboard = served
    page.goto(f"{dashboard.url}/#/rollouts/{api.view['rollout_id']}")
    page.locator("#live.on").wait_for()
    port = server.port
    server.stop()
    page.locator("#live.off", has_text="API error").wait_for()
    page.locator("#loading", has_text="cannot reach the API").wait_for()
    assert page.locator("#part-audit").is_visible()
    back = LoopbackServer(api.handler(), port).start()
    try:
        page.locator("#live.on").wait_for()
        assert page.locator("#loading").is_hidden()
    finally:
        back.stop()


def test_an_ended_rollout_is_not_polled_every_second(page, served):
    """GIVEN a rollout that has ended WHEN its page is open THEN the API is asked again
    only now and then (nothing changes any more), not once a second."""
    api, _, dashboard = served
    api.view.update(status="PROMOTED", control=None)
    page.goto(f"{dashboard.url}/#/rollouts/{api.view['rollout_id']}")
    page.locator("#live.on", has_text="ended").wait_for()
    asked = len(api.asked)
    time.sleep(4)
    assert len(api.asked) == asked, api.asked[asked:]


def test_a_tab_out_of_sight_asks_nothing_and_catches_up_when_back(page, served):
    """GIVEN a running rollout's page WHEN its tab is hidden THEN the API is not asked;
    WHEN a tab comes back in sight THEN the page asks at once, even for an ended rollout
    that is otherwise asked only every half minute."""
    api, _, dashboard = served
    page.goto(f"{dashboard.url}/#/rollouts/{api.view['rollout_id']}")
    page.locator("#live.on").wait_for()
    page.evaluate("Object.defineProperty(document, 'hidden', {value: true, configurable: true})")
    time.sleep(1.5)  # a poll in flight when it was hidden lands
    asked = len(api.asked)
    time.sleep(3)
    assert len(api.asked) == asked, api.asked[asked:]

    api.view.update(status="PROMOTED", control=None)
    page.evaluate("""Object.defineProperty(document, 'hidden', {value: false, configurable: true});
        document.dispatchEvent(new Event('visibilitychange'))""")
    page.locator("#live.on", has_text="ended").wait_for()
    time.sleep(1.5)
    asked = len(api.asked)
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    deadline = time.monotonic() + 5
    while len(api.asked) == asked and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(api.asked) > asked


def test_a_slow_api_is_said_while_the_page_waits_for_it(page, served):
    """GIVEN the page drawn WHEN the API takes seconds to answer THEN the page says it is
    waiting for the API (not "live" with an old time), and live again once answered."""
    api, _, dashboard = served
    page.goto(f"{dashboard.url}/#/rollouts/{api.view['rollout_id']}")
    page.locator("#live.on").wait_for()
    api.delay = 4.0
    page.locator("#live.off", has_text="waiting for the API").wait_for()
    api.delay = 0.0
    page.locator("#live.on").wait_for()


def test_a_list_with_more_pages_says_only_the_newest_are_shown(page, served):
    """GIVEN more rollouts than one page of the list WHEN listed THEN the page says it
    shows the newest 50 and how to find the others."""
    api, _, dashboard = served
    page.goto(dashboard.url + "/")
    page.locator(f'tr[data-id="{api.view["rollout_id"]}"]').wait_for()
    assert page.locator("#list-more").count() == 0
    api.next_token = "more"
    page.locator("#list-more").wait_for()
    assert page.inner_text("#list-more") == (
        "the newest 50 shown; filter by target or status to find older ones"
    )
