"""Reading plan files (YAML or JSON) into a validated ``RolloutPlan``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from orchestrator.models import RolloutPlan

MAX_PLAN_BYTES = 256 * 1024


class InvalidPlan(ValueError):
    """The plan cannot be used; ``problems`` are ``(field path, rule)`` pairs."""

    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.source = source
        self.problems = problems
        listed = "\n".join(f"  {field}: {rule}" for field, rule in problems)
        super().__init__(f"invalid plan {source}:\n{listed}")


def field_path(location: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in location) or "(plan)"


def validation_problems(error: ValidationError) -> list[tuple[str, str]]:
    return [
        (field_path(e["loc"]), problem_message(e["msg"], e["loc"]))
        for e in error.errors(include_url=False)
    ]


def problem_message(message: str, location: tuple[Any, ...] | list[Any]) -> str:
    """pydantic's message, without its "Value error, " prefix for a rule's own words, and
    saying which stage a ``stages.N`` path means: people count stages from 1, as status,
    history and the live view do. ``location`` is from the plan's root (an API body's
    leading "body" is skipped)."""
    message = str(message).removeprefix("Value error, ")
    parts = list(location)[1:] if list(location)[:1] == ["body"] else list(location)
    if len(parts) >= 2 and parts[0] == "stages" and isinstance(parts[1], int):
        message += f" (stage {parts[1] + 1})"
    return message


def parse_plan(text: str, source: str = "<plan>") -> RolloutPlan:
    try:
        document = yaml.safe_load(text)  # JSON is YAML, so one parser reads both
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        raise InvalidPlan(source, [("(file)", f"not valid YAML or JSON{at}")]) from None
    if not isinstance(document, dict):
        raise InvalidPlan(source, [("(file)", "must hold a mapping with target, stages, ...")])
    try:
        return RolloutPlan.model_validate(document)
    except ValidationError as exc:
        raise InvalidPlan(source, validation_problems(exc)) from None


def load_plan(path: Path) -> RolloutPlan:
    try:
        size = path.stat().st_size
        if size > MAX_PLAN_BYTES:
            raise InvalidPlan(str(path), [("(file)", f"{size} bytes; at most {MAX_PLAN_BYTES}")])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPlan(str(path), [("(file)", f"cannot be read: {exc}")]) from None
    return parse_plan(text, str(path))
