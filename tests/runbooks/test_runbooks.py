"""Every runbook, executed: the stack is put into the runbook's situation, then each command
of its ```sh blocks runs in order as a real ``rollout`` subprocess against the local stack,
with the exit status it documents, and the end state it promises is checked.

All runbooks run at once, each on its own host, on one local stack; then each test reads
its runbook's record. A renamed flag, a changed exit status or a wrong end state fails here.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from runbook_blocks import (
    INDEX,
    PLACEHOLDERS,
    RUNBOOKS,
    SECTIONS,
    Runbook,
    UnmarkedBlock,
    parse,
    runbook_paths,
    substitute,
)
from runbook_situations import SITUATIONS, FaultyDatadog, World, inject_faults

from orchestrator.analysis.providers.datadog import HOST_OVERRIDE
from orchestrator.local.stack import LocalStack
from orchestrator.models import RolloutStatus
from orchestrator.service import RolloutService

pytestmark = pytest.mark.integration

COMMAND_TIMEOUT = 90  # seconds; `status --watch` follows a rollout to its end
README = RUNBOOKS.parent / "README.md"
# Shows how the README of the project points at the runbooks index.
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")
# The alarm names (stacks/alarms.py) and lifecycle detail-types (orchestrator/events/bus.py).
ALARMS = ("ExecutionFailed", "RollbackHappened", "RollbackFailed", "SplitMismatch")
ALARMS += ("FlagSyncFailed",)  # stacks/alarms.py watch_flag_sync


@dataclass
class Ran:
    line: str
    expected: int
    returncode: int
    output: str


@dataclass
class Record:
    ran: list[Ran] = field(default_factory=list)
    failure: str = ""


def _bash(line: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    prelude = 'rollout() { "$EDGESHIFT_TEST_PYTHON" -m orchestrator.cli "$@"; }\n'
    return subprocess.run(
        ["bash", "-c", prelude + line],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
        check=False,
    )


def _execute(book: Runbook, world: World, record: Record) -> None:
    situation = SITUATIONS[book.name]
    host = f"{book.name}.rb.edgeshift.test"
    values = situation.setup(world, host)
    cwd = world.workdir / book.name
    cwd.mkdir()
    for name, text in book.files.items():
        (cwd / name).write_text(substitute(text, values))
    env = {
        **os.environ,
        "EDGESHIFT_ENDPOINT_URL": world.stack.endpoint_url,
        "EDGESHIFT_TEST_PYTHON": sys.executable,
        "COLUMNS": "160",
    }
    section = None
    for command in book.commands:
        if command.section != section:
            section = command.section
            if section in situation.before:
                situation.before[section](world, values)
        line = substitute(command.line, values)
        capture = command.capture
        result = _bash(capture[1] if capture else line, env | values, cwd)
        record.ran.append(
            Ran(line, command.expected_exit, result.returncode, result.stdout + result.stderr)
        )
        if capture and result.returncode == 0:
            values[capture[0]] = result.stdout.strip()
    situation.check(world, values)


@pytest.fixture(scope="module")
def records(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Record]]:
    books = [parse(path) for path in runbook_paths()]
    datadog = FaultyDatadog()
    with LocalStack() as stack:
        datadog.endpoint.start()
        os.environ[HOST_OVERRIDE] = datadog.endpoint.url
        service = RolloutService(
            stack.store(), stack.client("stepfunctions"), stack.state_machine_arn
        )
        world = World(stack, service, tmp_path_factory.mktemp("runbooks"), datadog=datadog)
        inject_faults(world)
        results = {book.name: Record() for book in books}

        def run(book: Runbook) -> None:
            try:
                _execute(book, world, results[book.name])
            except Exception:  # reported by the runbook's own test
                results[book.name].failure = traceback.format_exc()

        try:
            with ThreadPoolExecutor(max_workers=len(books)) as pool:
                list(pool.map(run, [b for b in books if b.name in SITUATIONS]))
            yield results
        finally:
            _end_everything(service)
            os.environ.pop(HOST_OVERRIDE, None)
            datadog.endpoint.stop()


def _end_everything(service: RolloutService) -> None:
    """Abort what is still active, so no execution outlives the stack."""
    active = frozenset(s for s in RolloutStatus if not s.is_final)
    rollouts, _ = service.list(statuses=active, limit=100)
    for rollout in rollouts:
        with contextlib.suppress(Exception):  # already ending: fine
            service.abort(rollout.rollout_id, "runbook-tests", "end of test")
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and service.list(statuses=active, limit=100)[0]:
        time.sleep(0.2)


@pytest.mark.parametrize("name", [p.stem for p in runbook_paths()])
def test_runbook_commands_work_as_written(records: dict[str, Record], name: str) -> None:
    """GIVEN the runbook's situation WHEN its commands run in order THEN each exits as
    documented and the documented end state is reached."""
    record = records[name]
    assert not record.failure, record.failure
    assert record.ran, f"{name} has no command the test could run"
    for ran in record.ran:
        assert ran.returncode == ran.expected, (
            f"{name}: `{ran.line}` exited {ran.returncode}, expected {ran.expected}:\n"
            f"{ran.output[-3000:]}"
        )


@pytest.mark.parametrize("path", runbook_paths(), ids=lambda p: p.stem)
def test_every_block_is_marked_and_every_runbook_has_a_situation(path: Path) -> None:
    """Each fence says whether it runs; each runbook has a situation here to run in."""
    book = parse(path)
    assert book.name in SITUATIONS, f"add the situation of {path.name} to runbook_situations"
    for command in book.commands:
        assert command.line.split()[0] in ("rollout",) or command.capture, command.line
        words = re.sub(r'"[^"$]*"', "", command.line.split(" #")[0])
        unknown = set(re.findall(r"\b[A-Z]{2,}\b", words)) - {
            *PLACEHOLDERS,
            *(c.capture[0] for c in book.commands if c.capture),
        }
        assert not unknown, f"{path.name}: `{command.line}` uses unknown placeholders {unknown}"


def test_an_unmarked_block_is_refused(tmp_path: Path) -> None:
    """A ```bash or bare ``` block fails the parse instead of being skipped silently."""
    for fence in ("```", "```bash", "```sh maybe"):
        page = tmp_path / "x.md"
        page.write_text(f"## Checks\n{fence}\nrollout list\n```\n")
        with pytest.raises(UnmarkedBlock):
            parse(page)


@pytest.mark.parametrize("path", runbook_paths(), ids=lambda p: p.stem)
def test_each_runbook_has_every_section_and_names_what_leads_there(path: Path) -> None:
    """Symptoms, checks, decision, actions, verification, escalation; and an alarm or a
    lifecycle event in its symptoms."""
    from orchestrator.events.bus import DETAIL_TYPES

    book = parse(path)
    for section in SECTIONS:
        assert any(h.startswith(section) for h in book.headings), f"{path.name}: no {section}"
    text = path.read_text(encoding="utf-8")
    symptoms = text.split("## Symptoms", 1)[1].split("\n## ", 1)[0]
    leads = [*ALARMS, *DETAIL_TYPES.values()]
    assert any(name in symptoms for name in leads), f"{path.name} names no alarm or event"


def test_the_index_links_every_runbook_and_the_readme_links_the_index() -> None:
    """runbooks/README.md links each runbook; the project README links the index."""
    linked = set(_LINK.findall(INDEX.read_text(encoding="utf-8")))
    assert {p.name for p in runbook_paths()} <= linked
    assert all((RUNBOOKS / name).exists() for name in linked if name.endswith(".md"))
    assert "runbooks/README.md" in _LINK.findall(README.read_text(encoding="utf-8"))


def test_links_between_runbooks_resolve() -> None:
    """A runbook pointing at another points at one that exists."""
    for path in runbook_paths():
        for target in _LINK.findall(path.read_text(encoding="utf-8")):
            if not target.startswith("http"):
                assert (RUNBOOKS / target).exists(), f"{path.name} links missing {target}"
