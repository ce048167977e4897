"""``rollout routes get HOST`` and ``rollout routes put FILE``: a host's routing rules.

A routes file (YAML or JSON) holds one rule, a list of rules, or ``{host, rules: [...]}``
(rules may then leave out ``host``). Every rule is validated as ``RouteRule`` before
anything is written; a problem names its field path (``rules.0.variants.1.weight``) and
exits 2. A rule whose target has an active rollout is refused (exit 3): the rollout owns
its route until it ends, and the write goes through the service, which checks the target's
lock in the write's own transaction (as ``PUT /routes/{host}`` does). A rule that gives
``revision`` is written only if the stored rule is still at that revision, so ``routes get
--json``, edit, ``routes put`` is safe. All the file's rules are written in one
transaction: all of them, or none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .aws import Target
from .exits import EXIT_CONFLICT, EXIT_INVALID, EXIT_NOT_FOUND, fail

if TYPE_CHECKING:
    from orchestrator.models import RouteRule

MAX_ROUTES_BYTES = 256 * 1024


class InvalidRoutes(ValueError):
    def __init__(self, source: str, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        listed = "\n".join(f"  {field}: {rule}" for field, rule in problems)
        super().__init__(f"invalid routes {source}:\n{listed}")


def parse_routes(text: str, source: str = "<routes>") -> list[RouteRule]:
    """Validated rules of one host, or ``InvalidRoutes`` naming every problem."""
    import yaml
    from pydantic import ValidationError

    from orchestrator.models import RouteRule
    from orchestrator.plans import field_path, problem_message

    try:
        document = yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise InvalidRoutes(source, [("(file)", f"not valid YAML or JSON{at}")]) from None
    entries, prefix, host = _entries(document, source)
    rules: list[RouteRule] = []
    problems: list[tuple[str, str]] = []
    for index, entry in enumerate(entries):
        where: tuple[int | str, ...] = (*prefix, index) if prefix is not None else ()
        if not isinstance(entry, dict):
            problems.append((field_path(where) or "(rule)", "must be a mapping"))
            continue
        if host is not None:
            entry = {"host": host, **entry}
        try:
            rules.append(RouteRule.model_validate(entry))
        except ValidationError as exc:
            problems += [
                (field_path((*where, *e["loc"])), problem_message(e["msg"], e["loc"]))
                for e in exc.errors(include_url=False)
            ]
    if not problems:  # rules that failed validation already say why; don't add "no rules"
        problems = _consistency(rules, host)
    if problems:
        raise InvalidRoutes(source, problems)
    return rules


def _entries(
    document: Any, source: str
) -> tuple[list[Any], tuple[int | str, ...] | None, str | None]:
    """The rule documents, the field path they sit under, and the host named at the top."""
    if isinstance(document, list):
        return document, (), None
    if isinstance(document, dict) and "rules" in document:
        unknown = sorted(set(document) - {"host", "rules"})
        if unknown:
            raise InvalidRoutes(source, [(str(unknown[0]), "unknown field; expected host, rules")])
        rules, host = document["rules"], document.get("host")
        if not isinstance(rules, list) or not rules:
            raise InvalidRoutes(source, [("rules", "must be a non-empty list of rules")])
        if host is not None and not isinstance(host, str):
            raise InvalidRoutes(source, [("host", "must be a string")])
        return rules, ("rules",), host
    if isinstance(document, dict):
        return [document], None, None
    raise InvalidRoutes(source, [("(file)", "must hold a rule, a list of rules or {host, rules}")])


def _consistency(rules: list[RouteRule], host: str | None) -> list[tuple[str, str]]:
    if not rules:
        return [] if host is not None else [("(file)", "holds no rules")]
    hosts = sorted({rule.host for rule in rules})
    if len(hosts) > 1:
        return [("host", f"a routes file is for one host, got {hosts}")]
    seen: set[str] = set()
    for rule in rules:
        if rule.path_rule in seen:
            return [("path_rule", f"{rule.path_rule!r} appears twice")]
        seen.add(rule.path_rule)
    return []


def load_routes(path: Path) -> list[RouteRule]:
    try:
        size = path.stat().st_size
        if size > MAX_ROUTES_BYTES:
            too_big = f"{size} bytes; at most {MAX_ROUTES_BYTES}"
            raise InvalidRoutes(str(path), [("(file)", too_big)])
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidRoutes(str(path), [("(file)", f"cannot be read: {exc}")]) from None
    return parse_routes(text, str(path))


@click.group()
def routes() -> None:
    """A host's routing rules: what the edge reads to split traffic."""


