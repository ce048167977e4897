"""Per-process singletons, as a Lambda container keeps them between invocations.

``per_process`` is ``functools.cache`` that the local stack can reset: its clients are
bound to an endpoint, and a second local stack in the same process (tests) must not reach
the first one's, long gone, port.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
_RESETS: list[Callable[[], None]] = []


def per_process(factory: Callable[[], T]) -> Callable[[], T]:
    cached = functools.cache(factory)
    _RESETS.append(cached.cache_clear)
    return cached


def forget() -> None:
    """Drop every per-process singleton; the next call builds a fresh one."""
    for reset in _RESETS:
        reset()
