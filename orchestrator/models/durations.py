"""Durations written the way people write them in plans: ``90s``, ``10m``, ``3h``, ``1h30m``."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

# Units largest first, each at most once: 1d12h, 1h30m, 2m30s. A bare number is seconds.
_UNITS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_PIECE = re.compile(r"(\d+)([a-z]*)|(.)")
_FORMS = "seconds, or a string like '90s', '10m', '3h', '1h30m' (units d, h, m, s, largest first)"
MAX_DIGITS = 9  # per part: more is a typo, and keeps a duration far inside an int


def parse_duration(value: object) -> int:
    """Return whole seconds; a bare number means seconds."""
    if isinstance(value, bool):
        raise ValueError(f"a duration is {_FORMS}, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        return _parse_text(value)
    raise ValueError(f"{value!r} is not a duration: use {_FORMS}")


def _parse_text(value: str) -> int:
    text = value.strip().replace(" ", "")
    if not text:
        raise ValueError(f"an empty string is not a duration: use {_FORMS}")
    pieces = [m.groups() for m in _PIECE.finditer(text)]
    if len(pieces) == 1 and pieces[0][1] == "":  # a bare number: seconds
        return _number(value, pieces[0][0] or "")
    bad = f"{value!r} is not a duration"
    strays = [stray for _, _, stray in pieces if stray is not None]
    if strays:
        raise ValueError(f"{bad}: {strays[0]!r} is not allowed; use {_FORMS}")
    total, order = 0, list(_UNITS)
    seen = -1
    for number, unit, _ in pieces:
        if unit == "":
            raise ValueError(f"{bad}: {number} needs a unit (d, h, m or s)")
        if unit not in _UNITS:
            raise ValueError(f"{bad}: unknown unit {unit!r}; use d, h, m or s")
        if order.index(unit) <= seen:
            raise ValueError(f"{bad}: units go largest first (d, h, m, s), each once")
        seen = order.index(unit)
        total += _number(value, number) * _UNITS[unit]
    return total


def _number(value: str, digits: str) -> int:
    if len(digits) > MAX_DIGITS:
        raise ValueError(f"{value!r} is not a duration: at most {MAX_DIGITS} digits per unit")
    return int(digits)


def format_duration(seconds: int) -> str:
    """The shortest exact spelling, so plans round-trip through their own notation."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


Duration = Annotated[int, BeforeValidator(parse_duration)]
