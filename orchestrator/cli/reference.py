"""docs/cli.md's command table and option reference, written from click's own help.

Every command of the ``rollout`` tree is walked, so a command or option added anywhere (in
its own module, registered in main.py) shows up without anyone listing it; a test holds
docs/cli.md equal to what this renders. Regenerate with
``python -m orchestrator.cli.reference docs/cli.md``.
"""

from __future__ import annotations

import inspect
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

_BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[a-z]+) [^>]*-->\n)"
    r"(?P<body>.*?)"
    r"(<!-- end generated: (?P=name) -->)",
    re.DOTALL,
)


def walk(
    command: click.Command, ctx: click.Context
) -> Iterator[tuple[click.Command, click.Context]]:
    """The command and every subcommand below it, depth first, in click's listing order."""
    yield command, ctx
    if isinstance(command, click.Group):
        for name in command.list_commands(ctx):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                yield from walk(sub, click.Context(sub, info_name=name, parent=ctx))


def _leaves(root: click.Command) -> Iterator[tuple[click.Command, click.Context]]:
    for command, ctx in walk(root, click.Context(root, info_name="rollout")):
        if not isinstance(command, click.Group):
            yield command, ctx


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _usage(command: click.Command, ctx: click.Context) -> str:
    return " ".join([ctx.command_path, *command.collect_usage_pieces(ctx)])


def _help(command: click.Command) -> str:
    text = inspect.cleandoc(command.help or "").split("\f")[0]
    return text.replace("\b\n", "").strip()


def commands(root: click.Command) -> str:
    """One row per command that runs something, with its one-line summary."""
    rows = ["| command | what it does |", "|---|---|"]
    for command, ctx in _leaves(root):
        rows.append(f"| `{_usage(command, ctx)}` | {_cell(command.get_short_help_str(200))} |")
    return "\n".join(rows) + "\n"


def _options(command: click.Command, ctx: click.Context) -> list[str]:
    rows = []
    for param in command.get_params(ctx):
        record = param.get_help_record(ctx) if isinstance(param, click.Option) else None
        if record is None or "--help" in param.opts:
            continue
        rows.append(f"| `{_cell(record[0])}` | {_cell(record[1])} |")
    return ["| option | meaning |", "|---|---|", *rows] if rows else []


def reference(root: click.Command) -> str:
    """Every group and command: usage, help, options (with defaults and environment
    variables, as ``--help`` shows them) and the epilog."""
    parts: list[str] = []
    for command, ctx in walk(root, click.Context(root, info_name="rollout")):
        parts += [f"### `{ctx.command_path}`", "", "```text", _usage(command, ctx), "```", ""]
        if help_text := _help(command):
            parts += [help_text, ""]
        if options := _options(command, ctx):
            parts += [*options, ""]
        if command.epilog:
            parts += [" ".join(command.epilog.split()), ""]
    return "\n".join(parts)


RENDERERS: dict[str, Callable[[click.Command], str]] = {
    "commands": commands,
    "reference": reference,
}


def render_into(text: str, root: click.Command) -> str:
    """``text`` with each generated block replaced by what it renders now."""

    def fill(match: re.Match[str]) -> str:
        body = RENDERERS[match["name"]](root)
        return f"{match.group(1)}{body}{match.group(4)}"

    return _BLOCK.sub(fill, text)


def blocks(text: str) -> dict[str, str]:
    """The generated blocks a page holds, by name."""
    return {match["name"]: match["body"] for match in _BLOCK.finditer(text)}


def main(argv: list[str] | None = None) -> None:
    from .main import cli

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m orchestrator.cli.reference docs/cli.md")
    page = Path(args[0])
    page.write_text(render_into(page.read_text(encoding="utf-8"), cli), encoding="utf-8")


if __name__ == "__main__":
    main()
