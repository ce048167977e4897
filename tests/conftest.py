"""Every test session runs the local stack's functions under their deployed IAM policies,
timeouts and memory sizes.

The policies are read from the synthesized CDK template the first time a local stack starts
(tests that never start one never synthesize); a call a function's role does not allow is
answered with AccessDeniedException, as in AWS, and recorded (see orchestrator/local/iam.py).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pytest

from orchestrator.local import limits
from orchestrator.local.iam import ACCOUNT, REGION, DeployedIam, Statements


def deployed_policies() -> Mapping[str, Statements]:
    from infra.cfn import synthesize  # tests/ is on sys.path: the same module infra uses

    from stacks.policies import function_policies

    template = synthesize().orchestrator.to_json()
    return function_policies(template, account=ACCOUNT, region=REGION)


@pytest.fixture(scope="session", autouse=True)
def deployed_iam() -> Iterator[DeployedIam]:
    enforcer = DeployedIam(deployed_policies)
    enforcer.install()
    yield enforcer
    enforcer.uninstall()


def deployed_limits() -> Mapping[str, limits.FunctionLimits]:
    from infra.cfn import synthesize

    return limits.limits_from_template(synthesize().orchestrator.to_json())


@pytest.fixture(scope="session", autouse=True)
def deployed_function_limits() -> Iterator[None]:
    """Local stacks register each function with the synthesized Timeout and MemorySize."""
    with limits.synthesized(deployed_limits):
        yield


# `make test` runs the suite in worker processes (pytest-xdist). A test marked `alone` is
# bound by the cores and by clocks at once (sixty rollouts in one process against the
# deployed 30 s task timeout, `rollout local up` judging its own simulated viewers):
# sharing the cores with other workers makes its tasks time out or its verdicts late. So
# while it runs, no other test does: every other test takes its turn through a shared
# lock, and `alone` tests hold it exclusively, from the first one's setup to the teardown
# of the last one in a row of their module. A gate in front of the lock lets the waiting
# `alone` test in before the other workers' next tests, and they are collected first, so
# they mostly run before anything else has started. Without workers, nothing runs beside
# anything anyway.
class Turns:
    def __init__(self, base: Path) -> None:
        self._gate = open(f"{base}.gate", "a")  # noqa: SIM115 (held for the session)
        self._lock = open(f"{base}.lock", "a")  # noqa: SIM115
        self.alone = False

    def take_alone(self) -> None:
        if self.alone:
            return
        fcntl.flock(self._gate, fcntl.LOCK_EX)  # no other test starts from now on
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX)  # and those running have ended
        except BaseException:  # pytest-timeout's alarm: let the others go on
            fcntl.flock(self._gate, fcntl.LOCK_UN)
            raise
        self.alone = True

    def give_back(self) -> None:
        fcntl.flock(self._lock, fcntl.LOCK_UN)
        fcntl.flock(self._gate, fcntl.LOCK_UN)
        self.alone = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        fcntl.flock(self._gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_SH)
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)


TURNS = pytest.StashKey[Turns]()
TURNS_DIR = "EDGESHIFT_TEST_TURNS_DIR"  # the run's lock files; the workers inherit it


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker
        if TURNS_DIR in os.environ:
            config.stash[TURNS] = Turns(Path(os.environ[TURNS_DIR]) / "turns")
    elif config.pluginmanager.hasplugin("xdist") and config.getoption("numprocesses", None):
        # The controller, before it starts the workers.
        os.environ[TURNS_DIR] = tempfile.mkdtemp(prefix="edgeshift-tests-")
        config.add_cleanup(lambda: shutil.rmtree(os.environ.pop(TURNS_DIR), ignore_errors=True))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under workers: `alone` tests first, while no other test is under way, then the files
    on the local stack (the longest, a few tests each), then the many short ones, which even
    out the workers' ends (`make test` keeps this order with --no-loadscope-reorder)."""
    if TURNS in config.stash:
        items.sort(
            key=lambda item: (
                item.get_closest_marker("alone") is None,
                item.get_closest_marker("integration") is None,
            )
        )


# trylast: inside pytest-timeout's wrapper, so a turn never arriving is a timeout, not a hang.
@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    turns = item.config.stash.get(TURNS, None)
    if turns is None:
        return (yield)
    if item.get_closest_marker("alone") is None:
        with turns.shared():
            return (yield)
    turns.take_alone()
    try:
        return (yield)
    finally:  # held across a module's `alone` tests: its fixtures end with its last test
        if (
            nextitem is None
            or nextitem.module is not item.module
            or nextitem.get_closest_marker("alone") is None
        ):
            turns.give_back()
