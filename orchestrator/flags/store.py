"""Flag data in the routes table, where the edge reads it (``edge.flags``).

One item per flag (``flag:<key>``) and per segment (``segment:<key>``) under the partition
``edge.flags.FLAGS_PARTITION``, each holding the SDK's JSON as a string in ``data`` (a string
keeps DynamoDB from turning numbers into decimals and dropping empty strings), with a
``revision`` that every write checks: created only if absent, replaced or deleted only at
the revision read. Each change carries an audit event in the rollouts table
(``FLAGS#<item>``, ``EVENT#<time>#<revision>``) in the same transaction: an item deleted and
created again starts over at revision 1, so the revision alone would collide with the first
item's events. Unchanged items are not written, so a scheduled sync that finds nothing new
writes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from edge.flags import FLAG_PREFIX, FLAGS_PARTITION, SEGMENT_PREFIX, decoded_data
from orchestrator.models import utcnow
from orchestrator.store import codec
from orchestrator.store.tables import TableNames

from .data import FlagData, FlagDataError, needed_items, rule_problems, size_problems

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# A transaction holds at most 100 items (50 changes, each with its audit event) and 4 MB.
_CHANGES_PER_TRANSACTION = 50
_BYTES_PER_TRANSACTION = 3_500_000


class StaleFlagError(RuntimeError):
    """Another writer changed the flag data since it was read; nothing of this batch was
    written."""


class UnservedRules(ValueError):
    """The flag data to be stored cannot serve the stored flag-routed rules; nothing was
    written. ``problems`` names each rule and what it lacks."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class SyncResult:
    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0


def encode(item: dict[str, Any]) -> str:
    return json.dumps(item, sort_keys=True, separators=(",", ":"))


def readable(item: dict[str, Any]) -> dict[str, Any] | None:
    """A stored item's flag or segment JSON, or None if its ``data`` is not a JSON object
    (decoded as the edge decodes it)."""
    return decoded_data(item.get("data"))


