"""The README's local walkthrough, run as written, twice: `rollout local up` in its own
process, then the README's commands in a shell with its `export`, against it.

The first life of the stack promotes v2, refuses the same plan again (the route serves v2
now), rolls v2 out to v3 with the README's `sed` line, and serves v3; stopped and started
again, the stack begins afresh and the first plan runs again.

There bakes are shortened (3 s) and the counts are synthetic (`MetricsFeeder`, started
with `--no-traffic`), so each rollout takes seconds; everything else is the README's. One
more run takes examples/plan.yaml as it is, judged on `local up`'s own simulated viewers.
"""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml

from orchestrator.local.feeder import MetricsFeeder, constant
from orchestrator.local.site import DEMO_HOST
from orchestrator.store import Store, TableNames

pytestmark = pytest.mark.integration

ROOT = Path(__file__).parents[2]
README = ROOT / "README.md"
STARTUP_TIMEOUT = 180
COMMAND_TIMEOUT = 120
_PRELUDE = 'rollout() { "$EDGESHIFT_TEST_PYTHON" -m orchestrator.cli "$@"; }\n'
_LOCAL_UP = (
    *(sys.executable, "-m", "orchestrator.cli", "local", "up"),
    *("--aws-port", "0", "--cdn-port", "0", "--api-port", "0"),
)
PLAN = "examples/plan.yaml"


