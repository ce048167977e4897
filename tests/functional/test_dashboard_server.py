"""The dashboard server: it serves its own page and nothing from elsewhere, forwards the
list and the steering calls to the API as they are, reads a rollout and its audit trail into
the page's model, and passes the API's problem+json through untouched."""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from orchestrator.api.schemas import RolloutView
from orchestrator.dashboard import DashboardServer, Upstream
from orchestrator.dashboard.views import rollout_page
from orchestrator.local.loopback import LoopbackServer
from orchestrator.models import Rollout, RolloutPlan, RolloutStatus

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
PROBLEM = {
    "type": "urn:edgeshift:problem:invalid-transition",
    "title": "Conflict",
    "status": 409,
    "detail": "only a RUNNING rollout can be paused; it is PAUSED",
}


@pytest.fixture
def rollout(plan_doc: dict[str, Any]) -> Rollout:
    """Stage 2 of 3 (50%) baking: stage 1 passed."""
    plan_doc["stages"] = [
        {"weight": 10, "bake": 60, "interval": 10},
        {"weight": 50, "bake": 120, "interval": 10},
        {"weight": 100, "bake": 10, "interval": 10},
    ]
    started = Rollout.start(RolloutPlan.model_validate(plan_doc), "cli:ops", now=T0)
    return started.model_copy(update={"status": RolloutStatus.RUNNING, "stage_index": 1})


def _metric(outcome: str, errors: int) -> dict[str, Any]:
    return {
        "metric": "error-rate",
        "outcome": outcome,
        "reason": f"error-rate {outcome}",
        "canary": {"errors": errors, "total": 1000},
        "baseline": {"errors": 5, "total": 1000},
        "effect": (errors - 5) / 1000,
        "interval": [-0.002, 0.004],
        "margin": 0.015,
        "critical": True,
    }


def _events(rollout: Rollout) -> list[dict[str, Any]]:
    def event(seq: int, seconds: int, kind: str, **detail: Any) -> dict[str, Any]:
        at = (T0 + timedelta(seconds=seconds)).isoformat()
        return {"rollout_id": rollout.rollout_id, "seq": seq, "at": at, "actor": "workflow",
                "kind": kind, "reason": kind, "detail": detail}  # fmt: skip

    def look(seq: int, seconds: int, stage: int, outcome: str, split: dict[str, Any]):
        verdict = {"outcome": outcome, "metrics": [_metric(outcome, 6)], "split": split}
        decision = {"action": "bake", "reason": f"baking, {outcome} so far"}
        weight = (10.0, 50.0)[stage]
        return event(seq, seconds, "analysis", stage=stage, weight=weight, verdict=verdict,
                     decision=decision)  # fmt: skip

    band = {"weight": 0.1, "low": 0.075, "high": 0.125, "outcome": "ok", "reason": "fits"}
    return [
        event(1, 0, "created"),
        event(2, 1, "stage_applied", stage=0),
        look(3, 11, 0, "inconclusive", {**band, "share": 0.098, "requests": 2000}),
        look(4, 21, 0, "pass", {**band, "share": 0.101, "requests": 4000}),
        event(5, 22, "stage_applied", stage=1),
        look(
            6,
            32,
            1,
            "pass",
            {
                "weight": 0.5,
                "low": 0.375,
                "high": 0.625,
                "outcome": "ok",
                "reason": "fits",
                "share": 0.49,
                "requests": 6000,
            },
        ),
    ]


@dataclass
class FakeApi:
    """Answers as the REST API does for one rollout; records what reached it."""

    view: dict[str, Any]
    events: list[dict[str, Any]]
    arrivals: list[tuple[str, str, bytes]] = field(default_factory=list)
    page: int = 1000  # events per page, as the API's MAX_EVENTS_PAGE

    def answer(self, method: str, path: str) -> tuple[int, str, Any]:
        rid = self.view["rollout_id"]
        if method == "POST" and path == f"/rollouts/{rid}/pause":
            return 409, "application/problem+json", PROBLEM
        if path.startswith("/rollouts?") or path == "/rollouts":
            return 200, "application/json", {"items": [self.view], "next_token": None}
        if path == f"/rollouts/{rid}":
            return 200, "application/json", self.view
        parts = urlsplit(path)
        if parts.path == f"/rollouts/{rid}/events":
            after = int(parse_qs(parts.query).get("after", ["0"])[0])
            rest = [event for event in self.events if event["seq"] > after]
            items = rest[: self.page]
            more = len(rest) > self.page
            return (
                200,
                "application/json",
                {"items": items, "next_after": items[-1]["seq"] if more else None},
            )
        missing = {**PROBLEM, "status": 404, "title": "Not Found", "detail": f"no {path}"}
        return 404, "application/problem+json", missing

    def handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                api.arrivals.append((self.command, self.path, body))
                status, kind, answer = api.answer(self.command, self.path)
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def api(rollout: Rollout) -> Iterator[FakeApi]:
    fake = FakeApi(RolloutView.of(rollout).model_dump(mode="json"), _events(rollout))
    server = LoopbackServer(fake.handler()).start()
    fake.url = server.url  # type: ignore[attr-defined]
    try:
        yield fake
    finally:
        server.stop()


