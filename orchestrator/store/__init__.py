"""DynamoDB repositories: every write is conditional and every state change is audited."""

from .errors import (
    IdempotentReplay,
    InvalidTransition,
    NotFoundError,
    StaleRolloutError,
    StaleRouteError,
    StaleWriteError,
    StoreError,
    TargetLockedError,
)
from .repository import RouteChange, Store
from .tables import TableNames, create_tables

__all__ = [
    "IdempotentReplay",
    "InvalidTransition",
    "NotFoundError",
    "RouteChange",
    "StaleRolloutError",
    "StaleRouteError",
    "StaleWriteError",
    "Store",
    "StoreError",
    "TableNames",
    "TargetLockedError",
    "create_tables",
]
