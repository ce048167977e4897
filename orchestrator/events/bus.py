"""Rollout lifecycle events on EventBridge: the names callers and rules rely on.

The events are announced by the store's commit (``orchestrator.store.lifecycle``), the one
place that knows a change happened; nothing publishes them besides it. This module keeps
the public names where the EventBridge side of the product lives.
"""

from __future__ import annotations

from orchestrator.store.lifecycle import DETAIL_TYPES, SOURCE, lifecycle_event

__all__ = ["DETAIL_TYPES", "SOURCE", "lifecycle_event"]
