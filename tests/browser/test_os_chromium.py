"""Without a Chromium the browser test says so: a skip naming the install command locally,
a failure where the browser is required (CI sets EDGESHIFT_REQUIRE_BROWSER=1)."""

from __future__ import annotations

from pathlib import Path

import os_chromium
import pytest


@pytest.fixture
def no_chromium(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os_chromium, "CHROMIUM", tmp_path / "chromium")
    monkeypatch.setattr(os_chromium.shutil, "which", lambda name: None)


def test_a_missing_chromium_skips_with_the_install_command(no_chromium, monkeypatch):
    """GIVEN no Chromium and the browser not required WHEN a browser test starts THEN it is
    skipped with `apt-get install -y chromium` in the message."""
    monkeypatch.delenv("EDGESHIFT_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception) as skipped:
        os_chromium.chromium()
    assert "apt-get install -y chromium" in str(skipped.value)


def test_a_missing_chromium_fails_where_the_browser_is_required(no_chromium, monkeypatch):
    """GIVEN no Chromium and EDGESHIFT_REQUIRE_BROWSER=1 WHEN a browser test starts THEN
    it fails, naming the variable and the install command."""
    monkeypatch.setenv("EDGESHIFT_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception) as failed:
        os_chromium.chromium()
    assert "EDGESHIFT_REQUIRE_BROWSER=1" in str(failed.value)
    assert "apt-get install -y chromium" in str(failed.value)


def test_the_os_chromium_is_found_here_when_installed():
    """GIVEN /usr/bin/chromium WHEN looked up THEN that very executable is used."""
    if not os_chromium.CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium on this machine: apt-get install -y chromium")
    assert os_chromium.chromium() == "/usr/bin/chromium"
