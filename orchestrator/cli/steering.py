"""``rollout pause|resume|abort|promote|recover``: requests on a rollout.

One shape and one service call each. Each needs ``--reason``, as the API and the
dashboard do: every change is audited with who asked and why, so a missing or blank one is
refused (exit 2) before anything is read or sent. The request is data on the rollout: the
workflow carries it out at its next decision point (at once when parked), so the command
says what was asked and where the rollout stands now; ``--json`` prints the rollout's
summary.
"""

from __future__ import annotations

import getpass
import json
from datetime import UTC
from typing import TYPE_CHECKING

import click

from .aws import Target
from .exits import EXIT_CONFLICT, EXIT_INVALID, EXIT_NOT_FOUND, fail
from .summary import status_lines

if TYPE_CHECKING:
    from orchestrator.service import RolloutService

# (verb, what it does, what the command did: (still pending, carried out))
STEERING = (
    (
        "pause",
        "Hold traffic at the current weights from the next decision point on.",
        ("pause requested", "paused"),
    ),
    (
        "resume",
        "Go on after a pause, or approve a stage that waits for approval.",
        ("resume requested", "resumed"),
    ),
    (
        "abort",
        "Roll back now: stable for everyone (at once when paused, else at the next look).",
        ("abort requested", "aborting"),
    ),
    (
        "promote",
        "Skip the remaining stages: the canary becomes the stable release for everyone.",
        ("promotion requested", "promoting"),
    ),
    (
        "recover",
        "Finish by hand a FAILED rollback, or a rollout whose execution was stopped: "
        "stable for everyone, then free the target.",
        ("recovery requested", "recovered"),
    ),
)


def actor_or_user(actor: str | None) -> str:
    return actor or f"cli:{getpass.getuser()}"


def required_reason(verb: str, reason: str | None) -> str:
    """The reason as given, or the command fails before anything is read or sent: every
    change to a rollout is audited with who asked and why, as the API and the dashboard
    require too (blank is what str.strip() leaves empty, the API's own test)."""
    from orchestrator.service import MAX_REASON

    if reason is None or not reason.strip():
        fail(
            f"--reason: required to {verb} a rollout (not empty, not only spaces): "
            "the audit trail records who asked and why",
            EXIT_INVALID,
        )
    if len(reason) > MAX_REASON:
        fail(f"--reason: at most {MAX_REASON} characters, got {len(reason)}", EXIT_INVALID)
    return reason


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
    except ControlRefused as exc:
        fail(refusal(service, verb, rollout_id, exc), EXIT_CONFLICT)
    except StaleWriteError as exc:
        fail(f"{verb} refused: {exc}", EXIT_CONFLICT)
    except ValueError as exc:
        fail(str(exc), EXIT_INVALID)
    summary = rollout_summary(rollout)
    if as_json:
        click.echo(json.dumps(summary))
        return
    pending, done = next(said for name, _, said in STEERING if name == verb)
    lead = pending if summary["control"] else done
    click.echo(f"{lead}: " + "\n".join(status_lines(summary)))


def refusal(service: RolloutService, verb: str, rollout_id: str, exc: Exception) -> str:
    """Why a request was refused, in words a person can act on. The service refuses a
    second request while one is pending (one at a time, carried out at the next decision
    point); that refusal names the pending request by who and when instead of reading as
    a bare conflict, and says whether this very request is already the one pending."""
    from botocore.exceptions import BotoCoreError, ClientError

    from orchestrator.models import ControlAction
    from orchestrator.store import StoreError

    try:
        pending = service.get(rollout_id).control
    except (StoreError, BotoCoreError, ClientError):  # only the wording depends on this read
        pending = None
    # The service's words for that refusal (RolloutService._request); any other refusal,
    # or a request carried out meanwhile, keeps the service's own message.
    if pending is None or str(exc) != f"a {pending.action} request by {pending.actor} is pending":
        return f"{verb} refused: {exc}"
    asked = f"asked by {pending.actor} at {pending.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    asked += f": {pending.reason}" if pending.reason else ""
    carried = "the workflow carries it out at its next decision point"
    if pending.action.value == verb:
        return f"a {verb} is already pending for {rollout_id} ({asked}); {carried}"
    message = f"{verb} refused: a {pending.action} is pending for {rollout_id} ({asked}); {carried}"
    if pending.action is ControlAction.PAUSE:
        message += f", or withdraw it first with `rollout resume {rollout_id} --reason ...`"
    return message


def steering_command(verb: str, summary: str) -> click.Command:
    # Not click's required=True: its "Missing option" would let a blank reason through
    # and read differently; required_reason refuses both in the one Error: style.
    @click.argument("rollout_id")
    @click.option(
        "--reason",
        default=None,
        help="Why (required, not blank; recorded in the audit trail with who asked).",
    )
    @click.option("--actor", default=None, help="Who asks (recorded in the audit trail).")
    @click.option("--json", "as_json", is_flag=True, help="Print the rollout's summary as JSON.")
    @click.pass_obj
    def command(
        target: Target, rollout_id: str, reason: str | None, actor: str | None, as_json: bool
    ) -> None:
        steer(target, verb, rollout_id, actor, required_reason(verb, reason), as_json)

    return click.command(name=verb, help=summary)(command)


def steering_commands() -> list[click.Command]:
    return [steering_command(verb, help) for verb, help, _ in STEERING]
