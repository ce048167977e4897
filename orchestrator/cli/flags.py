"""``rollout flags sync --from-file FLAGS.json``: load flag data where the edge reads it.

The file is in the LaunchDarkly SDK's file-data-source format (``flags``, ``segments``,
``flagValues``; JSON or YAML) and is read by the SDK's own file data source, so a file the
SDK would reject is refused here with its reason (exit 2). Unknown flag or segment fields
are refused too, and so is data that cannot serve the flag-routed rules already stored: a
rule whose flag is missing, or whose ``variations`` maps a value the flag cannot take, and
so is a flag or segment too big for one table item (400 KB). Nothing is written then.
Otherwise every changed flag and segment is written with a conditional write and an audit
event, and items no longer in the file are deleted (``--keep-missing`` keeps them). For the
local stack and for CI without an SDK key; in AWS the scheduled sync function
(``orchestrator.flags.sync``) does the same from LaunchDarkly.
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from .aws import Target
from .exits import EXIT_CONFLICT, EXIT_INVALID, fail


@click.group()
def flags() -> None:
    """Flag data for flag-routed rules."""


@flags.command("sync")
@click.option(
    "--from-file",
    "flags_file",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Flag data in the SDK's file-data-source format (JSON or YAML).",
)
@click.option("--keep-missing", is_flag=True, help="Keep stored flags the file leaves out.")
@click.option("--actor", default=None, help="Who syncs (recorded in the audit trail).")
@click.pass_obj
def sync(target: Target, flags_file: Path, keep_missing: bool, actor: str | None) -> None:
    """Check the --from-file flag data and write its flags and segments to the routes table.

    Refused (exit 2, naming the flag, segment or rule; nothing written) when the SDK's file
    data source rejects the file, a flag or segment has an unknown field or is too big for
    a table item, or the data cannot serve a stored flag-routed rule (its flag, a value its
    variations map, a prerequisite or a matched segment missing). Exit 3 when another sync
    changed the data meanwhile. Stored flags the file leaves out are deleted unless
    --keep-missing.
    """
    import getpass

    from orchestrator.flags import (
        FlagDataError,
        FlagStore,
        StaleFlagError,
        UnservedRules,
        load_file,
        size_problems,
    )

    try:
        data = load_file(flags_file)
    except FlagDataError as exc:
        fail(f"{flags_file}: {exc}", EXIT_INVALID)
    too_big = size_problems(data)
    if too_big:
        fail(f"{flags_file}:\n  " + "\n  ".join(too_big), EXIT_INVALID)
    store = FlagStore(target.client("dynamodb"))
    try:  # with --keep-missing the stored flags the file leaves out stay, and serve rules too
        result = store.sync(
            data,
            actor=actor or f"cli:{getpass.getuser()}",
            source=f"file {flags_file.name}",
            prune=not keep_missing,
        )
    except UnservedRules as exc:
        fail(
            f"{flags_file} cannot serve the flag-routed rules:\n  " + "\n  ".join(exc.problems),
            EXIT_INVALID,
        )
    except StaleFlagError as exc:
        fail(str(exc), EXIT_CONFLICT)
    click.echo(
        f"{len(data.flags)} flags, {len(data.segments)} segments: {len(result.written)} written, "
        f"{len(result.deleted)} deleted, {result.unchanged} unchanged"
    )


@flags.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object: items and rules.")
@click.pass_obj
def list_flags(target: Target, as_json: bool) -> None:
    """Show the flag data the edge reads, and whether each flag-routed rule is served by it.

    Each flag and segment with LaunchDarkly's version, the item's revision and when a sync
    last changed it; then each flag-routed rule, "ok" or why its viewers get the fallback.
    """
    from orchestrator.flags import FlagStore, rule_problems
    from orchestrator.flags.store import readable

    store = FlagStore(target.client("dynamodb"))
    stored = store.stored()
    items = [
        {
            "item": name,
            "version": item.get("version"),
            "revision": item.get("revision"),
            "synced_at": item.get("synced_at"),
            "source": item.get("source"),
            # Not JSON the edge can read: it leaves the item out, as if it were not there.
            "unreadable": readable(item) is None,
        }
        for name, item in sorted(stored.items())
    ]
    data = store.data()
    rules = []
    for rule in store.flag_routed_rules():
        problems = rule_problems([rule], data)
        assert rule.assignment is not None
        rules.append(
            {
                "host": rule.host,
                "path_rule": rule.path_rule,
                "flag": rule.assignment.flag,
                "fallback": rule.assignment.fallback,
                "status": "; ".join(
                    problem.removeprefix(f"{rule.host} {rule.path_rule}: ") for problem in problems
                )
                or "ok",
            }
        )
    if as_json:
        click.echo(json.dumps({"items": items, "rules": rules}))
        return
    if not items:
        click.echo("no flag data: every flag-routed rule serves its fallback")
    for row in items:
        click.echo(
            f"{row['item']}  version {row['version']}  revision {row['revision']}  "
            f"synced {row['synced_at']} from {row['source']}"
            + ("  UNREADABLE (the edge ignores it; sync again)" if row["unreadable"] else "")
        )
    for row in rules:
        click.echo(f"rule {row['host']} {row['path_rule']} (flag {row['flag']}): {row['status']}")