@pytest.fixture
def dashboard(api: FakeApi) -> Iterator[DashboardServer]:
    server = DashboardServer(Upstream(api.url), port=0).start()  # type: ignore[attr-defined]
    try:
        yield server
    finally:
        server.stop()


def _call(url: str, body: bytes | None = None, headers: dict[str, str] | None = None):
    request = urllib.request.Request(url, data=body, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers.items()), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def test_the_page_is_its_own_files_on_loopback(dashboard: DashboardServer):
    """GIVEN the dashboard WHEN its page loads THEN HTML, CSS and JS come from it alone:
    no other origin named anywhere, and the CSP allows nothing else."""
    assert dashboard.url.startswith("http://127.0.0.1:")
    for path, kind in (("/", "text/html"), ("/dashboard.css", "text/css"),
                       ("/dashboard.js", "text/javascript"),
                       ("/favicon.svg", "image/svg+xml")):  # fmt: skip
        status, headers, body = _call(dashboard.url + path)
        assert status == 200
        assert headers["Content-Type"].startswith(kind)
        assert "default-src 'none'" in headers["Content-Security-Policy"]
        named = body.replace(b'xmlns="http://www.w3.org/2000/svg"', b"")  # a name, not a fetch
        assert not re.search(rb"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", named), path
    status, _, body = _call(dashboard.url + "/")
    assert b'<script src="/dashboard.js"' in body and b'href="/dashboard.css"' in body


def test_the_list_is_forwarded_with_its_filters(dashboard, api):
    """GIVEN filters by target and status WHEN listed THEN the API gets exactly them."""
    query = "limit=50&host=shop.example.com&path_rule=default&status=RUNNING&status=PAUSED"
    status, _, body = _call(f"{dashboard.url}/api/rollouts?{query}")
    assert status == 200
    assert json.loads(body)["items"][0]["rollout_id"] == api.view["rollout_id"]
    assert api.arrivals == [("GET", f"/rollouts?{query}", b"")]


def test_a_rollout_is_read_into_the_page_model(dashboard, api):
    """GIVEN stage 2 baking after two looks in stage 1 WHEN viewed THEN the ladder, bake,
    evidence, split and audit say so."""
    status, _, body = _call(f"{dashboard.url}/view/rollouts/{api.view['rollout_id']}")
    assert status == 200
    page = json.loads(body)
    assert [s["state"] for s in page["ladder"]] == ["passed", "baking", "next"]
    assert page["bake"]["stage"] == 2 and page["bake"]["bake"] == 120.0
    assert page["bake"]["started_at"] == (T0 + timedelta(seconds=22)).isoformat()
    (metric,) = page["metrics"]
    assert metric["latest"]["canary"] == [6, 1000] and metric["latest"]["interval"] == [
        -0.002,
        0.004,
    ]
    assert [h["outcome"] for h in metric["history"]] == ["inconclusive", "pass", "pass"]
    assert [(c["share"], c["low"], c["high"]) for c in page["split"]][-1] == (0.49, 0.375, 0.625)
    assert [e["seq"] for e in page["audit"]] == [6, 5, 4, 3, 2, 1]
    assert page["offered"] == ["pause", "abort", "promote"]


