"""The ``rollout`` command.

Exit status: 0 ok, 2 invalid input, 3 conflict, 4 not found, 1 anything else; failures are
one ``Error: ...`` line on stderr (orchestrator/cli/exits.py).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from .aws import StateMachineNotFound, Target
from .exits import EXIT_CONFLICT, EXIT_INVALID, EXIT_NOT_FOUND, EXIT_OTHER, fail
from .options import Duration
from .steering import actor_or_user, steering_commands
from .summary import ENDPOINT_ENV, follow_rollout, stage_text, status_lines

if TYPE_CHECKING:
    from orchestrator.models import Rollout

FC = TypeVar("FC", bound=Callable[..., Any])


def _interval(flag: str) -> Callable[[FC], FC]:
    return click.option(
        "--interval",
        type=Duration(0.2, 60),
        default="1s",
        show_default=True,
        help=f"Time between two reads with {flag}, e.g. 0.5, 2s, 1m.",
    )


@click.group(epilog="Exit status: 0 ok, 2 invalid input, 3 conflict, 4 not found, 1 other.")
@click.version_option(package_name="edgeshift", prog_name="rollout")
@click.option(
    "--endpoint-url",
    envvar=ENDPOINT_ENV,
    show_envvar=True,
    default=None,
    help="Send every AWS call here, e.g. http://127.0.0.1:4566 for `rollout local up` "
    "(then the region defaults to us-east-1 and no credentials are needed).",
)
@click.option(
    "--region",
    envvar="AWS_REGION",
    show_envvar=True,
    default=None,
    help="AWS region of the tables and the state machine.",
)
@click.option(
    "--state-machine-arn",
    envvar="EDGESHIFT_STATE_MACHINE_ARN",
    show_envvar=True,
    default=None,
    help="The rollout state machine; found by name when left out.",
)
@click.pass_context
def cli(
    ctx: click.Context, endpoint_url: str | None, region: str | None, state_machine_arn: str | None
) -> None:
    """Progressive rollouts for CloudFront: staged weights, bake windows, automatic analysis."""
    ctx.obj = Target(
        endpoint_url, region or ("us-east-1" if endpoint_url else None), state_machine_arn
    )


@cli.command(
    epilog="Exit status with --wait: 0 when the rollout ends PROMOTED, 1 when it ends "
    "ROLLED_BACK or FAILED; without --wait, 0 once it started. Either way 2 for an invalid "
    "or rejected plan, 3 when the target is busy or the idempotency key was used for "
    "another plan, 4 when no state machine is found."
)
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--actor", default=None, help="Who is starting it (recorded in the audit trail).")
@click.option(
    "--wait",
    is_flag=True,
    help="Follow the rollout until it ends, showing its stage, weight and last verdict, and "
    "exit with its outcome once every edge serves the final route (the plan's "
    "analysis.edge_settle, or the edge's routes cache TTL: 5 s deployed; with --json too).",
)
@_interval("--wait")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the rollout's summary as JSON instead of its id; with --wait, one line per change.",
)
@click.option(
    "--idempotency-key",
    default=None,
    help="Retrying with the same key returns the same rollout instead of a second one.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Run even when preflight forecasts that a healthy canary cannot pass a stage within "
    "its bake and extension at the stable fleet's traffic (recorded as a warning).",
)
@click.pass_obj
def start(
    target: Target,
    plan_file: Path,
    actor: str | None,
    wait: bool,
    interval: float,
    as_json: bool,
    idempotency_key: str | None,
    force: bool,
) -> None:
    """Validate PLAN_FILE (YAML or JSON) and start a rollout of it; print its id.

    Nothing is written when the plan is invalid or its target is busy. Before the first
    traffic shift, preflight forecasts from the stable fleet's traffic and noise whether
    each stage can pass in time; if one cannot, the rollout ends before any user sees the
    canary, with the numbers and the bake that would do (unless --force).
    """
    from orchestrator.plans import InvalidPlan, load_plan
    from orchestrator.service import (
        IdempotencyConflict,
        PlanRejected,
        RolloutService,
        rollout_summary,
    )
    from orchestrator.store import TargetLockedError

    try:
        plan = load_plan(plan_file)
    except InvalidPlan as exc:
        fail(str(exc), EXIT_INVALID)
    try:
        service = RolloutService(
            target.store(), target.client("stepfunctions"), target.find_state_machine()
        )
        rollout = service.start(plan, actor_or_user(actor), idempotency_key, force=force)
    except PlanRejected as exc:
        fail(f"plan rejected: {exc}", EXIT_INVALID)
    except (TargetLockedError, IdempotencyConflict) as exc:
        fail(str(exc), EXIT_CONFLICT)
    except StateMachineNotFound as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    if not wait:
        click.echo(json.dumps(rollout_summary(rollout)) if as_json else rollout.rollout_id)
        return
    if not as_json:
        click.echo(rollout.rollout_id)
    try:
        ended = follow_rollout(target, rollout.rollout_id, as_json=as_json, interval=interval)
    except KeyboardInterrupt:
        # Ctrl-C stops the watching, not the rollout: say so, or it reads as an abort.
        rid = rollout.rollout_id
        click.echo(
            f"\nstopped following {rid}; the rollout goes on. Follow it again with "
            f"`rollout status {rid} --watch`, stop it with `rollout abort {rid} --reason ...`",
            err=True,
        )
        sys.exit(EXIT_OTHER)
    try:
        await_edge(ended, interval=interval, quiet=as_json)
    except KeyboardInterrupt:  # the rollout has ended: only the wait for the edge is cut
        click.echo(
            "\nnot waiting for the edge: some viewers may get the last stage's weights for "
            "a few seconds more",
            err=True,
        )
    sys.exit(outcome_status(ended))


LONG_AGO_SETTLES = 10


def await_edge(rollout: Rollout, *, interval: float, quiet: bool) -> None:
    """Hold `start --wait` until every edge serves the route the rollout ended on.

    Each edge container reads the routes table once per its cache TTL, so for that long
    after the final write some viewers still get the last stage's weights: a `curl` right
    after "PROMOTED" could still be answered by the old release, and after a rollback the
    canary could still be served. Exiting once the TTL has passed makes the exit status
    true of what viewers get."""
    from orchestrator.analysis.schedule import edge_settle
    from orchestrator.models import RolloutStatus
    from orchestrator.models.rollout import utcnow

    if rollout.status not in (RolloutStatus.PROMOTED, RolloutStatus.ROLLED_BACK):
        return  # FAILED: the route may not be what the status says; the runbook says how
    settle = edge_settle(rollout.plan.analysis)
    # Following saw the rollout still going at most one interval before it saw it ended,
    # so the final write is at most that old: a clock behind the server's cannot lengthen
    # the wait, nor one ahead (by less than ten settles) skip it.
    # One that ended long before (an idempotent start of a finished rollout) needs none.
    since = (utcnow() - rollout.updated_at).total_seconds()
    if since >= LONG_AGO_SETTLES * settle:
        return
    left = settle - min(max(0.0, since), interval)
    if left <= 0:
        return
    if not quiet:
        click.echo(
            f"waiting {left:.1f} s until every edge serves the final route "
            f"({settle:g} s after its write: the edge's routes cache)",
            err=True,
        )
    time.sleep(left)


def outcome_status(rollout: Rollout) -> int:
    """How `start --wait` exits: 0 only when the canary became the stable release."""
    from orchestrator.models import RolloutStatus

    return 0 if rollout.status is RolloutStatus.PROMOTED else EXIT_OTHER


@cli.command()
@click.argument("rollout_id")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "--watch",
    is_flag=True,
    help="Follow the rollout live until it ends: stages, bake, per-metric evidence, what to "
    "do next. With --json, one JSON line per change.",
)
@_interval("--watch")
@click.pass_obj
def status(target: Target, rollout_id: str, as_json: bool, watch: bool, interval: float) -> None:
    """Show where a rollout stands."""
    from orchestrator.service import rollout_summary
    from orchestrator.store import NotFoundError

    try:
        summary = rollout_summary(target.store().get_rollout(rollout_id))
    except NotFoundError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    if watch:
        follow_rollout(target, rollout_id, as_json=as_json, interval=interval)
    elif as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo("\n".join(status_lines(summary)))


for _command in steering_commands():
    cli.add_command(_command)


@cli.command()
@click.argument("rollout_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per audit event.")
@click.pass_obj
def history(target: Target, rollout_id: str, as_json: bool) -> None:
    """The audit trail: every change, who made it, why, with the analysis evidence."""
    from orchestrator.store import NotFoundError

    store = target.store()
    try:
        store.get_rollout(rollout_id)
    except NotFoundError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    for event in store.events(rollout_id):
        if as_json:
            click.echo(event.model_dump_json())
        else:
            click.echo(
                f"{event.seq:>4} {event.at:%Y-%m-%d %H:%M:%S} {event.kind:<18} "
                f"{event.actor:<24} {event.reason}"
            )


@cli.command("list")
@click.option("--active", is_flag=True, help="Only rollouts that have not ended.")
@click.option("--host", default=None, help="Only rollouts of this host.")
@click.option("--path-rule", default="default", show_default=True, help="With --host.")
@click.option(
    "--limit", type=click.IntRange(1, 100), default=20, show_default=True, help="At most this many."
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_obj
def list_rollouts(
    target: Target, active: bool, host: str | None, path_rule: str, limit: int, as_json: bool
) -> None:
    """Rollouts, newest first."""
    from orchestrator.service import ACTIVE, RolloutService, rollout_summary

    service = RolloutService(target.store(), target.client("stepfunctions"), "")
    rollouts: list[Any] = []
    cursor: str | None = None
    try:
        while len(rollouts) < limit:  # a filtered page may hold fewer than asked for
            page, cursor = service.list(
                host=host,
                path_rule=path_rule,
                statuses=ACTIVE if active else frozenset(),
                limit=limit,
                after=cursor,
            )
            rollouts += page
            if cursor is None:
                break
    except ValueError as exc:
        fail(str(exc), EXIT_INVALID)
    rows = [
        {
            **rollout_summary(r),
            "host": r.plan.target.host,
            "path_rule": r.plan.target.path_rule,
            "canary_version": r.plan.canary.version,
            "created_at": r.created_at.isoformat(),
            "created_by": r.created_by,
        }
        for r in rollouts[:limit]
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    if not rows:
        click.echo("no rollouts" + (" active" if active else "") + (f" for {host}" if host else ""))
        return
    for row in rows:
        click.echo(
            f"{row['rollout_id']}  {row['status']:<17} {row['host']} {row['path_rule']}  "
            f"{row['canary_version']} at {row['canary_weight']:g}% "
            f"({stage_text(row['stage'], row['stages'], row['status'])})  {row['reason']}".rstrip()
        )


@cli.command()
@click.argument("rollout_id")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False, writable=True),
    help="Where to write the PNG.",
)
@click.pass_obj
def report(target: Target, rollout_id: str, out: Path) -> None:
    """Draw the rollout's timeline as a PNG: numbered stages, pauses, the canary's weight and
    each metric against its tolerance and limit, and who decided what and why. Needs
    matplotlib (the report extra)."""
    from orchestrator.store import NotFoundError

    from .report import MissingMatplotlib, draw

    store = target.store()
    try:
        rollout = store.get_rollout(rollout_id)
    except NotFoundError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    try:
        draw(rollout, store.events(rollout_id), out)
    except MissingMatplotlib as exc:
        fail(str(exc), EXIT_OTHER)
    except OSError as exc:
        fail(f"cannot write {out}: {exc}", EXIT_INVALID)
    click.echo(str(out))


from .backtest import backtest  # noqa: E402 - registered after the group exists
from .dashboard import dashboard  # noqa: E402
from .flags import flags  # noqa: E402
from .forecast import forecast  # noqa: E402
from .local import demo, local  # noqa: E402
from .routes import routes  # noqa: E402

cli.add_command(backtest)
cli.add_command(dashboard)
cli.add_command(flags)
cli.add_command(forecast)
cli.add_command(demo)
cli.add_command(local)
cli.add_command(routes)


def main() -> None:
    """Entry point: AWS and connection failures become one line and exit status 1."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        cli(standalone_mode=True)
    except (BotoCoreError, ClientError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(EXIT_OTHER)
