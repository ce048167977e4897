"""``rollout pause|resume|abort|promote|recover``: requests on a rollout.

One shape and one service call each. The request is data on the rollout: the workflow
carries it out at its next decision point (at once when parked), so the command says what
was asked and where the rollout stands now; ``--json`` prints the rollout's summary.
"""

from __future__ import annotations

import getpass
import json

import click

from .aws import Target
from .exits import EXIT_CONFLICT, EXIT_INVALID, EXIT_NOT_FOUND, fail
from .summary import status_lines

# (verb, reason required, what it does, what the command did: (still pending, carried out))
STEERING = (
    (
        "pause",
        False,
        "Hold traffic at the current weights from the next decision point on.",
        ("pause requested", "paused"),
    ),
    (
        "resume",
        False,
        "Go on after a pause, or approve a stage that waits for approval.",
        ("resume requested", "resumed"),
    ),
    (
        "abort",
        True,
        "Roll back now: stable for everyone (at once when paused, else at the next look).",
        ("abort requested", "aborting"),
    ),
    (
        "promote",
        True,
        "Skip the remaining stages: the canary becomes the stable release for everyone.",
        ("promotion requested", "promoting"),
    ),
    (
        "recover",
        True,
        "Finish by hand a FAILED rollback, or a rollout whose execution was stopped: "
        "stable for everyone, then free the target.",
        ("recovery requested", "recovered"),
    ),
)


def actor_or_user(actor: str | None) -> str:
    return actor or f"cli:{getpass.getuser()}"


def steer(
    target: Target, verb: str, rollout_id: str, actor: str | None, reason: str, as_json: bool
) -> None:
    """Run one control command with the documented exit statuses."""
    from orchestrator.service import ControlRefused, RolloutService, rollout_summary
    from orchestrator.store import NotFoundError, StaleWriteError

    service = RolloutService(
        target.store(), target.client("stepfunctions"), "", target.client("events")
    )
    try:
        rollout = getattr(service, verb)(rollout_id, actor_or_user(actor), reason)
    except NotFoundError as exc:
        fail(str(exc), EXIT_NOT_FOUND)
    except (ControlRefused, StaleWriteError) as exc:
        fail(f"{verb} refused: {exc}", EXIT_CONFLICT)
    except ValueError as exc:
        fail(str(exc), EXIT_INVALID)
    summary = rollout_summary(rollout)
    if as_json:
        click.echo(json.dumps(summary))
        return
    pending, done = next(said for name, _, _, said in STEERING if name == verb)
    lead = pending if summary["control"] else done
    click.echo(f"{lead}: " + "\n".join(status_lines(summary)))


def steering_command(verb: str, reason_required: bool, summary: str) -> click.Command:
    # A required option gets no default at all: click 8.3+ counts an explicit default of
    # None as a value, and the command would run without a reason.
    reason = (
        click.option("--reason", required=True, help="Why (required; recorded in the audit trail).")
        if reason_required
        else click.option("--reason", default="", help="Why (recorded in the audit trail).")
    )

    @click.argument("rollout_id")
    @reason
    @click.option("--actor", default=None, help="Who asks (recorded in the audit trail).")
    @click.option("--json", "as_json", is_flag=True, help="Print the rollout's summary as JSON.")
    @click.pass_obj
    def command(
        target: Target, rollout_id: str, reason: str, actor: str | None, as_json: bool
    ) -> None:
        steer(target, verb, rollout_id, actor, reason, as_json)

    return click.command(name=verb, help=summary)(command)


def steering_commands() -> list[click.Command]:
    return [steering_command(verb, required, help) for verb, required, help, _ in STEERING]
