"""The ``rollout`` command.

Exit status: 0 ok, 2 invalid input, 3 conflict, 4 not found, 1 anything else.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from .aws import StateMachineNotFound, Target

EXIT_INVALID, EXIT_CONFLICT, EXIT_NOT_FOUND = 2, 3, 4


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group()
@click.option(
    "--endpoint-url",
    envvar="EDGESHIFT_ENDPOINT_URL",
    default=None,
    help="Send every AWS call here, e.g. http://127.0.0.1:4566 for `rollout local up`. "
    "[env: EDGESHIFT_ENDPOINT_URL]",
)
@click.option("--region", envvar="AWS_REGION", default=None, help="AWS region. [env: AWS_REGION]")
@click.option(
    "--state-machine-arn",
    envvar="EDGESHIFT_STATE_MACHINE_ARN",
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


@cli.command()
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--actor", default=None, help="Who is starting it (recorded in the audit trail).")
@click.option("--wait", is_flag=True, help="Follow the rollout until it ends.")
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
    idempotency_key: str | None,
    force: bool,
) -> None:
    """Validate PLAN_FILE (YAML or JSON) and start a rollout of it.

    Nothing is written when the plan is invalid or its target is busy. Before the first
    traffic shift, preflight forecasts from the stable fleet's traffic and noise whether
    each stage can pass in time; if one cannot, the rollout ends before any user sees the
    canary, with the numbers and the bake that would do (unless --force).
    """
    import getpass

    from orchestrator.plans import InvalidPlan, load_plan
    from orchestrator.service import IdempotencyConflict, PlanRejected, RolloutService
    from orchestrator.store import TargetLockedError

    try:
        plan = load_plan(plan_file)
    except InvalidPlan as exc:
        _fail(str(exc), EXIT_INVALID)
    try:
        service = RolloutService(
            target.store(), target.client("stepfunctions"), target.find_state_machine()
        )
        rollout = service.start(
            plan, actor or f"cli:{getpass.getuser()}", idempotency_key, force=force
        )
    except PlanRejected as exc:
        _fail(f"plan rejected: {exc}", EXIT_INVALID)
    except (TargetLockedError, IdempotencyConflict) as exc:
        _fail(str(exc), EXIT_CONFLICT)
    except StateMachineNotFound as exc:
        _fail(str(exc), EXIT_NOT_FOUND)
    click.echo(rollout.rollout_id)
    if wait:
        _wait(service, rollout.rollout_id)


def _wait(service: Any, rollout_id: str) -> None:
    from orchestrator.service import rollout_summary

    while not (rollout := service.get(rollout_id)).status.is_final:
        time.sleep(1)
    click.echo(json.dumps(rollout_summary(rollout)))


@cli.command()
@click.argument("rollout_id")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "--watch",
    is_flag=True,
    help="Follow the rollout live until it ends: stages, bake, per-metric evidence, what to "
    "do next. With --json, one JSON line per change.",
)
@click.option(
    "--interval",
    type=click.FloatRange(0.2, 60),
    default=1.0,
    show_default=True,
    help="Seconds between two reads with --watch.",
)
@click.pass_obj
def status(target: Target, rollout_id: str, as_json: bool, watch: bool, interval: float) -> None:
    """Show where a rollout stands."""
    from orchestrator.service import rollout_summary
    from orchestrator.store import NotFoundError

    try:
        summary = rollout_summary(target.store().get_rollout(rollout_id))
    except NotFoundError as exc:
        _fail(str(exc), EXIT_NOT_FOUND)
    if watch:
        _watch(target, rollout_id, as_json, interval)
    elif as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"{summary['rollout_id']}: {summary['status']}, stage {summary['stage']}/"
            f"{summary['stages']}, canary {summary['canary_weight']:g}%  {summary['reason']}"
        )
        if control := summary["control"]:
            why = f": {control['reason']}" if control.get("reason") else ""
            click.echo(
                f"pending: {control['action']} by {control['actor']}{why} "
                "(carried out at the next decision point)"
            )


def _watch(target: Target, rollout_id: str, as_json: bool, interval: float) -> None:
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
                return
            time.sleep(interval)
    command = "rollout" + (f" --endpoint-url {target.endpoint_url}" if target.endpoint_url else "")
    follow(
        lambda: (store.get_rollout(rollout_id), store.events(rollout_id)),
        Console(),
        interval=interval,
        command=command,
    )


def _actor(actor: str | None) -> str:
    import getpass

    return actor or f"cli:{getpass.getuser()}"


def _steer(target: Target, verb: str, rollout_id: str, actor: str | None, reason: str) -> None:
    """Run one control command with the documented exit statuses."""
    from orchestrator.service import ControlRefused, RolloutService, rollout_summary
    from orchestrator.store import NotFoundError, StaleWriteError

    service = RolloutService(
        target.store(), target.client("stepfunctions"), "", target.client("events")
    )
    try:
        rollout = getattr(service, verb)(rollout_id, _actor(actor), reason)
    except NotFoundError as exc:
        _fail(str(exc), EXIT_NOT_FOUND)
    except (ControlRefused, StaleWriteError) as exc:
        _fail(f"{verb} refused: {exc}", EXIT_CONFLICT)
    except ValueError as exc:
        _fail(str(exc), EXIT_INVALID)
    click.echo(json.dumps(rollout_summary(rollout)))


_ACTOR = click.option("--actor", default=None, help="Who asks (recorded in the audit trail).")


# The steering commands: (verb, reason required, what it does). One shape, one service call.
_STEERING = (
    ("pause", False, "Hold traffic at the current weights from the next decision point on."),
    ("resume", False, "Go on after a pause, or approve a stage that waits for approval."),
    (
        "abort",
        True,
        "Roll back now: stable for everyone (at once when paused, else at the next look).",
    ),
    (
        "promote",
        True,
        "Skip the remaining stages: the canary becomes the stable release for everyone.",
    ),
    (
        "recover",
        True,
        "Finish by hand a FAILED rollback, or a rollout whose execution was stopped: "
        "stable for everyone, then free the target.",
    ),
)


def _steering_command(verb: str, reason_required: bool, summary: str) -> click.Command:
    # A required option gets no default at all: click 8.3+ counts an explicit default of
    # None as a value, and the command would run without a reason.
    reason = (
        click.option("--reason", required=True, help="Why (required; recorded in the audit trail).")
        if reason_required
        else click.option("--reason", default="", help="Why (recorded in the audit trail).")
    )

    @click.argument("rollout_id")
    @reason
    @_ACTOR
    @click.pass_obj
    def command(target: Target, rollout_id: str, reason: str, actor: str | None) -> None:
        _steer(target, verb, rollout_id, actor, reason)

    return click.command(name=verb, help=summary)(command)


for _verb, _required, _summary in _STEERING:
    cli.add_command(_steering_command(_verb, _required, _summary))


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
        _fail(str(exc), EXIT_NOT_FOUND)
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
        _fail(str(exc), EXIT_INVALID)
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
            f"{row['canary_version']} at {row['canary_weight']:g}% (stage {row['stage']}/"
            f"{row['stages']})  {row['reason']}".rstrip()
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
    """Draw the rollout's timeline as a PNG: the canary's weight over time and each metric
    for canary and baseline, with the decisions marked. Needs matplotlib (the report extra)."""
    from orchestrator.store import NotFoundError

    from .report import MissingMatplotlib, draw

    store = target.store()
    try:
        rollout = store.get_rollout(rollout_id)
    except NotFoundError as exc:
        _fail(str(exc), EXIT_NOT_FOUND)
    try:
        draw(rollout, store.events(rollout_id), out)
    except MissingMatplotlib as exc:
        _fail(str(exc), 1)
    except OSError as exc:
        _fail(f"cannot write {out}: {exc}", EXIT_INVALID)
    click.echo(str(out))


from .backtest import backtest  # noqa: E402 - registered after the group exists
from .flags import flags  # noqa: E402
from .forecast import forecast  # noqa: E402
from .local import demo, local  # noqa: E402
from .routes import routes  # noqa: E402

cli.add_command(backtest)
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
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
