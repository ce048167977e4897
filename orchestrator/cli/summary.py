"""How the commands show one rollout: its status lines, and following it to its end."""

from __future__ import annotations

import json
import os
import time
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from orchestrator.models import Rollout

    from .aws import Target


def stage_text(stage: int, stages: int, status: str | None = None) -> str:
    """``stage i/n``; a rollout whose first stage is not applied yet (stage 0 in the JSON
    summary) is ``before stage 1/n``, not a stage 0 no plan has; an ended one ``ended in
    stage i/n``: the stage it ended in, not one it is at (a promote from stage 2 of 3 has
    no 3rd)."""
    from orchestrator.models import RolloutStatus

    ended = status is not None and RolloutStatus(status).is_final
    if stage < 1:
        return f"{'ended ' if ended else ''}before stage 1/{stages}"
    return f"{'ended in ' if ended else ''}stage {stage}/{stages}"


def status_lines(summary: dict[str, Any]) -> list[str]:
    """``ID: STATUS, stage i/n, canary w%  reason``, and the pending request if any."""
    where = stage_text(summary["stage"], summary["stages"], summary["status"])
    lines = [
        f"{summary['rollout_id']}: {summary['status']}, {where}, "
        f"canary {summary['canary_weight']:g}%  {summary['reason']}".rstrip()
    ]
    if control := summary["control"]:
        why = f": {control['reason']}" if control.get("reason") else ""
        lines.append(
            f"pending: {control['action']} by {control['actor']}{why} "
            "(carried out at the next decision point)"
        )
    return lines


ENDPOINT_ENV = "EDGESHIFT_ENDPOINT_URL"  # the root command's --endpoint-url envvar
LOG_WIDTH = 140


def follow_rollout(target: Target, rollout_id: str, *, as_json: bool, interval: float) -> Rollout:
    """Follow a rollout until it ends and return it: the live screen on a terminal (one line
    per audit event elsewhere), or with ``as_json`` one summary line per change."""
    from rich.console import Console

    from orchestrator.service import rollout_summary

    from .watch import follow

    store = target.store()
    if as_json:
        last: dict[str, Any] | None = None
        while True:
            rollout = store.get_rollout(rollout_id)
            if (summary := rollout_summary(rollout)) != last:
                click.echo(json.dumps(summary))
                last = summary
            if rollout.status.is_final:
                return rollout
            time.sleep(interval)
    # The next commands it suggests need --endpoint-url only when the environment lacks it.
    named = target.endpoint_url and target.endpoint_url != os.environ.get(ENDPOINT_ENV)
    command = "rollout" + (f" --endpoint-url {target.endpoint_url}" if named else "")
    console = Console()
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        # A pipe or a CI log has no width to keep to, and rich's 80 columns cut the
        # metric table's columns short.
        console = Console(width=LOG_WIDTH)
    return follow(
        lambda: (store.get_rollout(rollout_id), store.events(rollout_id)),
        console,
        interval=interval,
        command=command,
    )
