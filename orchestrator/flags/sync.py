"""The scheduled flag sync: LaunchDarkly's flags, taken with the SDK, written where the edge
reads them.

EventBridge runs this every minute (``stacks/orchestrator_stack.py``). It reads the SDK key
from Secrets Manager (the secret named by ``EDGESHIFT_LAUNCHDARKLY_SDK_KEY_SECRET``), lets
the SDK load the environment's flags and segments into its own in-memory store as it
always does, checks them against every flag-routed rule, and writes each changed item with
a conditional write and an audit event (``orchestrator.flags.store``). Data that cannot
serve a rule (its flag deleted, or a mapped value removed) is refused whole and the
invocation fails, so the function's Errors metric shows it; the edge keeps the last data
until ``max_stale_seconds``, then serves each rule's fallback (``runbooks/flag-data-stale.md``).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters

from .data import FlagData, FlagDataError, from_store
from .store import FlagStore, UnservedRules

SDK_KEY_SECRET_ENV = "EDGESHIFT_LAUNCHDARKLY_SDK_KEY_SECRET"
# How long the SDK may take for its first full data set; the function's timeout is longer.
START_WAIT_SECONDS = 20.0

logger = Logger(service="edgeshift-flags")


class FlagSyncRefused(RuntimeError):
    """LaunchDarkly's data cannot serve the stored flag-routed rules, or holds a flag too big
    for a table item; nothing was written."""


def fetch(sdk_key: str, *, start_wait: float = START_WAIT_SECONDS, **config: Any) -> FlagData:
    """The environment's flags and segments as the SDK holds them after initializing.

    ``config`` goes to the SDK's ``Config`` (``base_uri``, ``stream`` for tests).
    """
    from ldclient import Config, LDClient
    from ldclient.feature_store import InMemoryFeatureStore

    store = InMemoryFeatureStore()  # type: ignore[no-untyped-call]
    client = LDClient(
        Config(sdk_key, feature_store=store, send_events=False, diagnostic_opt_out=True, **config),
        start_wait=start_wait,
    )
    try:
        if not client.is_initialized():
            raise RuntimeError("the SDK did not initialize: no flag data from LaunchDarkly")
        return from_store(store)
    finally:
        client.close()  # type: ignore[no-untyped-call]


def sync_once(store: FlagStore, data: FlagData, *, source: str) -> dict[str, Any]:
    """Check ``data`` against the flag-routed rules, then write what changed."""
    try:
        result = store.sync(data, actor="flag-sync", source=source)
    except (FlagDataError, UnservedRules) as exc:
        raise FlagSyncRefused(str(exc)) from exc
    return {
        "flags": len(data.flags),
        "segments": len(data.segments),
        "written": result.written,
        "deleted": result.deleted,
        "unchanged": result.unchanged,
    }


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    # Cached for five minutes: a rotated key is picked up within that.
    sdk_key = str(parameters.get_secret(os.environ[SDK_KEY_SECRET_ENV], max_age=300))
    try:
        outcome = sync_once(FlagStore(), fetch(sdk_key), source="launchdarkly")
    except FlagSyncRefused as exc:
        logger.error("flag data refused: nothing written", problems=str(exc))
        raise
    logger.info("flag data synced", **outcome)
    return outcome
