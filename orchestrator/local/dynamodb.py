"""moto's DynamoDB made to answer like DynamoDB where the workflow depends on it, at the
cost of the items a request touches rather than the whole table.

- **ClientRequestToken.** botocore fills it in every TransactWriteItems (an idempotency
  token) and re-sends the same token when it retries a call whose answer it did not get (a
  read timeout, a 5xx after the commit). DynamoDB answers such a retry, for 10 minutes after
  the first call completed, with success and without applying the items again; the same
  token with other parameters is refused with IdempotentParameterMismatchException, and a
  token whose first call still runs with TransactionInProgressException. moto ignores the
  token: a retry after a lost answer would meet its own write and fail its conditions, so a
  local run would fail where AWS succeeds. A call its conditions refused changed nothing:
  its token is not remembered, and calling again evaluates the conditions again.
- **Transactions** check every item's condition, then write, all or nothing. moto copies
  every table a transaction names before it writes, which costs the whole table per commit.
- **Queries on the table's key** read their partition only; moto sorts every item first.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.dynamodb.comparisons import get_filter_expression
from moto.dynamodb.exceptions import (
    ERROR_TYPE_PREFIX,
    ConditionalCheckFailed,
    DynamodbException,
    MockValidationException,
    MultipleTransactionsException,
    TooManyTransactionsException,
    TransactionCanceledException,
    TransactWriteSingleOpException,
)
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
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
_KINDS = {"ConditionCheck", "Put", "Delete", "Update"}


def install(tokens: Tokens = TOKENS) -> None:
    """Patch moto (once per process); answer tokens from ``tokens``, forgotten first."""
    tokens.clear()
    _active[0] = tokens
    if getattr(DynamoHandler.transact_write_items, "_edgeshift", False):
        return
    _patch(DynamoHandler, "transact_write_items", _idempotent(DynamoHandler.transact_write_items))
    _patch(DynamoDBBackend, "transact_write_items", _transact_write_items)
    _patch(Table, "query", _partition_query(Table.query))
    _patch(Table, "all_items", _partition_items(Table.all_items))


def _patch(owner: type, name: str, function: Callable[..., Any]) -> None:
    function._edgeshift = True  # type: ignore[attr-defined]
    setattr(owner, name, function)


def _idempotent(apply: Callable[[DynamoHandler], Any]) -> Callable[[DynamoHandler], Any]:
    def transact_write_items(handler: DynamoHandler) -> Any:
        token = handler.body.get("ClientRequestToken")
        if not token:
            return apply(handler)
        key = (handler.current_account, handler.region, str(token))
        result = _active[0].transact(key, handler.body, lambda: apply(handler))
        if result is None:  # a retry of a completed call: success, nothing applied again
            return ActionResult({"ConsumedCapacity": [], "ItemCollectionMetrics": {}})
        return result

    return transact_write_items


def _transact_write_items(backend: DynamoDBBackend, transact_items: list[dict[str, Any]]) -> None:
    """Every condition first (no two items of a transaction are the same item, so none sees
    another's write), then every write, undone item by item if one of them fails."""
    if len(transact_items) > 100:
        raise TooManyTransactionsException()
    checked = [
        _checked(backend, item, index, transact_items) for index, item in enumerate(transact_items)
    ]
    errors = [error for error, _ in checked]
    if any(code is not None for code, _, _ in errors):
        raise TransactionCanceledException(errors)
    written: list[tuple[str, dict[str, Any], Any]] = []
    for index, (_, (kind, op, key, before)) in enumerate(checked):
        try:
            _write(backend, kind, op, key)
            written.append((op["TableName"], key, before))
        except (MultipleTransactionsException, MockValidationException):
            _undo(backend, written)
            raise
        except Exception as exc:
            _undo(backend, written)
            errors[index] = (type(exc).__name__, str(exc), None)
            raise TransactionCanceledException(errors) from exc


def _checked(
    backend: DynamoDBBackend, item: dict[str, Any], index: int, items: list[dict[str, Any]]
) -> tuple[tuple[Any, Any, Any], tuple[str, dict[str, Any], dict[str, Any], Any]]:
    """(cancellation reason or Nones, (kind, op, key, the item before)) for one item."""
    if len(item) > 1:
        raise TransactWriteSingleOpException
    kind, op = next(iter(item.items()))
    old: dict[str, Any] | None = None
    key: dict[str, Any] = {}
    try:
        if kind not in _KINDS:
            raise ValueError("Unsupported transaction operation")
        key = _key(backend.get_table(op["TableName"]), kind, op)
        if any(_same(other, op, key, backend) for other in items[:index]):
            raise MultipleTransactionsException()
        current = backend.get_item(op["TableName"], key)
        condition = op.get("ConditionExpression")
        if condition is not None:
            test = get_filter_expression(
                condition, op.get("ExpressionAttributeNames"), op.get("ExpressionAttributeValues")
            )
            if not test.expr(current):
                if op.get("ReturnValuesOnConditionCheckFailure") == "ALL_OLD" and current:
                    old = current.to_json()["Attributes"]
                raise ConditionalCheckFailed(item=old)
        return (None, None, None), (kind, op, key, copy.deepcopy(current))
    except (MultipleTransactionsException, MockValidationException):
        raise
    except ConditionalCheckFailed as exc:
        return ("ConditionalCheckFailed", str(exc.message), old), (kind, op, key, None)
    except Exception as exc:
        return (type(exc).__name__, str(exc), old), (kind, op, key, None)


def _key(table: Any, kind: str, op: dict[str, Any]) -> dict[str, Any]:
    if kind != "Put":
        return dict(op["Key"])
    attrs = op["Item"]
    key = {table.hash_key_attr: attrs[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = attrs[table.range_key_attr]
    return key


def _same(other: dict[str, Any], op: dict[str, Any], key: dict[str, Any], backend: Any) -> bool:
    kind, theirs = next(iter(other.items()))
    if kind not in _KINDS or theirs.get("TableName") != op["TableName"]:
        return False
    return _key(backend.get_table(op["TableName"]), kind, theirs) == key


def _write(backend: DynamoDBBackend, kind: str, op: dict[str, Any], key: dict[str, Any]) -> None:
    expressions: dict[str, Any] = {
        "condition_expression": op.get("ConditionExpression"),
        "expression_attribute_names": op.get("ExpressionAttributeNames"),
        "expression_attribute_values": op.get("ExpressionAttributeValues"),
    }
    if kind == "Put":
        backend.put_item(op["TableName"], op["Item"], **expressions)
    elif kind == "Delete":
        backend.delete_item(op["TableName"], key, **expressions)
    elif kind == "Update":
        backend.update_item(
            op["TableName"], key, update_expression=op["UpdateExpression"], **expressions
        )


def _undo(backend: DynamoDBBackend, written: list[tuple[str, dict[str, Any], Any]]) -> None:
    for table, key, before in reversed(written):
        if before is None:
            backend.delete_item(table, key)
        else:
            backend.put_item(table, before.to_json()["Attributes"])


_partition = threading.local()


def _partition_query(query: Callable[..., Any]) -> Callable[..., Any]:
    """A query on the table's own key looks at its partition (see ``_partition_items``)."""

    def partition_query(table: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
        index_name = args[6] if len(args) > 6 else kwargs.get("index_name")
        if index_name or hash_key is None or not table.range_key_attr:
            return query(table, hash_key, *args, **kwargs)
        _partition.of = (table, hash_key)
        try:
            return query(table, hash_key, *args, **kwargs)
        finally:
            _partition.of = None

    return partition_query


def _partition_items(all_items: Callable[[Table], list[Any]]) -> Callable[[Table], list[Any]]:
    def partition_items(table: Table) -> list[Any]:
        of = getattr(_partition, "of", None)
        if of is None or of[0] is not table:
            return all_items(table)
        partition = table.items.get(of[1]) or {}
        return sorted(partition.values(), key=lambda item: item.range_key)

    return partition_items
