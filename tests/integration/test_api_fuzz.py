"""Schemathesis against `rollout local up`'s REST API, with every phase (examples, coverage,
fuzzing, stateful): generated requests from the committed OpenAPI document find no 5xx, no
answer the document does not describe, no schema-valid request refused and no invalid one
accepted, and the links from a created rollout chain into get, events and the steering
operations.

Schemathesis runs as its own command (``schemathesis run``, the way people run it against
`rollout local up`) against the local stack served from this process, bounded by
MAX_EXAMPLES per operation and MAX_SECONDS in all.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from orchestrator.local.apigw import LocalApi
from orchestrator.local.demo import demo_route
from orchestrator.local.stack import LocalStack

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
DOCUMENT = json.loads((REPO / "openapi.json").read_text())
MAX_EXAMPLES = 15
MAX_SECONDS = 75
PHASES = "examples,coverage,fuzzing,stateful"

# What the document cannot say, and so what the checks must be told:
# - The local stack stands in for IAM with one fixed principal (apigw.LOCAL_PRINCIPAL) and
#   checks no signature, so the run is given the document without its SigV4 requirement
#   (that every deployed method is AWS_IAM is tests/infra's to check).
# - API Gateway answers a method a resource does not have with 403 Missing Authentication
#   Token, not 405, and the adapter does the same (test below): `unsupported_method` off.
# - A plan is checked against the route it targets and across its fields (stage weights
#   climb, warm-up fits the intervals, the history budget), and a rule's host must be the
#   path's and its weights must cover everyone: JSON Schema cannot say these, so a
#   schema-valid plan or rule may still be refused 422 (or 400 for the host). Likewise
#   `next_token` is a cursor this API issued: any other string is refused 400.
CONFIG = """
[cache]
enabled = false  # every run starts from the document, not from an earlier run's answers

[checks]
unsupported_method.enabled = false

[[operations]]
include-name = "POST /rollouts"
checks.positive_data_acceptance.expected-statuses = [{accepted}, "422"]

[[operations]]
include-name = "GET /rollouts"
checks.positive_data_acceptance.expected-statuses = [{accepted}, "400"]

[[operations]]
include-name = "PUT /routes/{{host}}"
checks.positive_data_acceptance.expected-statuses = [{accepted}, "400", "422"]
"""
# Schemathesis' own default for an accepted request, which the two above extend.
ACCEPTED = ["2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]
CONFIG = CONFIG.format(accepted=", ".join(json.dumps(status) for status in ACCEPTED))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def api_url():
    with LocalStack() as stack:
        stack.store().put_route(
            demo_route("demo.edgeshift.test", _free_port(), _free_port()), expected_revision=None
        )
        api = LocalApi().start()
        try:
            yield api.url
        finally:
            api.stop()


def _local_document() -> dict[str, Any]:
    document = json.loads(json.dumps(DOCUMENT))
    document.pop("security", None)
    document.get("components", {}).pop("securitySchemes", None)
    return document


def test_schemathesis_with_every_phase_finds_nothing(api_url, tmp_path):
    """GIVEN the committed document and the local API WHEN schemathesis runs every phase
    THEN it exits 0: no failure in any operation, stateful links followed."""
    schema = tmp_path / "openapi.json"
    schema.write_text(json.dumps(_local_document()))
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    junit = tmp_path / "junit.xml"
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        str(schema),
        "--url",
        api_url,
        "--phases",
        PHASES,
        "--max-examples",
        str(MAX_EXAMPLES),
        "--max-time",
        str(MAX_SECONDS),
        "--workers",
        "1",
        "--report",
        "junit",
        "--report-junit-path",
        str(junit),
        "--output-truncate",
        "true",
    ]
    env = {**os.environ, "NO_COLOR": "1"}
    run = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=MAX_SECONDS + 120,
        env=env,
        cwd=tmp_path,  # its cache and reports stay out of the repository
        check=False,
    )
    report = run.stdout[-12000:] + run.stderr[-3000:]
    assert run.returncode == 0, report
    assert "Stateful" in run.stdout, report
    suites = ElementTree.parse(junit).getroot()
    cases = list(suites.iter("testcase"))
    assert len(cases) >= len(_operations()), report  # every operation was exercised
    assert not [c for c in cases if c.find("failure") is not None or c.find("error") is not None]


def _operations() -> list[tuple[str, str]]:
    return [(p, m) for p, methods in DOCUMENT["paths"].items() for m in methods]


def _ask(url: str, method: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), refused.read()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("TRACE", "/rollouts"),
        ("DELETE", "/rollouts"),
        ("OPTIONS", "/rollouts/r-20990101T000000Z-deadbeef"),
        ("PROPFIND", "/routes/demo.edgeshift.test"),
        ("GET", "/no/such/path"),
        ("GET", "/rollouts/r-1/nothing"),
    ],
)
def test_unrouted_requests_get_api_gateways_json_answer(api_url, method, path):
    """GIVEN a method or path the deployed API does not have WHEN it is sent to the local
    API THEN 403 {"message": "Missing Authentication Token"} as JSON, as API Gateway
    answers it (never http.server's 501 HTML page)."""
    status, headers, body = _ask(api_url + path, method)
    assert status == 403
    assert headers["Content-Type"] == "application/json"
    assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert json.loads(body) == {"message": "Missing Authentication Token"}


def test_head_gets_the_gateways_answer_without_a_body(api_url):
    """HEAD is not a deployed method either: 403, and no body (as HTTP requires)."""
    status, _, body = _ask(api_url + "/rollouts", "HEAD")
    assert status == 403 and body == b""
