"""Code assets for the Lambda functions, built without Docker (there is none on CI machines)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

REPO_ROOT = Path(__file__).resolve().parent.parent
EDGE_DIR = REPO_ROOT / "edge"

# An allow-list, so a new top-level folder (or cdk.out, .venv) never leaks into the zip.
_ORCHESTRATOR_ONLY = [
    "*",
    "!orchestrator",
    "!orchestrator/**",
    # Later patterns win, so these also apply inside orchestrator/.
    ".*",
    "**/.*",
    "orchestrator/local",
    "orchestrator/local/**",
    "**/__pycache__",
    "**/*.pyc",
]


def orchestrator_code() -> lambda_.Code:
    """The `orchestrator` package as-is, importable as `orchestrator.*` from the zip root.

    Third-party dependencies (pydantic, powertools, datadog-api-client) are not in it: a
    dependencies layer is a later step, and until then the task functions cannot import them.
    """
    return lambda_.Code.from_asset(str(REPO_ROOT), exclude=_ORCHESTRATOR_ONLY)


def edge_code(*, table: str, regions: Sequence[str]) -> lambda_.Code:
    """The `edge` package with a `config.json` naming the deployed table and its regions.

    Lambda@Edge forbids environment variables, so deployment facts travel inside the zip.
    The hash is taken over the output, so changing a region changes the asset.
    """
    return lambda_.Code.from_asset(
        str(EDGE_DIR),
        asset_hash_type=AssetHashType.OUTPUT,
        bundling=BundlingOptions(
            # Never pulled: the local bundler always succeeds.
            image=DockerImage.from_registry("public.ecr.aws/docker/library/busybox"),
            local=_EdgeBundle(table=table, regions=list(regions)),
        ),
    )


@jsii.implements(ILocalBundling)
class _EdgeBundle:
    def __init__(self, *, table: str, regions: list[str]) -> None:
        self._table = table
        self._regions = regions

    def try_bundle(self, output_dir: str, *_options: Any, **_kwargs: Any) -> bool:
        # The handlers are `edge.viewer_request.handler` etc., so the package sits at the root.
        target = Path(output_dir) / "edge"
        shutil.copytree(
            EDGE_DIR,
            target,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "config.json"),
        )
        # Keep the repository's tuning (TTL, header, timeouts); only the deployment facts change.
        config = json.loads((EDGE_DIR / "config.json").read_text())
        config.update(table=self._table, regions=self._regions, endpoint_url=None)
        (target / "config.json").write_text(json.dumps(config, indent=2) + "\n")
        return True
