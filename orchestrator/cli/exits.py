"""Exit statuses and the one error style of the ``rollout`` command.

Every failure is click's own: ``Error: <what and why>`` on stderr, then the exit status
(0 ok, 1 anything else, 2 invalid input, 3 conflict, 4 not found), so usage errors that
click reports itself and errors the commands report read the same.
"""

from __future__ import annotations

from typing import NoReturn

import click

EXIT_OTHER, EXIT_INVALID, EXIT_CONFLICT, EXIT_NOT_FOUND = 1, 2, 3, 4


class CommandFailed(click.ClickException):
    """A command's own failure, shown by click as ``Error: ...`` with its exit status."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        # click declares exit_code per class; it reads it from the instance when it exits.
        self.exit_code = exit_code  # type: ignore[misc]


def fail(message: str, code: int) -> NoReturn:
    raise CommandFailed(message, code)