@routes.command("get")
@click.argument("host")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.pass_obj
def get_routes(target: Target, host: str, as_json: bool) -> None:
    """Show HOST's rules, with each variant's version and weight."""
    rules = target.store().get_routes(host)
    if not rules:
        fail(f"no routes for {host}", EXIT_NOT_FOUND)
    if as_json:
        click.echo(json.dumps([rule.model_dump(mode="json", exclude_none=True) for rule in rules]))
        return
    for rule in rules:
        owner = f", last written by rollout {rule.rollout_id}" if rule.rollout_id else ""
        click.echo(f"{rule.host} {rule.path_rule}  (revision {rule.revision}{owner})")
        if (flag := rule.assignment) is not None:  # the flag chooses; the weights are unused
            click.echo(f"  routed by flag {flag.flag}: {flag.variations}, else {flag.fallback}")
        for variant in rule.variants:
            actions = ", ".join(name for name, value in variant.actions if value is not None)
            click.echo(
                f"  {variant.name:<12} {variant.version:<16} {variant.weight / 100:>6g}%"
                + (f"  {actions}" if actions else "")
            )


@routes.command("put")
@click.argument("routes_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--actor", default=None, help="Who changes it (recorded in the audit trail).")
@click.option("--reason", default="", help="Why (recorded in the audit trail).")
@click.pass_obj
def put_routes(target: Target, routes_file: Path, actor: str | None, reason: str) -> None:
    """Define or replace a host's rules from ROUTES_FILE (YAML or JSON).

    All rules are checked first; nothing is written when any is invalid (exit 2) or when
    its target has an active rollout or was changed meanwhile (exit 3). Rules of the host
    that the file leaves out are kept.
    """
    import getpass

    from orchestrator.service import RolloutService
    from orchestrator.store import StaleRouteError, TargetLockedError

    try:
        rules = load_routes(routes_file)
    except InvalidRoutes as exc:
        fail(str(exc), EXIT_INVALID)
    store = target.store()
    current = {rule.path_rule: rule for rule in store.get_routes(rules[0].host)}
    for rule in rules:
        stored = current.get(rule.path_rule)
        at_revision = stored.revision if stored else 0
        if "revision" in rule.model_fields_set and rule.revision != at_revision:
            at = stored.revision if stored else "none (new rule)"
            fail(
                f"{rule.host} {rule.path_rule}: the file is for revision {rule.revision}, "
                f"the stored rule is at {at}; get it again and reapply your change",
                EXIT_CONFLICT,
            )
    who = actor or f"cli:{getpass.getuser()}"
    expected = [
        (rule, current[rule.path_rule].revision if rule.path_rule in current else None)
        for rule in rules
    ]
    service = RolloutService(store, None, "")  # type: ignore[arg-type]  # routes need no SFN
    try:  # all rules in one transaction: a conflict on one writes none
        written = service.define_routes(rules[0].host, expected, who, reason or "routes put")
    except TargetLockedError as exc:
        held = f"active rollout {exc.holder}" if exc.holder else "an active rollout"
        fail(f"{exc.target} belongs to {held}; wait for it to end or abort it", EXIT_CONFLICT)
    except StaleRouteError as exc:
        fail(str(exc), EXIT_CONFLICT)
    except ValueError as exc:  # e.g. a flag-routed rule whose flag has no data
        fail(str(exc), EXIT_INVALID)
    for rule in written:
        verb = "replaced" if rule.path_rule in current else "created"
        click.echo(f"{rule.host} {rule.path_rule}: {verb}, revision {rule.revision}")
