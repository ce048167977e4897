"""DynamoDB's ClientRequestToken for TransactWriteItems, which moto ignores.

botocore fills ``ClientRequestToken`` in every TransactWriteItems (an idempotency token)
and re-sends the same token when it retries a call whose answer it did not get (a read
timeout, a 5xx after the commit). DynamoDB answers such a retry, for 10 minutes after the
first call completed, with success and without applying the items again; the same token
with other parameters is refused with IdempotentParameterMismatchException, and a token
whose first call is still running with TransactionInProgressException. moto applies every
call, so a retry after a lost answer finds its own write and its conditions fail: a local
stack would show a retry failing that in AWS succeeds. This module makes moto do what
DynamoDB does.

A call refused by its conditions (TransactionCanceledException) changed nothing, so its
token is not remembered: calling again evaluates the conditions again.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.dynamodb.exceptions import ERROR_TYPE_PREFIX, DynamodbException
from moto.dynamodb.responses import DynamoHandler

WINDOW_SECONDS = 600.0


class IdempotentParameterMismatchException(DynamodbException):
    def __init__(self) -> None:
        super().__init__(
            ERROR_TYPE_PREFIX + "IdempotentParameterMismatchException",
            "The request uses the same client token as a previous, but non-identical request.",
        )


class TransactionInProgressException(DynamodbException):
    def __init__(self) -> None:
        super().__init__(
            ERROR_TYPE_PREFIX + "TransactionInProgressException",
            "The transaction with the given request token is already in progress.",
        )


class Tokens:
    """Tokens per (account, region): the payload's fingerprint and when its call completed."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._done: dict[tuple[str, str, str], tuple[str, float]] = {}
        self._running: set[tuple[str, str, str]] = set()
        self._lock = threading.Lock()

    def clear(self) -> None:
        with self._lock:
            self._done.clear()
            self._running.clear()

    def transact(
        self, key: tuple[str, str, str], body: dict[str, Any], apply: Callable[[], Any]
    ) -> Any:
        """Run ``apply`` unless ``key`` already completed with this payload (then ``None``)."""
        fingerprint = _fingerprint(body)
        with self._lock:
            now = self.clock()
            for old in [k for k, (_, at) in self._done.items() if now - at >= WINDOW_SECONDS]:
                del self._done[old]
            if key in self._running:
                raise TransactionInProgressException()
            if key in self._done:
                if self._done[key][0] != fingerprint:
                    raise IdempotentParameterMismatchException()
                return None
            self._running.add(key)
        try:
            result = apply()
        finally:
            with self._lock:
                self._running.discard(key)
        with self._lock:
            self._done[key] = (fingerprint, self.clock())
        return result


def _fingerprint(body: dict[str, Any]) -> str:
    rest = {k: v for k, v in body.items() if k != "ClientRequestToken"}
    return hashlib.sha256(json.dumps(rest, sort_keys=True, default=str).encode()).hexdigest()


TOKENS = Tokens()
_active = [TOKENS]


def install(tokens: Tokens = TOKENS) -> None:
    """Answer moto's TransactWriteItems from ``tokens`` from now on (forgotten first)."""
    tokens.clear()
    _active[0] = tokens
    if getattr(DynamoHandler.transact_write_items, "_edgeshift_tokens", False):
        return
    apply = DynamoHandler.transact_write_items

    def transact_write_items(handler: DynamoHandler) -> Any:
        token = handler.body.get("ClientRequestToken")
        if not token:
            return apply(handler)
        key = (handler.current_account, handler.region, str(token))
        result = _active[0].transact(key, handler.body, lambda: apply(handler))
        if result is None:  # a retry of a completed call: success, nothing applied again
            return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
        return result

    transact_write_items._edgeshift_tokens = True  # type: ignore[attr-defined]
    DynamoHandler.transact_write_items = transact_write_items  # type: ignore[method-assign, assignment]
