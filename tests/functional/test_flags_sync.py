"""The scheduled flag sync: the real SDK polls a LaunchDarkly stand-in on 127.0.0.1, and its
data lands where the edge reads it; data that cannot serve a flag-routed rule is refused
with nothing written."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from local_aws import flag_rule

from edge import flags
from orchestrator.flags import FlagStore
from orchestrator.flags import sync as flag_sync
from orchestrator.store import Store

EXAMPLE = json.loads((Path(__file__).resolve().parents[2] / "examples" / "flags.json").read_text())
SDK_KEY = "sdk-test-key"


@pytest.fixture
def launchdarkly() -> Iterator[dict[str, Any]]:
    """Answers the SDK's polling request with the example's flags, if the key is right."""
    seen: dict[str, Any] = {"auth": []}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen["auth"].append(self.headers.get("Authorization"))
            if self.headers.get("Authorization") != SDK_KEY:
                self.send_response(401)
                self.end_headers()
                return
            body = json.dumps({"flags": EXAMPLE["flags"], "segments": EXAMPLE["segments"]})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    seen["uri"] = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield seen
    finally:
        server.shutdown()
        server.server_close()


def test_the_sdk_fetches_the_environments_flags(launchdarkly: dict[str, Any]) -> None:
    """GIVEN LaunchDarkly answering with two flags and a segment WHEN fetched with the SDK
    key THEN the SDK's data holds them, taken with that key."""
    data = flag_sync.fetch(SDK_KEY, start_wait=5, base_uri=launchdarkly["uri"], stream=False)

    assert sorted(data.flags) == ["checkout-enabled", "new-checkout"]
    assert sorted(data.segments) == ["staff"]
    assert SDK_KEY in launchdarkly["auth"]


def test_the_handler_reads_the_key_and_writes_the_flags(
    store: Store, launchdarkly: dict[str, Any], monkeypatch: pytest.MonkeyPatch, lambda_context: Any
) -> None:
    """GIVEN the SDK key in Secrets Manager WHEN the scheduled function runs THEN the flags
    are written beside the routes, each with an audit event."""
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    secrets.create_secret(Name="edgeshift/launchdarkly/sdk-key", SecretString=SDK_KEY)
    monkeypatch.setenv(flag_sync.SDK_KEY_SECRET_ENV, "edgeshift/launchdarkly/sdk-key")
    real_fetch = flag_sync.fetch
    monkeypatch.setattr(
        flag_sync,
        "fetch",
        lambda key: real_fetch(key, start_wait=5, base_uri=launchdarkly["uri"], stream=False),
    )

    outcome = flag_sync.handler({}, lambda_context)

    assert outcome["written"] == ["flag:checkout-enabled", "flag:new-checkout", "segment:staff"]
    snapshot = flags.Snapshot(
        [
            {"path_rule": k, "data": v["data"]}
            for k, v in FlagStore(store.client, store.tables).stored().items()
        ]
    )
    assert sorted(snapshot.flags) == ["checkout-enabled", "new-checkout"]


def test_data_that_cannot_serve_a_rule_is_refused(
    store: Store, launchdarkly: dict[str, Any]
) -> None:
    """GIVEN a rule routed by a flag LaunchDarkly does not have WHEN synced THEN refused,
    naming the flag, and nothing written."""
    rule = flag_rule("old-checkout", {"true": "canary"}, key_from="ip_ua")
    store.put_route(rule, expected_revision=None)
    flag_store = FlagStore(store.client, store.tables)
    data = flag_sync.fetch(SDK_KEY, start_wait=5, base_uri=launchdarkly["uri"], stream=False)

    with pytest.raises(
        flag_sync.FlagSyncRefused, match="flag 'old-checkout' is not in the flag data"
    ):
        flag_sync.sync_once(flag_store, data, source="launchdarkly")
    assert flag_store.stored() == {}
