"""The Lambda@Edge bundle: the stdlib `edge` package plus a `config.json` written at build time.

Lambda@Edge forbids environment variables and layers, so the deployment facts (routes table,
its regions) travel inside the zip. Stdlib only, so `make edge-bundle` needs neither CDK nor
Node; the CDK app stages the same tree through `stage()`.

    python -m stacks.bundle --out cdk.out/edge-bundle
"""

from __future__ import annotations

import argparse
import importlib.metadata as metadata
import json
import re
import shutil
import sys
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from edge.config import parse as edge_config_parse

REPO_ROOT = Path(__file__).resolve().parent.parent
EDGE_DIR = REPO_ROOT / "edge"
CDK_JSON = REPO_ROOT / "cdk.json"

# CloudFront's limit for viewer triggers, which share this zip with origin-request.
MAX_ZIP_BYTES = 1_048_576
ZIP_NAME = "edge.zip"
# The bundle for behaviours whose rules route by flag: the same edge code plus LaunchDarkly's
# server SDK and what it requires (all pure Python), which edge.flag_sdk imports lazily.
FLAGS_ZIP_NAME = "edge-flags.zip"
FLAG_SDK = "launchdarkly-server-sdk"
# Trigger -> module in edge/. viewer_response is optional while it is being written.
TRIGGER_MODULES = {
    "ViewerRequest": "viewer_request",
    "OriginRequest": "origin_request",
    "ViewerResponse": "viewer_response",
}
# A fixed timestamp makes the zip byte-for-byte reproducible (zip cannot store 1970).
_EPOCH = (1980, 1, 1, 0, 0, 0)
_SKIP = ("__pycache__", "*.pyc", "tests", "config.json", ".*")


class BundleError(RuntimeError):
    """The bundle cannot be built as Lambda@Edge requires."""


def triggers(edge_dir: Path = EDGE_DIR) -> dict[str, str]:
    """Trigger -> handler string, for every trigger whose module exists in edge/."""
    return {
        trigger: f"edge.{module}.handler"
        for trigger, module in TRIGGER_MODULES.items()
        if (edge_dir / f"{module}.py").is_file()
    }


def edge_config(
    *, table: str, regions: Sequence[str], hosts: Sequence[str] | None = None
) -> dict[str, Any]:
    """The repository's edge tuning (TTL, headers, deadline) with the deployment facts filled in.

    ``hosts`` (from ``edgeshift:hosts``) are the only hosts the edge reads rules for; any
    other Host passes through without a table read. None keeps every host readable, behind
    the edge's bounded cache of hosts without rules.
    """
    config: dict[str, Any] = json.loads((EDGE_DIR / "config.json").read_text())
    # endpoint_url points the local stack at moto; deployed functions use the real endpoints.
    config.update(table=table, regions=list(regions), endpoint_url=None)
    config["hosts"] = None if hosts is None else sorted({h.lower() for h in hosts})
    return config


def variant_header() -> str:
    """The header viewer-request sets; the cache policy must key on exactly this name."""
    header: str = json.loads((EDGE_DIR / "config.json").read_text())["variant_header"]
    return header.lower()


def forwarded_headers() -> list[str]:
    """Headers origin-request and the origin must see: the chosen rule, the viewer's host and
    segment (set by viewer-request), and CloudFront-Viewer-Country, which CloudFront adds only
    when a policy names it, and only after viewer-request (origin-request fills the segment's
    country from it). The origin request policy forwards them, outside the cache key."""
    config = json.loads((EDGE_DIR / "config.json").read_text())
    own = ("rule_header", "host_header", "segment_header")
    return [config[name].lower() for name in own] + ["cloudfront-viewer-country"]


def stage(target: Path, config: Mapping[str, Any], *, flags: bool = False) -> Path:
    """Write `edge/` with `config.json` into `target`; the handlers import as `edge.*`.

    ``flags`` adds the SDK's distributions beside it (the flag-routing bundle).
    """
    edge_config_parse(dict(config))  # a bad or misspelt setting fails the build, not every request
    package = target / "edge"
    shutil.copytree(EDGE_DIR, package, ignore=shutil.ignore_patterns(*_SKIP), dirs_exist_ok=True)
    (package / "config.json").write_text(json.dumps(dict(config), indent=2) + "\n")
    if flags:
        for name, source in sdk_files():
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, destination)
    return package


