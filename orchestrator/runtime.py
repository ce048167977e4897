"""Per-process singletons, as a Lambda container keeps them between invocations.

``per_process`` is ``functools.cache`` that the local stack can reset: its clients are
bound to an endpoint, and a second local stack in the same process (tests) must not reach
the first one's, long gone, port.

In Lambda one container serves one invocation at a time and keeps its own clients (and
with them botocore's retry quota). The local stack runs every function in one process; a
caller that emulates several containers names each one with ``container``, and the
singletons made inside are that container's own.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import threading
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_RESETS: list[Callable[[], None]] = []
_CONTAINER: contextvars.ContextVar[str] = contextvars.ContextVar("edgeshift_container", default="")


class _PerContainer(Generic[T]):
    def __init__(self, factory: Callable[[], T]) -> None:
        self._factory = factory
        self._made: dict[str, T] = {}
        self._lock = threading.Lock()
        functools.update_wrapper(self, factory)

    def __call__(self) -> T:
        name = _CONTAINER.get()
        with self._lock:
            if name in self._made:
                return self._made[name]
        made = self._factory()
        with self._lock:
            return self._made.setdefault(name, made)

    def cache_clear(self) -> None:
        with self._lock:
            self._made.clear()


def per_process(factory: Callable[[], T]) -> Callable[[], T]:
    cached = _PerContainer(factory)
    _RESETS.append(cached.cache_clear)
    return cached


@contextlib.contextmanager
def container(name: str) -> Iterator[None]:
    """Singletons made or used in this block are container ``name``'s own."""
    token = _CONTAINER.set(name)
    try:
        yield
    finally:
        _CONTAINER.reset(token)


def forget() -> None:
    """Drop every per-process singleton; the next call builds a fresh one."""
    for reset in _RESETS:
        reset()
