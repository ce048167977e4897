"""LaunchDarkly's server SDK evaluating the flag data the edge read from the routes table.

The SDK runs as it does in daemon mode (``use_ldd``): it reads flags and segments from a
feature store that something else fills, never connects to LaunchDarkly and sends no
events. The store is the SDK's own ``InMemoryFeatureStore``; ``load`` hands it a snapshot
with ``init``, as a data source would, so decoding, targets, rules, segments,
prerequisites and percentage-rollout bucketing are all the SDK's. One client per
container; a snapshot is loaded again only when its items changed.

Imported only for flag-routed rules (``edge.flags``), and only present in the bundle that
carries the SDK (``stacks.bundle``, ``flags=True``): the stdlib bundle raises ImportError
here, which ``edge.flags`` turns into the rule's fallback.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ldclient import Config, Context, LDClient
from ldclient.feature_store import InMemoryFeatureStore
from ldclient.versioned_data_kind import FEATURES, SEGMENTS

from edge import log

if TYPE_CHECKING:
    from edge.flags import Snapshot

# LDD mode needs no key (nothing connects); a non-blank one keeps the SDK from warning.
_SDK_KEY = "edgeshift-edge-snapshot"
_MISSING = object()


class SnapshotEvaluator:
    """An offline ``LDClient`` over an in-memory store the edge fills from its snapshots."""

    def __init__(self) -> None:
        self._store = InMemoryFeatureStore()  # type: ignore[no-untyped-call]
        self._client = LDClient(
            Config(
                _SDK_KEY,
                use_ldd=True,
                send_events=False,
                diagnostic_opt_out=True,
                feature_store=self._store,
            ),
            start_wait=0,
        )
        self._loaded: str | None = None
        # Flags the SDK could not decode in the loaded snapshot, with its reason.
        self._rejected: dict[str, str] = {}
        self._lock = threading.Lock()

    def load(self, snapshot: Snapshot) -> None:
        """Replace the store's data with the snapshot's, unless it holds it already.

        Each item is decoded by the SDK on its own, and one it rejects is left out (its
        rules fall back) and logged: the store's ``init`` decodes all or nothing, so a
        single bad item would otherwise take every flag down, and be decoded again on
        every request.
        """
        if snapshot.digest == self._loaded:
            return
        with self._lock:
            if snapshot.digest != self._loaded:
                flags, rejected = _decoded(FEATURES, snapshot.flags)
                segments, rejected_segments = _decoded(SEGMENTS, snapshot.segments)
                self._store.init(  # type: ignore[no-untyped-call]
                    {FEATURES: flags, SEGMENTS: segments}
                )
                self._rejected = rejected
                self._loaded = snapshot.digest
                if rejected or rejected_segments:
                    log.warn(
                        "flag data the SDK cannot decode left out",
                        flags=dict(list(rejected.items())[:10]),
                        segments=dict(list(rejected_segments.items())[:10]),
                    )

    def evaluate(
        self, flag: str, kind: str, key: str, attributes: dict[str, str]
    ) -> tuple[Any, str | None]:
        """(value, None), or (None, why) when the SDK could only give the default."""
        if flag in self._rejected:
            return None, f"the SDK cannot decode the flag: {self._rejected[flag]}"
        builder = Context.builder(key).kind(kind)
        for name, value in attributes.items():
            builder.set(name, value)
        context = builder.build()
        detail = self._client.variation_detail(flag, context, _MISSING)
        reason = detail.reason or {}
        if reason.get("kind") == "ERROR" or detail.value is _MISSING:
            return None, str(reason.get("errorKind") or reason.get("kind") or "no value")
        return detail.value, None


def _decoded(kind: Any, items: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], dict[str, str]]:
    """The items the SDK decodes (its model objects, which ``init`` keeps as they are), and
    the reason for each it refuses."""
    decoded: dict[str, Any] = {}
    rejected: dict[str, str] = {}
    for key, item in items.items():
        try:
            decoded[key] = kind.decode(item)
        except Exception as exc:  # the SDK's ValueError, or anything junk data provokes
            rejected[key] = str(exc)[:300]
    return decoded, rejected


_evaluator: SnapshotEvaluator | None = None
_lock = threading.Lock()


def evaluator() -> SnapshotEvaluator:
    global _evaluator
    if _evaluator is not None:  # every evaluation asks: no lock once it exists
        return _evaluator
    with _lock:
        if _evaluator is None:
            _evaluator = SnapshotEvaluator()
        return _evaluator


def evaluate(
    snapshot: Snapshot, flag: str, kind: str, key: str, attributes: dict[str, str]
) -> tuple[Any, str | None]:
    """Evaluate ``flag`` for the context (``kind``, ``key``, ``attributes``) on ``snapshot``."""
    found = evaluator()
    found.load(snapshot)
    return found.evaluate(flag, kind, key, attributes)
