"""Reading runbooks: their sections, fenced blocks and the commands in them.

A block is ```` ```sh ```` (run by the test, line by line), ```` ```sh no-run ```` (needs
real AWS; only checked for being marked) or ```` ```yaml file=NAME ```` (written to NAME
before the commands run). Any other fence is an error: every block must say what it is.
A command line may end with ``# exits N`` when a non-zero status is what it documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"
INDEX = RUNBOOKS / "README.md"
PLACEHOLDERS = ("ID", "HOST", "PLAN")
SECTIONS = ("Symptoms", "Checks", "Decision", "Actions", "Verification", "Escalation")

_FENCE = re.compile(r"^```(.*)$")
_EXITS = re.compile(r"#\s*exits\s+(\d+)")
_CAPTURE = re.compile(r"^([A-Z][A-Z0-9_]*)=\$\((.*)\)$")


class UnmarkedBlock(ValueError):
    pass


@dataclass(frozen=True)
class Command:
    section: str
    line: str
    expected_exit: int = 0

    @property
    def capture(self) -> tuple[str, str] | None:
        """``NAME=$(command)``: the variable and the command whose output it keeps."""
        found = _CAPTURE.match(self.line.split(" #", 1)[0].strip())
        return (found[1], found[2]) if found else None


@dataclass
class Runbook:
    path: Path
    headings: list[str] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    no_run: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.stem


def runbook_paths() -> list[Path]:
    return sorted(p for p in RUNBOOKS.glob("*.md") if p != INDEX)


def parse(path: Path) -> Runbook:
    book = Runbook(path)
    section, fence, body = "", None, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = _FENCE.match(line.strip())
        if fence is None and match:
            fence, body = match[1].strip(), []
            if not _known(fence):
                raise UnmarkedBlock(
                    f"{path.name}:{number}: a ``` block must be ```sh (run by the test), "
                    f"```sh no-run or ```yaml file=NAME; got ```{fence}"
                )
            continue
        if fence is not None and match and not match[1].strip():
            _close(book, section, fence, body)
            fence = None
            continue
        if fence is not None:
            body.append(line)
        elif line.startswith("## "):
            section = line[3:].strip()
            book.headings.append(section)
    if fence is not None:
        raise UnmarkedBlock(f"{path.name}: a ``` block is never closed")
    return book


def _known(info: str) -> bool:
    return info in ("sh", "sh no-run") or bool(re.fullmatch(r"yaml file=[\w.-]+", info))


def _close(book: Runbook, section: str, fence: str, body: list[str]) -> None:
    if fence.startswith("yaml"):
        book.files[fence.split("=", 1)[1]] = "\n".join(body) + "\n"
        return
    lines = _joined(body)
    if fence == "sh no-run":
        book.no_run += lines
        return
    for line in lines:
        exits = _EXITS.search(line)
        book.commands.append(Command(section, line, int(exits[1]) if exits else 0))


def _joined(body: list[str]) -> list[str]:
    """Command lines, with backslash continuations joined and comment lines dropped."""
    lines: list[str] = []
    pending = ""
    for raw in body:
        text = raw.strip()
        if not pending and (not text or text.startswith("#")):
            continue
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        lines.append(pending + text)
        pending = ""
    if pending:
        lines.append(pending.strip())
    return lines


def substitute(text: str, values: dict[str, str]) -> str:
    for name in PLACEHOLDERS:
        if name in values:
            text = re.sub(rf"\b{name}\b", values[name], text)
    return text
