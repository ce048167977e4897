"""Unit tests for orchestrator.runtime: per-process singletons, one set per container."""

from __future__ import annotations

import itertools

from orchestrator import runtime


def test_a_singleton_is_made_once_per_container():
    """GIVEN a per-process factory WHEN called in the default container and in two named
    ones THEN each container makes its own once and keeps it; forget drops them all."""
    made = itertools.count()
    singleton = runtime.per_process(lambda: next(made))
    assert singleton() == singleton() == 0
    with runtime.container("begin@a"):
        assert singleton() == singleton() == 1
    with runtime.container("begin@b"):
        assert singleton() == 2
    with runtime.container("begin@a"):
        assert singleton() == 1
    runtime.forget()
    assert singleton() == 3


def test_cache_clear_drops_every_container():
    """GIVEN singletons in two containers WHEN the factory's cache is cleared THEN both
    are made again (tests clear a task's store this way)."""
    made = itertools.count()
    singleton = runtime.per_process(lambda: next(made))
    singleton()
    with runtime.container("x"):
        singleton()
    singleton.cache_clear()  # type: ignore[attr-defined]
    assert singleton() == 2