def _walkthrough_blocks() -> list[list[str]]:
    """The ```sh blocks of the README's "The local stack by hand", as command lines."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## The local stack by hand", 1)[1].split("\n## ", 1)[0]
    return [block.strip().splitlines() for block in re.findall(r"```sh\n(.*?)```", section, re.S)]


@contextlib.contextmanager
def _local_up(*options: str) -> Iterator[dict[str, str]]:
    """`rollout local up` on free ports in a process of its own; its printed URLs."""
    process = subprocess.Popen(
        [*_LOCAL_UP, *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(
        target=lambda: [lines.put(line) for line in process.stdout or ()], daemon=True
    ).start()
    urls: dict[str, str] = {}
    seen: list[str] = []
    _LOGS[id(urls)] = lines
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while "state machine" not in urls:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            seen.append(line)
            name, sep, value = line.partition(":")
            if sep and name in ("AWS endpoint", "CloudFront emulator", "state machine"):
                urls[name] = value.split()[0]
        yield urls
    except queue.Empty:
        pytest.fail("rollout local up did not start:\n" + "".join(seen))
    finally:
        process.send_signal(signal.SIGINT)  # Ctrl-C, as the README says
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


_LOGS: dict[int, queue.Queue[str]] = {}


def _printed(urls: dict[str, str]) -> str:
    """What that `rollout local up` printed since it started (its edge's warnings among it),
    for a failure message."""
    lines = _LOGS[id(urls)]
    printed = []
    while not lines.empty():
        printed.append(lines.get_nowait())
    return "".join(printed[-40:])


class Shell:
    """README lines run one by one in bash, `export`s carried from line to line, the
    README's ports and plan replaced by the test's."""

    def __init__(self, cwd: Path, replace: dict[str, str]) -> None:
        self.cwd, self.replace, self.exports = cwd, replace, ""

    def run(self, line: str, expected: int = 0) -> subprocess.CompletedProcess[str]:
        for written, actual in self.replace.items():
            line = line.replace(written, actual)
        if line.startswith("export "):
            self.exports += line + "\n"
        result = subprocess.run(
            ["bash", "-c", _PRELUDE + self.exports + line],
            cwd=self.cwd,
            env={**os.environ, "EDGESHIFT_TEST_PYTHON": sys.executable, "COLUMNS": "160"},
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )
        output = result.stdout + result.stderr
        assert result.returncode == expected, f"`{line}` exited {result.returncode}:\n{output}"
        return result


def _short_plan(tmp_path: Path) -> Path:
    """examples/plan.yaml with 3-second bakes and 1-second looks."""
    plan = yaml.safe_load((ROOT / "examples" / "plan.yaml").read_text(encoding="utf-8"))
    plan["stages"] = [{"weight": w, "bake": "3s", "interval": "1s"} for w in (10, 50, 100)]
    path = tmp_path / "short-plan.yaml"
    path.write_text(yaml.safe_dump(plan, sort_keys=False), encoding="utf-8")
    return path


@contextlib.contextmanager
def _counts(endpoint: str) -> Iterator[None]:
    """Synthetic per-variant counts for the demo host (a healthy canary)."""
    session = boto3.Session(
        aws_access_key_id="local", aws_secret_access_key="local", region_name="us-east-1"
    )
    store = Store(session.client("dynamodb", endpoint_url=endpoint), TableNames())
    cloudwatch = session.client("cloudwatch", endpoint_url=endpoint)
    feeder = MetricsFeeder(store, cloudwatch, DEMO_HOST, constant(0.005), max_seconds=300)
    feeder.start()
    try:
        yield
    finally:
        feeder.stop()


def _served(shell: Shell, curl: str) -> str:
    """The release the README's curl line gets from the CloudFront emulator."""
    headers = shell.run(curl).stdout
    match = re.search(r"^x-release:\s*(\S+)", headers, re.I | re.M)
    assert match, headers
    return match.group(1)


def _first_life(shell: Shell, walkthrough: list[str], again: list[str]) -> None:
    curl = next(line for line in walkthrough if line.startswith("curl"))
    for line in walkthrough:
        if "<rollout-id>" in line:
            continue
        out = shell.run(line).stdout
        if line.startswith("rollout start"):
            rollout_id = out.splitlines()[0]
            assert "PROMOTED" in shell.run(f"rollout status {rollout_id}").stdout
    assert _served(shell, curl) == "v2"
    refused = shell.run(f"rollout start {PLAN}", expected=2)
    assert "stable.version" in refused.stderr, refused.stderr
    for line in again:
        shell.run(line)
    assert (shell.cwd / "plan-v3.yaml").exists()
    assert _served(shell, curl) == "v3"


def test_the_readme_walkthrough_runs_twice(tmp_path: Path) -> None:
    """GIVEN the README's walkthrough WHEN run against `rollout local up`, then run again
    after a promotion (v2 -> v3, as the README says) and after a restart THEN every rollout
    is PROMOTED and the emulator serves the release each one promoted."""
    blocks = _walkthrough_blocks()
    assert blocks[0][0].startswith(".venv/bin/rollout local up")
    walkthrough, again = blocks[1], blocks[2]
    assert any(line.startswith("export EDGESHIFT_ENDPOINT_URL=") for line in walkthrough)
    assert any(line.startswith("sed ") for line in again)
    plan = str(_short_plan(tmp_path))

    for life in (1, 2):
        cwd = tmp_path / f"life-{life}"
        cwd.mkdir()
        with _local_up("--no-traffic") as urls, _counts(urls["AWS endpoint"]):
            shell = Shell(
                cwd,
                {
                    "http://127.0.0.1:4566": urls["AWS endpoint"],
                    "http://127.0.0.1:8080": urls["CloudFront emulator"],
                    PLAN: plan,
                },
            )
            if life == 1:
                _first_life(shell, walkthrough, again)
            else:  # afresh: v1 stable again, so the first plan runs as it did
                for line in walkthrough:
                    if "<rollout-id>" not in line:
                        shell.run(line)
                curl = next(line for line in walkthrough if line.startswith("curl"))
                assert _served(shell, curl) == "v2"


@pytest.mark.alone  # local up's viewers must reach their rate for the verdict in its bake
def test_examples_plan_as_written_promotes_on_local_ups_own_viewers(tmp_path: Path) -> None:
    """GIVEN `rollout local up` with its simulated viewers WHEN the README's commands start
    examples/plan.yaml as it is THEN preflight lets it run, it is PROMOTED (exit 0) and
    the emulator serves v2."""
    walkthrough = _walkthrough_blocks()[1]
    with _local_up() as urls:
        shell = Shell(
            tmp_path,
            {
                "http://127.0.0.1:4566": urls["AWS endpoint"],
                "http://127.0.0.1:8080": urls["CloudFront emulator"],
                PLAN: str(ROOT / PLAN),
            },
        )
        for line in walkthrough:
            if "<rollout-id>" not in line:
                shell.run(line)
        curl = next(line for line in walkthrough if line.startswith("curl"))
        served = _served(shell, curl)
        assert served == "v2", _printed(urls)
