"""Option types the commands share."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import click

from orchestrator.models.durations import parse_duration


# Not ParamType[float]: click is generic only from 8.4 on, and the project allows 8.1.
class Duration(click.ParamType):  # type: ignore[type-arg]
    """Seconds, written as plans write them (``90s``, ``10m``, ``1h30m``) or as a plain
    number of seconds (``0.5``), within ``minimum``..``maximum``.

    The spelling is the plan's own parser, so an option and a plan never disagree about
    what a duration means.
    """

    name = "duration"

    def __init__(self, minimum: float = 0, maximum: float | None = None) -> None:
        self.minimum, self.maximum = minimum, maximum

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            seconds = float(value)
        else:
            try:
                seconds = float(value)  # a bare number may be fractional: 0.5 s
            except (TypeError, ValueError):
                try:
                    seconds = float(parse_duration(value))
                except ValueError as exc:
                    self.fail(str(exc), param, ctx)
        if not math.isfinite(seconds):
            self.fail(f"{value!r} is not a duration", param, ctx)
        if seconds < self.minimum or (self.maximum is not None and seconds > self.maximum):
            upper = f" and {self.maximum:g}" if self.maximum is not None else ""
            within = f"between {self.minimum:g}{upper}" if upper else f"at least {self.minimum:g}"
            self.fail(f"{value!r} is {seconds:g} seconds; it must be {within} seconds", param, ctx)
        return seconds

    def __repr__(self) -> str:
        return "DURATION"


def port_option(*decls: str, default: int, help: str, minimum: int = 0) -> Callable[[Any], Any]:
    """A TCP port on 127.0.0.1; ``minimum`` 0 lets 0 mean any free port."""
    return click.option(
        *decls,
        type=click.IntRange(minimum, 65535),
        default=default,
        show_default=True,
        help=help,
    )
