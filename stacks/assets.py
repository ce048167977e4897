"""Code assets for the Lambda functions, built without Docker (there is none on CI machines).

Dependencies of the task, API and event functions, decided and measured (this machine):

- `pip install --target` at synth needs the package index: not offline, so not here.
- Copying the build venv wholesale does not work: pydantic-core and PyYAML are compiled for the
  venv's CPython (3.11 here), and the functions run python3.12.
- So: powertools and pydantic (with its compiled core) come from the Powertools team's public
  layer, built per runtime and architecture and resolved at deploy time from its public SSM
  parameter (no version number baked into the template, no network at synth). What that layer
  lacks is pure Python (datadog-api-client, python-dateutil, six, certifi): those wheels are
  `py3-none-any`, so their installed files are copied from the build venv into a second layer.
  Measured: ~9,900 files, 26 MB unzipped, 9 MB zipped; zipping takes ~2.5 s, so the zip is
  cached by content (see `vendored_layer_zip`) and a synth only copies one file.
  urllib3 and typing-extensions are not copied: the runtime's botocore and the Powertools layer
  already carry versions they were tested with, and a second copy would shadow them.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as metadata
import os
import shutil
import threading
from pathlib import Path, PurePosixPath
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from stacks import bundle

REPO_ROOT = bundle.REPO_ROOT
ORCHESTRATOR_DIR = REPO_ROOT / "orchestrator"
RUNTIME = lambda_.Runtime.PYTHON_3_12
ARCHITECTURE = lambda_.Architecture.X86_64
# Pure-Python distributions the orchestrator needs beyond the runtime and Powertools' layer.
# LaunchDarkly's server SDK (and what it requires beyond urllib3) is for the flag sync.
VENDORED = (
    "datadog-api-client",
    "python-dateutil",
    "six",
    "certifi",
    "launchdarkly-server-sdk",
    "launchdarkly-eventsource",
    "semver",
    "pyRFC3339",
)
POWERTOOLS_PARAMETER = "/aws/service/powertools/python/x86_64/python3.12/{version}"

# Left out of the task zip: the embedded local stack (moto, HTTP servers) and build litter.
_NOT_DEPLOYED = ("local", "dashboard", "__pycache__", "*.pyc", ".*")  # runs on a laptop only
# Never pulled: the local bundlers below always succeed, but CDK requires an image.
_UNUSED_IMAGE = DockerImage.from_registry("public.ecr.aws/docker/library/busybox")


def orchestrator_code() -> lambda_.Code:
    """The `orchestrator` package, importable as `orchestrator.*` from the zip root.

    Staged by copying the package rather than by excluding the rest of the repository: an
    exclude list makes CDK walk .venv and cdk.out on every synth (tens of seconds).
    """
    return lambda_.Code.from_asset(
        str(ORCHESTRATOR_DIR),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            image=_UNUSED_IMAGE, local=_PackageCopy(ORCHESTRATOR_DIR, bundle.EDGE_DIR)
        ),
    )


def edge_code(
    *,
    table: str,
    regions: list[str] | tuple[str, ...],
    hosts: tuple[str, ...] | None = None,
    flags: bool = False,
) -> lambda_.Code:
    """The `edge` package with a `config.json` naming the deployed table, regions and hosts;
    with ``flags``, LaunchDarkly's SDK beside it (``stacks.bundle``'s flag bundle).

    The hash is taken over the output, so changing a region changes the asset (and so
    publishes a new function version).
    """
    config = bundle.edge_config(table=table, regions=regions, hosts=hosts)
    return lambda_.Code.from_asset(
        str(bundle.EDGE_DIR),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(image=_UNUSED_IMAGE, local=_EdgeBundle(config, flags=flags)),
    )


def dependency_layers(scope: Construct, *, powertools_version: str) -> list[lambda_.ILayerVersion]:
    """Powertools' public layer, then the vendored pure-Python one (see the module docstring)."""
    arn = ssm.StringParameter.value_for_string_parameter(
        scope, POWERTOOLS_PARAMETER.format(version=powertools_version)
    )
    powertools = lambda_.LayerVersion.from_layer_version_arn(scope, "PowertoolsLayer", arn)
    vendored = lambda_.LayerVersion(
        scope,
        "VendoredLayer",
        description="edgeshift: pure-Python dependencies (" + ", ".join(VENDORED) + ")",
        compatible_runtimes=[RUNTIME],
        compatible_architectures=[ARCHITECTURE],
        code=lambda_.Code.from_asset(str(vendored_layer_zip(VENDORED))),
    )
    return [powertools, vendored]


def vendored_layer_zip(names: tuple[str, ...], cache_dir: Path | None = None) -> Path:
    """A layer zip (`python/...`) of installed pure-Python distributions, cached by content.

    The zip is reproducible, so its name (a hash of every file it holds) is also its identity:
    later synths reuse it instead of re-zipping ~10,000 files.
    """
    entries = _vendored_files(names)
    digest = hashlib.sha256()
    for name, source in sorted(entries):
        stat = source.stat()
        digest.update(f"{name}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    zip_path = (cache_dir or _cache_dir()) / f"vendored-{digest.hexdigest()[:24]}.zip"
    if not zip_path.is_file():
        # Each process (and thread) writes its own partial file: two synths at once (a
        # test run beside `make synth`) must not write one file together. The rename is
        # atomic, and both zips are the same bytes, so whichever lands last is right.
        partial = zip_path.with_name(
            f"{zip_path.stem}.{os.getpid()}.{threading.get_ident()}.partial"
        )
        try:
            bundle.zip_files(entries, partial)
            partial.replace(zip_path)
        finally:
            partial.unlink(missing_ok=True)  # a failed zip leaves nothing behind
    return zip_path


def _vendored_files(names: tuple[str, ...]) -> list[tuple[str, Path]]:
    entries: list[tuple[str, Path]] = []
    for name in names:
        dist = metadata.distribution(name)
        if "Root-Is-Purelib: true" not in (dist.read_text("WHEEL") or ""):
            raise RuntimeError(f"{name} is not pure Python; it cannot be copied into a layer")
        for entry in dist.files or ():
            relative = PurePosixPath(str(entry))
            # Scripts land outside site-packages (../../bin); bytecode is the venv's CPython's.
            if relative.parts[0] == ".." or "__pycache__" in relative.parts:
                continue
            entries.append((f"python/{relative}", Path(str(dist.locate_file(entry)))))
    return entries


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "edgeshift" / "layers"


@jsii.implements(ILocalBundling)
class _EdgeBundle:
    def __init__(self, config: dict[str, Any], *, flags: bool = False) -> None:
        self._config = config
        self._flags = flags

    def try_bundle(self, output_dir: str, *_options: Any, **_kwargs: Any) -> bool:
        bundle.stage(Path(output_dir), self._config, flags=self._flags)
        return True


@jsii.implements(ILocalBundling)
class _PackageCopy:
    # The route model calls the edge's own rule checks (orchestrator/models/route.py) and
    # the flag store names the edge's flag items, so `edge` ships beside `orchestrator`.
    def __init__(self, *packages: Path) -> None:
        self._packages = packages

    def try_bundle(self, output_dir: str, *_options: Any, **_kwargs: Any) -> bool:
        for package in self._packages:
            shutil.copytree(
                package,
                Path(output_dir) / package.name,
                ignore=shutil.ignore_patterns(*_NOT_DEPLOYED),
                dirs_exist_ok=True,
            )
        return True
