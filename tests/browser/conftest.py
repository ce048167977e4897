"""A real browser on the dashboard: the OS's Chromium (never a downloaded build), driven by
Playwright, against the local stack's API behind a dashboard server.

Without a Chromium the tests are skipped with the command that installs it; with
EDGESHIFT_REQUIRE_BROWSER=1 (CI sets it) a missing browser fails them instead.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.dashboard import DashboardServer, Upstream
from orchestrator.local.apigw import LocalApi
from orchestrator.local.stack import LocalStack

CHROMIUM = Path("/usr/bin/chromium")
# Without the background-networking flags Chromium dials out at start (component updates,
# field trials); on a closed network those connections are refused and slow it down.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium() -> str:
    """The OS's Chromium, or a skip (a failure when the browser is required) saying how to
    get one."""
    found = str(CHROMIUM) if CHROMIUM.exists() else shutil.which("chromium")
    missing = None
    if found is None:
        missing = "no Chromium at /usr/bin/chromium: install it with `apt-get install -y chromium`"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            missing = "playwright is not installed: pip install -e '.[dev]'"
    if missing is not None:
        if os.environ.get("EDGESHIFT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"EDGESHIFT_REQUIRE_BROWSER=1 but {missing}")
        pytest.skip(f"browser test skipped: {missing}")
    assert found is not None
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack() as running:
        yield running


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Iterator[LocalApi]:
    server = LocalApi(port=0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def dashboard(api: LocalApi) -> Iterator[DashboardServer]:
    server = DashboardServer(Upstream(api.url), port=0).start()
    try:
        yield server
    finally:
        server.stop()