def sdk_distributions(root: str = FLAG_SDK) -> list[str]:
    """The SDK's distribution and every one it requires (extras left out), as installed."""
    found: list[str] = []
    pending = [root]
    while pending:
        name = pending.pop()
        if name.lower() in (f.lower() for f in found):
            continue
        found.append(name)
        for requirement in metadata.distribution(name).requires or ():
            if "extra ==" in requirement.partition(";")[2]:
                continue
            match = re.match(r"[A-Za-z0-9._-]+", requirement)
            if match:
                pending.append(match.group(0))
    return sorted(found, key=str.lower)


def sdk_files() -> list[tuple[str, Path]]:
    """(name in zip, installed file) for the SDK and its requirements, all pure Python."""
    entries: list[tuple[str, Path]] = []
    for name in sdk_distributions():
        dist = metadata.distribution(name)
        if "Root-Is-Purelib: true" not in (dist.read_text("WHEEL") or ""):
            raise BundleError(f"{name} is not pure Python; the edge runs on python3.12 x86_64")
        for entry in dist.files or ():
            parts = Path(str(entry)).parts
            # Scripts land outside site-packages; bytecode is the build machine's CPython's.
            if parts[0] == ".." or "__pycache__" in parts or str(entry).endswith(".pyc"):
                continue
            entries.append((Path(str(entry)).as_posix(), Path(str(dist.locate_file(entry)))))
    return entries


def zip_files(entries: Iterable[tuple[str, Path]], zip_path: Path) -> Path:
    """Write (name in zip, source file) pairs reproducibly: sorted, fixed times and modes."""
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, source in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source.read_bytes())
    return zip_path


def write_zip(tree: Path, zip_path: Path) -> Path:
    """Zip a staged tree; refuse a zip CloudFront would reject."""
    files = (p for p in tree.rglob("*") if p.is_file() and p != zip_path)
    zip_files(((p.relative_to(tree).as_posix(), p) for p in files), zip_path)
    size = zip_path.stat().st_size
    if size > MAX_ZIP_BYTES:
        raise BundleError(f"{zip_path} is {size} bytes; Lambda@Edge viewer triggers allow 1 MB")
    return zip_path


def build(
    out: Path,
    *,
    table: str,
    regions: Sequence[str],
    hosts: Sequence[str] | None = None,
    flags: bool = False,
) -> Path:
    """Stage the bundle under `out` (cleared first) and zip it to `out/edge.zip`, or with
    ``flags`` to `out/edge-flags.zip` with the SDK in it."""
    if out.exists():
        shutil.rmtree(out)
    tree = out / "tree"
    stage(tree, edge_config(table=table, regions=regions, hosts=hosts), flags=flags)
    return write_zip(tree, out / (FLAGS_ZIP_NAME if flags else ZIP_NAME))


def main(argv: Sequence[str] | None = None) -> int:
    # Imported here so `stage()` stays importable without the app's settings module.
    from stacks.config import ContextError, from_mapping

    parser = argparse.ArgumentParser(prog="python -m stacks.bundle", description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="directory for edge.zip")
    parser.add_argument(
        "--cdk-json", type=Path, default=CDK_JSON, help="where to read the app's context"
    )
    parser.add_argument(
        "--flags", action="store_true", help="build edge-flags.zip, with the LaunchDarkly SDK"
    )
    args = parser.parse_args(argv)
    try:
        context = json.loads(args.cdk_json.read_text()).get("context", {})
        config = from_mapping(context)
        zip_path = build(
            args.out,
            table=config.routes_table_name,
            regions=config.table_regions,
            hosts=config.edge_hosts,
            flags=args.flags,
        )
    except (ContextError, BundleError, OSError, ValueError) as exc:
        print(f"edge bundle: {exc}", file=sys.stderr)
        return 1
    handlers = ", ".join(triggers().values())
    print(f"{zip_path} ({zip_path.stat().st_size} bytes): {handlers}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
