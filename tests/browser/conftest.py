"""A real browser on the dashboard: the OS's Chromium (never a downloaded build), driven by
Playwright, against the local stack's API behind a dashboard server.

Without a Chromium the tests are skipped with the command that installs it; with
EDGESHIFT_REQUIRE_BROWSER=1 (CI sets it) a missing browser fails them instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from os_chromium import CHROMIUM_ARGS, chromium

from orchestrator.dashboard import DashboardServer, Upstream
from orchestrator.local.apigw import LocalApi
from orchestrator.local.stack import LocalStack


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


@pytest.fixture
def open_page(browser: Any) -> Callable[[int, int], tuple[Any, Any]]:
    """Opens a page ``height`` pixels tall in a context of its own, every step bounded by
    ``step_ms``; returns the context (the caller closes it) and the page."""

    def opened(height: int, step_ms: int) -> tuple[Any, Any]:
        context = browser.new_context(viewport={"width": 1280, "height": height})
        page = context.new_page()
        page.set_default_timeout(step_ms)
        return context, page

    return opened


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