def test_a_pause_request_not_yet_honoured_offers_resume_to_withdraw_it(api):
    """GIVEN a RUNNING rollout with a pending pause WHEN read THEN resume (withdraw) and
    abort are offered, not a second pause."""
    control = {"action": "pause", "actor": "ops", "reason": "r", "at": T0.isoformat()}
    page = rollout_page({**api.view, "control": control}, api.events, T0)
    assert page["offered"] == ["resume", "abort"]
    ended = rollout_page({**api.view, "status": "ROLLED_BACK"}, api.events, T0)
    assert ended["offered"] == [] and ended["bake"] is None
    assert [s["state"] for s in ended["ladder"]] == ["passed", "rolled back", ""]


def test_an_api_refusal_comes_back_as_its_problem_json(dashboard, api):
    """GIVEN the API refuses a pause WHEN the page sends it THEN the same status, type and
    body come back, and the body the page sent reached the API as it was."""
    sent = b'{"reason": "alert"}'
    url = f"{dashboard.url}/api/rollouts/{api.view['rollout_id']}/pause"
    status, headers, body = _call(url, sent, {"Content-Type": "application/json"})
    assert status == 409
    assert headers["Content-Type"] == "application/problem+json"
    assert json.loads(body) == PROBLEM
    assert api.arrivals == [("POST", f"/rollouts/{api.view['rollout_id']}/pause", sent)]


def test_a_cross_origin_post_is_refused_before_the_api(dashboard, api):
    """GIVEN another site's page WHEN it posts a steering call here THEN 403, nothing sent."""
    url = f"{dashboard.url}/api/rollouts/{api.view['rollout_id']}/abort"
    status, _, body = _call(url, b'{"reason": "x"}', {"Origin": "http://evil.example"})
    assert status == 403
    assert json.loads(body)["detail"] == "cross-origin requests are refused"
    assert api.arrivals == []


def test_a_request_for_another_host_name_is_refused(dashboard, api):
    """GIVEN a request naming another host (a name re-pointed at 127.0.0.1) WHEN it asks
    the dashboard THEN 403, and the API is not asked."""
    for body in (None, b'{"reason": "x"}'):
        url = f"{dashboard.url}/api/rollouts/{api.view['rollout_id']}/abort"
        status, _, answer = _call(url if body else dashboard.url + "/api/rollouts", body,
                                  {"Host": f"rebound.example:{dashboard.port}"})  # fmt: skip
        assert status == 403
        assert json.loads(answer)["detail"] == (
            f"the dashboard answers no host 'rebound.example:{dashboard.port}'"
        )
    assert api.arrivals == []
    status, _, _ = _call(dashboard.url + "/", None, {"Host": f"localhost:{dashboard.port}"})
    assert status == 200


@pytest.mark.parametrize(
    "path", ["/api/routes/shop.example.com", "/api/rollouts", "/api/rollouts/r-1/pause"]
)
def test_only_the_steering_calls_are_forwarded(dashboard, api, path):
    """GIVEN a POST to anything but pause/resume/abort/promote of a rollout id WHEN sent
    THEN the dashboard answers 404 problem+json and the API is not asked."""
    status, headers, _ = _call(dashboard.url + path, b"{}", {"Content-Type": "application/json"})
    assert status == 404
    assert headers["Content-Type"] == "application/problem+json"
    assert api.arrivals == []


def test_an_unreachable_api_is_a_problem_naming_it():
    """GIVEN nothing listening at the API URL WHEN the page lists THEN 502 problem+json that
    names the URL."""
    with socket.socket() as probe:  # a free port, closed again: nothing answers on it
        probe.bind(("127.0.0.1", 0))
        gone = f"http://127.0.0.1:{probe.getsockname()[1]}"
    dashboard = DashboardServer(Upstream(gone), port=0).start()
    try:
        status, _, body = _call(dashboard.url + "/api/rollouts")
    finally:
        dashboard.stop()
    assert status == 502
    assert json.loads(body)["detail"].startswith(f"cannot reach the API at {gone}")


def test_a_port_in_use_is_refused_naming_the_option():
    """GIVEN the port taken WHEN `rollout dashboard --port` asks for it THEN exit 2 naming
    --port, and the other listener is left alone."""
    from click.testing import CliRunner

    from orchestrator.cli.main import cli

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["dashboard", "--port", str(port)])
    assert result.exit_code == 2, result.output
    assert f"--port: cannot listen on 127.0.0.1:{port}" in result.output


def _raw(dashboard: DashboardServer, request: bytes) -> bytes:
    """What the dashboard answers to bytes sent as they are (no client to tidy them)."""
    with socket.create_connection(("127.0.0.1", dashboard.port), timeout=10) as conn:
        conn.sendall(request)
        conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize("length", ["abc", "-5"])
