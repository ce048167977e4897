"""Against a deployed API the dashboard server signs every call with SigV4 for
``execute-api`` (botocore's signer), so the API keeps IAM authorization.

A local HTTP server stands in for API Gateway: it checks the Authorization header's
credential scope and recomputes the signature with botocore from what arrived (method,
path, query, signed headers, body), so a request changed after signing is refused.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.dashboard import DashboardServer, Upstream, region_of, sigv4_signer
from orchestrator.local.loopback import LoopbackServer

ACCESS_KEY, SECRET, TOKEN = "AKIDDASHBOARDTEST", "dashboard-test-secret", "session-token-1"
REGION = "eu-west-1"
ROLLOUT_ID = "r-20261202T120000Z-0123abcd"
_AUTH = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<key>[^/]+)/(?P<day>\d{8})/(?P<region>[^/]+)/"
    r"(?P<service>[^/]+)/aws4_request, SignedHeaders=(?P<signed>[a-z0-9;-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass
class Arrival:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    verdict: str = ""


@dataclass
class FakeApiGateway:
    """Answers like an IAM-authorized API Gateway stage ``/prod``: 403 unless signed right."""

    secret: str = SECRET
    arrivals: list[Arrival] = field(default_factory=list)

    def check(self, arrival: Arrival) -> str:
        """ "" when the signature holds, else why not (API Gateway's 403 message)."""
        match = _AUTH.match(arrival.headers.get("authorization", ""))
        if match is None:
            return "Missing Authentication Token"
        if (match["key"], match["region"], match["service"]) != (ACCESS_KEY, REGION, "execute-api"):
            return f"Credential should be scoped to a valid region and service: {match[0]}"
        stamp = arrival.headers.get("x-amz-date", "")
        if not stamp.startswith(match["day"]) or match["day"] != _today():
            return "Signature expired or dated wrongly"
        signed = match["signed"].split(";")
        request = AWSRequest(
            method=arrival.method,
            url=f"http://{arrival.headers['host']}{arrival.path}",
            data=arrival.body,
            headers={name: arrival.headers[name] for name in signed if name in arrival.headers},
        )
        request.context["timestamp"] = stamp
        signer = SigV4Auth(
            Credentials(ACCESS_KEY, self.secret, arrival.headers.get("x-amz-security-token")),
            "execute-api",
            REGION,
        )
        expected = signer.signature(
            signer.string_to_sign(request, signer.canonical_request(request)), request
        )
        if expected != match["signature"]:
            return "The request signature we calculated does not match the signature you provided"
        return ""

    def handler(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                arrival = Arrival(self.command, self.path, headers, body)
                arrival.verdict = gateway.check(arrival)
                gateway.arrivals.append(arrival)
                status, answer = (
                    (403, {"message": arrival.verdict})
                    if arrival.verdict
                    else (200, {"items": [], "next_token": None, "echo": self.path})
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _today() -> str:
    return datetime.now(UTC).strftime("%Y%m%d")


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    return botocore.session.Session()


@pytest.fixture
def gateway() -> Iterator[tuple[FakeApiGateway, LoopbackServer]]:
    fake = FakeApiGateway()
    server = LoopbackServer(fake.handler()).start()
    try:
        yield fake, server
    finally:
        server.stop()


@pytest.fixture
def signed_dashboard(gateway, credentials) -> Iterator[DashboardServer]:
    _, server = gateway
    upstream = Upstream(server.url + "/prod", sigv4_signer(REGION, credentials))
    dashboard = DashboardServer(upstream, port=0).start()
    try:
        yield dashboard
    finally:
        dashboard.stop()


def _send(url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url,
        data=data,
        method="POST" if data else "GET",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_dashboard_signs_each_call_for_execute_api(gateway, signed_dashboard):
    """GIVEN --api-url and AWS credentials WHEN the page lists and pauses THEN each call
    reaches the API signed by botocore for execute-api in the region, with the session
    token, and the signature holds for the path, query and body that arrived."""
    fake, _ = gateway
    status, listed = _send(f"{signed_dashboard.url}/api/rollouts?host=a.test&status=RUNNING")
    assert status == 200, listed
    assert listed["echo"] == "/prod/rollouts?host=a.test&status=RUNNING"
    status, _ = _send(f"{signed_dashboard.url}/api/rollouts/{ROLLOUT_ID}/pause", {"reason": "r"})
    assert status == 200

    assert [(a.method, a.path) for a in fake.arrivals] == [
        ("GET", "/prod/rollouts?host=a.test&status=RUNNING"),
        ("POST", f"/prod/rollouts/{ROLLOUT_ID}/pause"),
    ]
    for arrival in fake.arrivals:
        assert arrival.verdict == ""
        scope = f"Credential={ACCESS_KEY}/{_today()}/{REGION}/execute-api/aws4_request"
        assert scope in arrival.headers["authorization"]
        assert arrival.headers["x-amz-security-token"] == TOKEN
    assert fake.arrivals[1].body == b'{"reason": "r"}'


def test_the_gateway_check_refuses_a_request_changed_after_signing(gateway, credentials):
    """GIVEN a correctly signed pause WHEN its body is changed in transit THEN the stand-in
    gateway's check (botocore recomputing the signature) refuses it: the check can fail."""
    fake, server = gateway
    url = f"{server.url}/prod/rollouts/{ROLLOUT_ID}/pause"
    headers = sigv4_signer(REGION, credentials)("POST", url, b'{"reason": "a"}', {})
    request = urllib.request.Request(url, data=b'{"reason": "b"}', method="POST", headers=headers)
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 403
    assert "does not match" in fake.arrivals[-1].verdict

    other = FakeApiGateway(secret="another-secret")
    arrival = fake.arrivals[-1]
    arrival.body = b'{"reason": "a"}'
    assert fake.check(arrival) == ""  # the original body verifies with the right secret
    assert "does not match" in other.check(arrival)


def test_the_local_stack_is_asked_unsigned(gateway):
    """GIVEN no --api-url (the local stack) WHEN the dashboard calls THEN nothing is signed,
    and the stand-in gateway refuses it as API Gateway would."""
    fake, server = gateway
    answer = Upstream(server.url + "/prod").call("GET", "/rollouts")
    assert answer.status == 403
    assert "authorization" not in fake.arrivals[-1].headers
    assert fake.arrivals[-1].verdict == "Missing Authentication Token"


def test_the_signing_region_comes_from_the_execute_api_host():
    """GIVEN an execute-api URL WHEN read THEN its region; any other host names none."""
    assert region_of("https://abc123.execute-api.eu-west-1.amazonaws.com/prod") == "eu-west-1"
    assert region_of("https://api.example.com/prod") is None


def test_without_credentials_the_command_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path):
    """GIVEN --api-url and no AWS credentials anywhere WHEN the dashboard starts THEN one
    error line says how to get them, exit 1, and nothing listens."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    url = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    result = CliRunner().invoke(cli, ["dashboard", "--api-url", url, "--port", "0"])
    assert result.exit_code == 1, result.output
    assert "Error: no AWS credentials found to sign requests to the API" in result.output


def test_an_api_url_that_is_not_http_is_refused():
    """GIVEN --api-url without http(s):// WHEN the dashboard starts THEN exit 2 naming it."""
    result = CliRunner().invoke(cli, ["dashboard", "--api-url", "abc123.example.com"])
    assert result.exit_code == 2
    assert "--api-url: must start with https://" in result.output


def test_plain_http_is_refused_for_an_api_beyond_this_machine(monkeypatch, tmp_path):
    """GIVEN --api-url http:// to a host other than this machine WHEN the dashboard starts
    THEN exit 2 naming --api-url, before any credential is read: signed calls (and the
    rollouts they answer) would cross the network in clear."""
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    url = "http://abc123.execute-api.eu-west-1.amazonaws.com/prod"
    result = CliRunner().invoke(cli, ["dashboard", "--api-url", url, "--port", "0"])
    assert result.exit_code == 2, result.output
    assert "Error: --api-url: must start with https:// (plain http:// only to" in result.output