class FlagStore:
    def __init__(self, client: DynamoDBClient | None = None, tables: TableNames | None = None):
        self.client = client or boto3.client("dynamodb")
        self.tables = tables or TableNames.from_env()

    def stored(self) -> dict[str, dict[str, Any]]:
        """Every flag and segment item, by ``path_rule``, read consistently."""
        kwargs: dict[str, Any] = {
            "TableName": self.tables.routes,
            "KeyConditionExpression": "#h = :h",
            "ExpressionAttributeNames": {"#h": "host"},
            "ExpressionAttributeValues": codec.to_attributes({":h": FLAGS_PARTITION}),
            "ConsistentRead": True,
        }
        found: dict[str, dict[str, Any]] = {}
        while True:
            page = self.client.query(**kwargs)
            for item in page["Items"]:
                plain = codec.from_attributes(item)
                found[plain["path_rule"]] = plain
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def data(self) -> FlagData:
        """The stored flag data, as ``FlagData`` (what the edge's snapshot holds: an item
        whose ``data`` is not a JSON object is left out, as the edge leaves it out)."""
        return _as_data(self.stored())

    def pinned_for(self, rules: list[Any], *, actor: str, reason: str) -> list[dict[str, Any]]:
        """The transaction items that keep the flag data serving ``rules`` while they are
        written (``Store.put_routes(..., guards=...)``); none for weighted rules.

        Each item a rule's flag needs (the flag, its prerequisites, the segments they
        match) moves to its next revision, conditional on the revision this check read,
        with an audit event. A sync that lands between the check and the
        route write fails the route write (nothing written); a sync that read the flags
        before the route write fails its own conditional write instead of deleting or
        changing the flag under the new rule, and the next sync sees the rule. Raises
        ``ValueError`` naming what the stored data cannot serve."""
        routed = [rule for rule in rules if getattr(rule, "assignment", None) is not None]
        if not routed:
            return []
        stored = self.stored()
        data = _as_data(stored)
        problems = rule_problems(routed, data)
        if problems:
            raise ValueError("; ".join(problems) + " (load it first: rollout flags sync)")
        now = utcnow().isoformat()
        prefixes = {"flag": FLAG_PREFIX, "segment": SEGMENT_PREFIX}
        users: dict[str, list[str]] = {}  # item -> the rules whose flag needs it
        for rule in routed:
            for kind, key in needed_items(rule.assignment.flag, data):
                users.setdefault(prefixes[kind] + key, []).append(f"{rule.host} {rule.path_rule}")
        ops: list[dict[str, Any]] = []
        for name in sorted(users):
            old = stored[name]
            revision = int(old["revision"])
            by = ", ".join(sorted(set(users[name])))
            update = {
                "Update": {
                    "TableName": self.tables.routes,
                    "Key": codec.to_attributes({"host": FLAGS_PARTITION, "path_rule": name}),
                    "UpdateExpression": "SET revision = :next",
                    "ConditionExpression": "revision = :rev",
                    "ExpressionAttributeValues": codec.to_attributes(
                        {":rev": revision, ":next": revision + 1}
                    ),
                }
            }
            audit = {
                "pk": f"FLAGS#{name}",
                "sk": f"EVENT#{now}#{revision + 1:08d}",
                "kind": "flag_event",
                "actor": actor,
                "reason": f"routed by {by}: {reason}" if reason else f"routed by {by}",
                "at": now,
                "doc": old.get("data", ""),
            }
            ops += [update, self._audit_put(audit)]
        return ops

    def _audit_put(self, audit: dict[str, Any]) -> dict[str, Any]:
        return {
            "Put": {
                "TableName": self.tables.rollouts,
                "Item": codec.to_attributes(audit),
                "ConditionExpression": "attribute_not_exists(pk)",
            }
        }

    def flag_routed_rules(self) -> list[Any]:
        """Every route rule with an ``assignment`` (``RouteRule``), which the data must serve.

        A filtered Scan: flag syncs are rare next to the edge's reads, the routes table is
        small, and no index lists rules by flag.
        """
        kwargs: dict[str, Any] = {
            "TableName": self.tables.routes,
            "FilterExpression": "attribute_exists(assignment)",
            "ConsistentRead": True,
        }
        rules: list[Any] = []
        while True:
            page = self.client.scan(**kwargs)
            rules += [codec.route_from_item(item) for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return rules
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def sync(self, data: FlagData, *, actor: str, source: str, prune: bool = True) -> SyncResult:
        """Make the stored flag data equal ``data``; items no longer in it are deleted
        when ``prune``. Before writing anything, raises ``FlagDataError`` for an item too
        big for the table and ``UnservedRules`` when what would be stored cannot serve a
        flag-routed rule; ``StaleFlagError`` if another writer got there first.

        The items are read before the rules: a rule written after that read pins its flag
        at a new revision (``pinned_for``), so this sync's conditional write of that flag
        fails instead of deleting or changing it under the rule it has not seen."""
        too_big = size_problems(data)
        if too_big:
            raise FlagDataError("; ".join(too_big))
        wanted = {FLAG_PREFIX + k: v for k, v in data.flags.items()}
        wanted |= {SEGMENT_PREFIX + k: v for k, v in data.segments.items()}
        stored = self.stored()
        served = data
        if not prune:  # the stored items the data leaves out stay, and serve rules too
            kept = _as_data(stored)
            served = FlagData(
                flags={**kept.flags, **data.flags}, segments={**kept.segments, **data.segments}
            )
        unserved = rule_problems(self.flag_routed_rules(), served)
        if unserved:
            raise UnservedRules(unserved)
        now = utcnow().isoformat()
        changes: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = []
        for name, item in sorted(wanted.items()):
            old = stored.get(name)
            if old is None or old.get("data") != encode(item):
                changes.append((name, item, old))
        if prune:
            changes += [
                (name, None, old) for name, old in sorted(stored.items()) if name not in wanted
            ]
        for batch in _batches(changes):
            ops = [op for change in batch for op in self._ops(*change, actor, source, now)]
            try:
                self.client.transact_write_items(TransactItems=ops)  # type: ignore[arg-type]
            except ClientError as exc:
                if exc.response["Error"]["Code"] == "TransactionCanceledException":
                    names = ", ".join(name for name, _, _ in batch)
                    raise StaleFlagError(f"flag data changed while syncing: {names}") from exc
                raise
        return SyncResult(
            written=[name for name, item, _ in changes if item is not None],
            deleted=[name for name, item, _ in changes if item is None],
            unchanged=len(wanted) - sum(1 for _, item, _ in changes if item is not None),
        )

    def _ops(
        self,
        name: str,
        item: dict[str, Any] | None,
        old: dict[str, Any] | None,
        actor: str,
        source: str,
        now: str,
    ) -> list[dict[str, Any]]:
        revision = int(old["revision"]) + 1 if old is not None else 1
        key = {"host": FLAGS_PARTITION, "path_rule": name}
        if old is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(host)"}
        else:
            condition = {
                "ConditionExpression": "revision = :rev",
                "ExpressionAttributeValues": codec.to_attributes({":rev": int(old["revision"])}),
            }
        if item is None:
            change: dict[str, Any] = {
                "Delete": {
                    "TableName": self.tables.routes,
                    "Key": codec.to_attributes(key),
                    **condition,
                }
            }
        else:
            stored = {
                **key,
                "kind": "flag" if name.startswith(FLAG_PREFIX) else "segment",
                "key": item.get("key", name.partition(":")[2]),
                "version": int(item.get("version", 1)),
                "data": encode(item),
                "revision": revision,
                "synced_at": now,
                "source": source,
            }
            change = {
                "Put": {
                    "TableName": self.tables.routes,
                    "Item": codec.to_attributes(stored),
                    **condition,
                }
            }
        audit = {
            "pk": f"FLAGS#{name}",
            "sk": f"EVENT#{now}#{revision:08d}",
            "kind": "flag_event",
            "actor": actor,
            "reason": f"{'deleted' if item is None else 'synced'} from {source}",
            "at": now,
            "doc": encode(item) if item is not None else "",
        }
        return [change, self._audit_put(audit)]


def _as_data(stored: dict[str, dict[str, Any]]) -> FlagData:
    def section(prefix: str) -> dict[str, dict[str, Any]]:
        found = {}
        for name, item in stored.items():
            data = readable(item)
            if name.startswith(prefix) and data is not None:
                found[name[len(prefix) :]] = data
        return found

    return FlagData(flags=section(FLAG_PREFIX), segments=section(SEGMENT_PREFIX))


def _batches(
    changes: list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]],
) -> list[list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]]:
    """The changes in transactions within DynamoDB's item count and size limits (each change
    writes its JSON twice: the item and its audit event)."""
    batches: list[list[tuple[str, dict[str, Any] | None, dict[str, Any] | None]]] = [[]]
    size = 0
    for change in changes:
        cost = 2 * len(encode(change[1]).encode()) + 2048 if change[1] is not None else 2048
        batch = batches[-1]
        if batch and (
            len(batch) == _CHANGES_PER_TRANSACTION or size + cost > _BYTES_PER_TRANSACTION
        ):
            batches.append([])
            size = 0
        batches[-1].append(change)
        size += cost
    return [batch for batch in batches if batch]
