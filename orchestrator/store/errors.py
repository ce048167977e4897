"""What a conditional write can refuse, named for the caller that has to react."""

from __future__ import annotations


class StoreError(Exception):
    """Base class for storage failures the caller can act on."""


class NotFoundError(StoreError):
    pass


class StaleWriteError(StoreError):
    """Someone else changed the item since it was read (version or revision moved on)."""


class StaleRouteError(StaleWriteError):
    pass


class StaleRolloutError(StaleWriteError):
    pass


class TargetLockedError(StoreError):
    """Another rollout holds the target: one active rollout per host and path rule."""

    def __init__(self, target: str, holder: str | None = None) -> None:
        self.target = target
        self.holder = holder
        held = f" by rollout {holder}" if holder else ""
        super().__init__(f"target {target} is locked{held}")
