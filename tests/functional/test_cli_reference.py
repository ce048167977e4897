"""docs/cli.md against the ``rollout`` command's own help: every command and option of the
click tree is documented, with what ``--help`` says about it."""

from __future__ import annotations

import re
from pathlib import Path

import click
from click.testing import CliRunner

from orchestrator.cli.main import cli
from orchestrator.cli.reference import blocks, commands, reference, render_into, walk

ROOT = Path(__file__).parents[2]
PAGE = ROOT / "docs" / "cli.md"
REGENERATE = "python -m orchestrator.cli.reference docs/cli.md"
# A steering command as the pages write it, in a block or inline: global options, the
# verb, a rollout (ID, a shell variable or an id) and the rest of the command.
STEERING_SHOWN = re.compile(
    r"rollout (?:--[\w-]+ \S+ )*(pause|resume|abort|promote|recover) "
    r"(?:ID|\"?\$\w+\"?|r-[\w-]+)(?P<rest>[^`\n]*)"
)


def test_docs_cli_md_is_what_the_help_renders_now() -> None:
    """GIVEN docs/cli.md WHEN its generated blocks are rendered again from the click tree
    THEN nothing changes (an option or command added without regenerating fails here)."""
    text = PAGE.read_text(encoding="utf-8")

    assert set(blocks(text)) == {"commands", "reference"}
    assert render_into(text, cli) == text, f"docs/cli.md is stale: run `{REGENERATE}`"


def test_every_command_and_option_of_the_tree_is_on_the_page() -> None:
    """GIVEN every command of the tree WHEN docs/cli.md is read THEN each command path and
    each of its options appears, and so do the ones once missing."""
    text = PAGE.read_text(encoding="utf-8")
    documented = blocks(text)["reference"]
    sections = dict(re.findall(r"^### `([^`]+)`\n(.*?)(?=^### |\Z)", documented, re.M | re.S))
    for command, ctx in walk(cli, click.Context(cli, info_name="rollout")):
        section = sections[ctx.command_path]
        for param in command.params:
            for opt in (*param.opts, *param.secondary_opts):
                if opt.startswith("-"):
                    cell = re.compile(rf"^\| `[^`]*(?<![\w-]){re.escape(opt)}(?![\w-])", re.M)
                    assert cell.search(section), f"{ctx.command_path} {opt}"
    for once_missing in (
        "`--region TEXT`",
        "`--state-machine-arn TEXT`",
        "EDGESHIFT_ENDPOINT_URL",
        "`--wait`",
        "`--actor TEXT`",
        "`--canary-error-rate FLOAT RANGE`",
        "`--traffic / --no-traffic`",
        "`--seconds DURATION`",
        "`--scenario [",
        "`--provider [cloudwatch\\|datadog]`",
    ):
        assert once_missing in documented, once_missing
    table = blocks(text)["commands"]
    for verb in ("start", "pause", "resume", "abort", "promote", "recover", "demo", "local up"):
        assert f"`rollout {verb} [OPTIONS]" in table, verb


def test_a_command_registered_anywhere_is_picked_up() -> None:
    """GIVEN a group with a command added in another module's way (add_command) WHEN the
    table and reference render THEN the new command and its option are in both."""

    @click.group()
    def root() -> None:
        """Root."""

    @click.command()
    @click.option("--port", type=int, default=8082, show_default=True, help="Where to listen.")
    def dashboard(port: int) -> None:
        """Serve the dashboard."""

    root.add_command(dashboard)

    assert "| `rollout dashboard [OPTIONS]` | Serve the dashboard. |" in commands(root)
    assert "| `--port INTEGER` | Where to listen. [default: 8082] |" in reference(root)


def test_the_page_says_what_rollout_help_says() -> None:
    """GIVEN `rollout start --help` WHEN compared with the page THEN each option line's
    help text is on the page (the page is the help, not a paraphrase of it)."""
    help_text = CliRunner().invoke(cli, ["start", "--help"], terminal_width=10_000).output
    page = " ".join(PAGE.read_text(encoding="utf-8").split())
    option_lines = [line.strip() for line in help_text.splitlines() if line.startswith("  --")]
    assert len(option_lines) >= 6
    for line in option_lines:
        if line.startswith("--help"):
            continue
        said = " ".join(line.split(maxsplit=1)[1].split()) if " " in line else ""
        words = said.split(" ", 1)[1] if said and said.split(" ")[0].isupper() else said
        assert words in page, line


def test_every_steering_command_the_pages_show_gives_a_reason() -> None:
    """GIVEN the README, docs/cli.md and the runbooks (their blocks and their prose) WHEN
    they show a steering command THEN it carries --reason, which every one needs; the one
    exception is a command shown being refused for the lack of it (its Error: follows)."""
    pages = [ROOT / "README.md", PAGE, *sorted((ROOT / "runbooks").glob("*.md"))]
    shown = 0
    for page in pages:
        lines = page.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            for found in STEERING_SHOWN.finditer(line):
                shown += 1
                refused = lines[number + 1 : number + 2] == [
                    f"Error: --reason: required to {found[1]} a rollout (not empty, not only "
                    "spaces): the audit trail records who asked and why"
                ]
                assert "--reason" in found["rest"] or refused, f"{page.name}:{number + 1}"
    assert shown >= 20  # the pattern still finds the commands the pages show
