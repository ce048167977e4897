"""`python -m stacks.bundle` and the vendored dependencies layer, both built offline."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from stacks import bundle
from stacks.assets import VENDORED, vendored_layer_zip
from stacks.config import ROUTES_TABLE_NAME

from .cfn import REPO_ROOT, default_context

pytestmark = pytest.mark.infra


def _run_cli(out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stacks.bundle", "--out", str(out), *extra],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_edge_bundle_cli_writes_a_small_zip_with_the_deployed_config(tmp_path: Path) -> None:
    """The zip holds the edge package, every trigger module and config naming the table."""
    result = _run_cli(tmp_path / "bundle")
    assert result.returncode == 0, result.stderr
    zip_path = tmp_path / "bundle" / bundle.ZIP_NAME
    assert zip_path.stat().st_size < bundle.MAX_ZIP_BYTES
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        config = json.loads(archive.read("edge/config.json"))
    assert {f"edge/{m}.py" for m in ("viewer_request", "origin_request")} <= names
    assert all(name.startswith("edge/") and "__pycache__" not in name for name in names)
    assert config["table"] == ROUTES_TABLE_NAME
    context = default_context()
    assert config["regions"] == [
        context["edgeshift:primaryRegion"],
        *context["edgeshift:replicaRegions"],
    ]
    assert config["endpoint_url"] is None


def test_edge_bundle_is_reproducible(tmp_path: Path) -> None:
    """Two builds of the same tree are byte-for-byte equal (fixed times and order)."""
    first = bundle.build(tmp_path / "a", table="t", regions=["us-east-1"]).read_bytes()
    second = bundle.build(tmp_path / "b", table="t", regions=["us-east-1"]).read_bytes()
    assert first == second


def test_edge_bundle_cli_names_the_bad_context_key(tmp_path: Path) -> None:
    """A cdk.json with a bad replica region stops the bundle and names the key."""
    cdk_json = tmp_path / "cdk.json"
    context = {**default_context(), "edgeshift:replicaRegions": ["moon-1"]}
    cdk_json.write_text(json.dumps({"context": context}))
    result = _run_cli(tmp_path / "bundle", "--cdk-json", str(cdk_json))
    assert result.returncode == 1
    assert "edgeshift:replicaRegions" in result.stderr


def test_oversized_bundle_is_refused(tmp_path: Path) -> None:
    """A zip over CloudFront's 1 MB limit for viewer triggers is an error, not a deploy."""
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "blob.bin").write_bytes(__import__("os").urandom(bundle.MAX_ZIP_BYTES + 1))
    with pytest.raises(bundle.BundleError, match="1 MB"):
        bundle.write_zip(tree, tmp_path / "big.zip")


def test_vendored_layer_is_pure_python_under_python(tmp_path: Path) -> None:
    """The layer zip has datadog-api-client under python/, no bytecode, nothing compiled."""
    zip_path = vendored_layer_zip(VENDORED, cache_dir=tmp_path)
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
    assert all(name.startswith("python/") for name in names)
    assert "python/datadog_api_client/__init__.py" in names
    assert not [n for n in names if n.endswith((".so", ".pyc")) or "__pycache__" in n]
    # Provided by the runtime and the Powertools layer; a second copy would shadow them.
    assert not [n for n in names if n.startswith(("python/pydantic", "python/urllib3/"))]
    assert vendored_layer_zip(VENDORED, cache_dir=tmp_path) == zip_path
