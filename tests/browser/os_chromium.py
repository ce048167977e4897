"""The OS's Chromium for the browser tests, or a clear word why there is none."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

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