def test_a_post_with_a_bad_content_length_is_a_400_naming_it(dashboard, api, length):
    """GIVEN a POST whose Content-Length is not a size WHEN sent THEN 400 problem+json
    naming the header (not a dropped connection), and the API is not asked."""
    rid = api.view["rollout_id"]
    answer = _raw(dashboard, (
        f"POST /api/rollouts/{rid}/pause HTTP/1.1\r\nHost: 127.0.0.1:{dashboard.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n{{}}"
    ).encode())  # fmt: skip
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer
    assert b"application/problem+json" in head
    assert "Content-Length" in json.loads(body)["detail"]
    assert api.arrivals == []


def test_a_query_the_api_cannot_be_sent_is_a_400(dashboard, api):
    """GIVEN a list query holding a control character WHEN listed THEN 400 problem+json,
    not a dropped connection."""
    answer = _raw(dashboard, (
        f"GET /api/rollouts?host=a\x01b HTTP/1.1\r\nHost: 127.0.0.1:{dashboard.port}\r\n"
        "Connection: close\r\n\r\n"
    ).encode())  # fmt: skip
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400"), answer
    assert json.loads(body)["status"] == 400
    assert api.arrivals == []


def test_a_cross_site_post_without_origin_is_refused(dashboard, api):
    """GIVEN a browser's cross-site POST whose Origin was stripped (it still says where it
    came from in Sec-Fetch-Site) WHEN sent THEN 403, nothing reaches the API."""
    url = f"{dashboard.url}/api/rollouts/{api.view['rollout_id']}/abort"
    status, _, body = _call(url, b'{"reason": "x"}', {
        "Content-Type": "application/json", "Sec-Fetch-Site": "cross-site"})  # fmt: skip
    assert status == 403
    assert json.loads(body)["detail"] == "cross-origin requests are refused"
    assert api.arrivals == []


