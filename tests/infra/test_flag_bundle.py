"""The flag-routing edge bundle: the edge code plus the LaunchDarkly SDK, within CloudFront's
1 MB viewer-trigger limit, and enough on its own (no site-packages) to evaluate a flag; the
stdlib bundle stays without the SDK."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stacks import bundle

PROBE = """
import json, sys
sys.path.insert(0, {tree!r})
from edge import config, flags, rules, viewer_request
flag = {{"key": "f", "version": 1, "on": True, "variations": [True, False],
        "fallthrough": {{"variation": 0}}, "offVariation": 1, "salt": "s"}}
rule = {{"host": "h", "path_rule": "default", "salt": "", "variants": [
    {{"name": "canary", "version": "v2", "weight": 0}},
    {{"name": "stable", "version": "v1", "weight": 10000}}],
    "assignment": {{"provider": "launchdarkly", "flag": "f",
        "context": {{"key_from": "ip_ua"}}, "variations": {{"true": "canary"}},
        "fallback": "stable"}}}}
items = [{{"path_rule": "flag:f", "data": json.dumps(flag)}}]
request = {{"clientIp": "1.2.3.4", "uri": "/", "querystring": "",
           "headers": {{"host": [{{"value": "h"}}]}}}}
decision = viewer_request.decide(request, config.EdgeConfig(),
    rules.RuleCache(lambda h: [rule], ttl_seconds=5), 0.0,
    flag_cache=flags.FlagCache(lambda p: items, ttl_seconds=5))
import ldclient
print(json.dumps({{"variant": decision.headers["x-edgeshift-variant"],
                  "sdk_from": ldclient.__file__}}))
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("bundles")
    common = {"table": "edgeshift-routes", "regions": ["us-east-1"]}
    return {
        "flags": bundle.build(out / "flags", flags=True, **common),
        "stdlib": bundle.build(out / "stdlib", **common),
    }


def test_the_flag_bundle_fits_the_viewer_trigger_limit(built: dict[str, Path]) -> None:
    """GIVEN the flag bundle WHEN built THEN under 1 MB, holding edge/ and ldclient/."""
    names = zipfile.ZipFile(built["flags"]).namelist()

    assert built["flags"].stat().st_size < bundle.MAX_ZIP_BYTES
    assert "edge/flag_sdk.py" in names and "ldclient/client.py" in names
    assert "urllib3/__init__.py" in names


def test_the_stdlib_bundle_carries_no_sdk(built: dict[str, Path]) -> None:
    """GIVEN the stdlib bundle WHEN built THEN only edge code, as before flags existed."""
    names = zipfile.ZipFile(built["stdlib"]).namelist()

    assert all(name.startswith("edge/") for name in names)


def test_the_flag_bundle_evaluates_a_flag_on_its_own(
    built: dict[str, Path], tmp_path: Path
) -> None:
    """GIVEN the flag bundle unzipped WHEN a Python without site-packages routes a
    flag-routed request from it THEN the flag's variant, with the SDK loaded from the zip."""
    tree = tmp_path / "tree"
    zipfile.ZipFile(built["flags"]).extractall(tree)

    out = subprocess.run(
        [sys.executable, "-S", "-c", PROBE.format(tree=str(tree))],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    ).stdout
    found = json.loads(out.strip().splitlines()[-1])

    assert found["variant"] == "canary"
    assert found["sdk_from"].startswith(str(tree))
