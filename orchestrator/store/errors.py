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


class IdempotentReplay(StoreError):
    """The idempotency key was used before, by rollout ``rollout_id``."""

    def __init__(self, rollout_id: str, fingerprint: str) -> None:
        self.rollout_id, self.fingerprint = rollout_id, fingerprint
        super().__init__(f"idempotency key already used by rollout {rollout_id}")


class InvalidTransition(StoreError):
    """The status change is not in the transition table (e.g. out of a terminal state)."""


class TargetLockedError(StoreError):
    """Another rollout holds the target: one active rollout per host and path rule."""

    def __init__(self, target: str, holder: str | None = None) -> None:
        self.target = target
        self.holder = holder
        held = f" by rollout {holder}" if holder else ""
        super().__init__(f"target {target} is locked{held}")