@pytest.mark.parametrize("kind", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_a_steering_post_that_is_not_json_is_refused(dashboard, api, kind):
    """GIVEN a steering POST that an HTML form could send (no CORS preflight) WHEN sent
    THEN 415 problem+json naming Content-Type, and the API is not asked."""
    url = f"{dashboard.url}/api/rollouts/{api.view['rollout_id']}/abort"
    request = urllib.request.Request(url, data=b'{"reason": "x"}', method="POST")
    request.add_header("Content-Type", kind)
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("accepted")
    except urllib.error.HTTPError as exc:
        status, body = exc.code, json.loads(exc.read())
    assert status == 415
    assert "Content-Type" in body["detail"] and "application/json" in body["detail"]
    assert api.arrivals == []


def test_a_malformed_rollout_id_is_a_404_saying_what_an_id_looks_like(dashboard, api):
    """GIVEN a page address with something that is no rollout id WHEN viewed THEN 404
    naming it and the id's form (not "no page /view/..."), the API not asked."""
    status, _, body = _call(f"{dashboard.url}/view/rollouts/nope")
    assert status == 404
    assert json.loads(body)["detail"] == (
        "no rollout 'nope': a rollout id looks like r-20261202T120000Z-1a2b3c4d"
    )
    assert api.arrivals == []


def test_a_long_trail_sends_the_page_only_what_it_draws(api):
    """GIVEN a rollout with thousands of looks WHEN read for the page THEN the audit trail
    holds the latest AUDIT_ROWS events with the total, and the split its latest looks, so
    each poll stays small."""
    from orchestrator.dashboard.views import AUDIT_ROWS, HISTORY_LOOKS

    looks = [e for e in api.events if e["kind"] == "analysis"]
    events = list(api.events)
    for seq in range(len(events) + 1, 3001):
        events.append({**looks[-1], "seq": seq})
    page = rollout_page(api.view, events, T0)
    assert [e["seq"] for e in page["audit"]] == list(range(3000, 3000 - AUDIT_ROWS, -1))
    assert page["audit_total"] == 3000
    assert [c["seq"] for c in page["split"]] == list(range(3001 - HISTORY_LOOKS, 3001))
    assert len(json.dumps(page)) < 200_000


def test_a_redirect_from_the_api_is_not_followed_with_the_signed_headers():
    """GIVEN an API that answers a redirect to another address WHEN the page lists THEN
    the signed headers go nowhere else (the other address is never asked) and the page
    gets a 502 problem naming the redirect."""
    elsewhere: list[str] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            elsewhere.append(self.headers.get("Authorization") or "")
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    other = LoopbackServer(Elsewhere).start()

    class Redirecting(Elsewhere):
        def do_GET(self) -> None:
            self.send_response(307)
            self.send_header("Location", other.url + "/rollouts")
            self.send_header("Content-Length", "0")
            self.end_headers()

    api = LoopbackServer(Redirecting).start()

    def sign(method: str, url: str, body: bytes | None, headers: dict[str, str]):
        return {**headers, "Authorization": "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261202"}

    dashboard = DashboardServer(Upstream(api.url, sign), port=0).start()
    try:
        status, headers, body = _call(dashboard.url + "/api/rollouts")
    finally:
        dashboard.stop()
        api.stop()
        other.stop()
    assert elsewhere == []
    assert status == 502 and headers["Content-Type"] == "application/problem+json"
    assert json.loads(body)["detail"] == (
        f"the API at {api.url} answered a redirect (307) to {other.url}/rollouts; "
        "the dashboard follows none"
    )


def _events_asked(api: FakeApi) -> int:
    return sum(urlsplit(path).path.endswith("/events") for _, path, _ in api.arrivals)


def test_the_trail_is_read_again_only_when_the_rollout_changed(api):
    """GIVEN a page polling a rollout WHEN nothing changed (same updated_at: every event
    written moves it) THEN only the rollout is asked, not its whole trail again; WHEN it
    changed, or the trail is older than events_max_age, THEN the trail is read again."""
    upstream = Upstream(api.url)  # type: ignore[attr-defined]
    dashboard = DashboardServer(upstream, port=0, events_max_age=0.5).start()
    url = f"{dashboard.url}/view/rollouts/{api.view['rollout_id']}"
    try:
        first = json.loads(_call(url)[2])
        second = json.loads(_call(url)[2])
        assert _events_asked(api) == 1
        assert second["audit"] == first["audit"]
        api.events.append({**api.events[-1], "seq": 7, "kind": "paused", "reason": "ops"})
        api.view["updated_at"] = (T0 + timedelta(minutes=5)).isoformat()
        third = json.loads(_call(url)[2])
        assert _events_asked(api) == 2
        assert [e["seq"] for e in third["audit"]][:2] == [7, 6]
        time.sleep(0.6)
        _call(url)
        assert _events_asked(api) == 3
    finally:
        dashboard.stop()


def test_the_reason_box_holds_no_more_than_the_api_takes(dashboard):
    """GIVEN the steering dialog WHEN a reason is typed THEN the box stops where the API's
    limit is, so a reason the page lets through is never refused for its length."""
    from orchestrator.service import MAX_REASON

    _, _, page = _call(dashboard.url + "/")
    (box,) = re.findall(rb"<textarea[^>]*>", page)
    assert f'maxlength="{MAX_REASON}"'.encode() in box


def test_a_long_trail_is_read_page_by_page_and_then_only_what_is_new(api):
    """GIVEN an API that pages its trail two events at a time WHEN the page is drawn THEN
    the dashboard follows next_after to the end and holds every event; WHEN an event is
    added THEN only the events after the last one read are asked for."""
    api.page = 2
    dashboard = DashboardServer(Upstream(api.url), port=0).start()  # type: ignore[attr-defined]
    url = f"{dashboard.url}/view/rollouts/{api.view['rollout_id']}"
    try:
        first = json.loads(_call(url)[2])
        assert first["audit_total"] == len(api.events)
        assert sorted(e["seq"] for e in first["audit"]) == [e["seq"] for e in api.events]
        asked = [p for _, p, _ in api.arrivals if "/events" in p]
        assert len(asked) == -(-len(api.events) // 2)
        last = api.events[-1]["seq"]
        api.arrivals.clear()
        api.events.append({**api.events[-1], "seq": last + 1, "kind": "paused", "reason": "ops"})
        api.view["updated_at"] = (T0 + timedelta(minutes=5)).isoformat()
        second = json.loads(_call(url)[2])
        assert [p for _, p, _ in api.arrivals if "/events" in p] == [
            f"/rollouts/{api.view['rollout_id']}/events?after={last}"
        ]
        assert second["audit"][0]["seq"] == last + 1
    finally:
        dashboard.stop()
