"""Every state change in one DynamoDB transaction: the rollout (conditional on its version),
its audit event (conditional on not existing), and, when traffic moves, the route
(conditional on its revision). Weights and audit can therefore never disagree. A route
defined by a person is written only while no rollout holds its target's lock, checked in
the same transaction. A commit that DynamoDB accepted then announces its lifecycle event
(``lifecycle.py``): one place, after the write, for the workflow and the service alike."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.exceptions import ClientError

from orchestrator.models import AuditEvent, Rollout, RolloutStatus, RouteRule, Variant, utcnow

from . import codec, lifecycle
from .errors import (
    IdempotentReplay,
    NotFoundError,
    StaleRolloutError,
    StaleRouteError,
    StaleWriteError,
    StoreError,
    TargetLockedError,
)
from .tables import BY_KIND_INDEX, BY_TARGET_INDEX, TableNames

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

IDEMPOTENCY_TTL_SECONDS = 24 * 3600  # the rollouts table's TTL attribute is expires_at
# Each rule takes three items of DynamoDB's 100-item transaction: the route, its audit event
# and the check that no rollout holds its target.
MAX_RULES_PER_WRITE = 33


@dataclass(frozen=True)
class RouteChange:
    """New variants for a route, written only if nobody changed it since ``rule`` was read."""

    rule: RouteRule
    variants: list[Variant]
    salt: str
    rollout_id: str

    def applied(self) -> RouteRule:
        """The route as it will be stored; validated, so weights always cover everyone."""
        return RouteRule.model_validate(
            {
                **self.rule.model_dump(),
                "variants": [variant.model_dump() for variant in self.variants],
                "salt": self.salt,
                "rollout_id": self.rollout_id,
                "revision": self.rule.revision + 1,
            }
        )


class Store:
    def __init__(
        self,
        client: DynamoDBClient | None = None,
        tables: TableNames | None = None,
        *,
        eventbridge: Any = None,
    ):
        self.client = client or boto3.client("dynamodb")
        self.tables = tables or TableNames.from_env()
        # EventBridge for the lifecycle events commits announce; None: the process's own.
        self.eventbridge = eventbridge

    def announcing_through(self, eventbridge: Any) -> Store:
        """The same tables, announcing lifecycle events through ``eventbridge``."""
        return Store(self.client, self.tables, eventbridge=eventbridge)

    # -- routes -----------------------------------------------------------------------------

    def get_route(self, host: str, path_rule: str = "default") -> RouteRule | None:
        key = codec.to_attributes({"host": host, "path_rule": path_rule})
        item = self.client.get_item(TableName=self.tables.routes, Key=key, ConsistentRead=True)
        return codec.route_from_item(item["Item"]) if "Item" in item else None

    def get_routes(self, host: str) -> list[RouteRule]:
        """All of a host's rules, in one query like the edge reads them."""
        kwargs: dict[str, Any] = {
            "TableName": self.tables.routes,
            "KeyConditionExpression": "#h = :h",
            "ExpressionAttributeNames": {"#h": "host"},
            "ExpressionAttributeValues": codec.to_attributes({":h": host}),
            "ConsistentRead": True,
        }
        rules: list[RouteRule] = []
        while True:
            page = self.client.query(**kwargs)
            rules += [codec.route_from_item(item) for item in page["Items"]]
            if "LastEvaluatedKey" not in page:
                return rules
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def put_route(
        self,
        rule: RouteRule,
        *,
        expected_revision: int | None,
        actor: str = "system",
        reason: str = "",
    ) -> RouteRule:
        """Create (``expected_revision=None``) or replace a route at a known revision."""
        return self.put_routes([(rule, expected_revision)], actor=actor, reason=reason)[0]

    def put_routes(
        self,
        rules: list[tuple[RouteRule, int | None]],
        *,
        actor: str = "system",
        reason: str = "",
        guards: list[dict[str, Any]] | None = None,
    ) -> list[RouteRule]:
        """Write several rules all or nothing, each conditional on the revision it was read
        at (None: must not exist yet) and on no rollout holding its target, each with an
        audit event under ``ROUTE#host#rule``.

        The lock is checked in the same transaction, so a rollout starting between a read
        and this write wins. One holder does not keep a person out: a FAILED rollout, whose
        rollback could not finish (it keeps the lock so nobody starts over a half-shifted
        route, and runbooks/rollback-failed.md repairs the route before ``recover``); the
        write is then conditional on that rollout still holding the lock and being FAILED.

        ``guards`` are more items of the same transaction, conditional writes that pin
        what the rules depend on (the flag data of flag-routed rules, from
        ``FlagStore.pinned_for``).

        Raises ``TargetLockedError`` naming the rollout, or ``StaleRouteError`` (a rule or
        a guarded item changed since it was read); nothing is written then."""
        if not 1 <= len(rules) <= MAX_RULES_PER_WRITE:
            raise ValueError(
                f"rules: between 1 and {MAX_RULES_PER_WRITE} per write (DynamoDB's 100-item "
                "transaction)"
            )
        groups: list[list[dict[str, Any]]] = []
        stored = []
        now = utcnow().isoformat()
        for rule, expected in rules:
            new = rule.model_copy(update={"revision": (expected or 0) + 1})
            if expected is None:
                write = self._put(
                    codec.route_item(new), "attribute_not_exists(host)", table=self.tables.routes
                )
            else:
                write = self._put(
                    codec.route_item(new),
                    "revision = :rev",
                    codec.to_attributes({":rev": expected}),
                    table=self.tables.routes,
                )
            audit = codec.to_attributes(
                {
                    "pk": f"ROUTE#{rule.host}#{rule.path_rule}",
                    "sk": f"EVENT#{new.revision:08d}",
                    "kind": "route_event",
                    "actor": actor,
                    "reason": reason,
                    "at": now,
                    "doc": new.model_dump_json(),
                }
            )
            groups.append(
                [write, self._put(audit, "attribute_not_exists(pk)"), *self._unheld(rule)]
            )
            stored.append(new)
        ops = [op for group in groups for op in group] + list(guards or ())
        if len(ops) > 100:
            raise ValueError("rules: too many for one DynamoDB transaction; write fewer at once")
        try:
            self.client.transact_write_items(TransactItems=ops)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                raise self._route_refusal(
                    [rule for rule, _ in rules],
                    [len(group) for group in groups],
                    [r.get("Code") for r in exc.response.get("CancellationReasons", [])],
                    guards or [],
                ) from exc
            raise
        return stored

    def _unheld(self, rule: RouteRule) -> list[dict[str, Any]]:
        """The conditions that keep a route write off a target an active rollout holds."""
        lock = codec.lock_key(rule.host, rule.path_rule)
        holder = self.lock_holder(rule.host, rule.path_rule)
        if holder is None:
            return [self._check(lock, "attribute_not_exists(pk)")]
        if self.get_rollout(holder).status is not RolloutStatus.FAILED:
            raise TargetLockedError(f"{rule.host} {rule.path_rule}", holder)
        return [
            self._check(lock, "rollout_id = :holder", {":holder": holder}),
            self._check(
                codec.rollout_key(holder),
                "#status = :failed",
                {":failed": RolloutStatus.FAILED.value},
                {"#status": "status"},
            ),
        ]

    def _check(
        self,
        key: dict[str, Any],
        condition: str,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        check: dict[str, Any] = {
            "TableName": self.tables.rollouts,
            "Key": key,
            "ConditionExpression": condition,
        }
        if values:
            check["ExpressionAttributeValues"] = codec.to_attributes(values)
        if names:
            check["ExpressionAttributeNames"] = names
        return {"ConditionCheck": check}

    def _route_refusal(
        self,
        rules: list[RouteRule],
        sizes: list[int],
        reasons: list[str | None],
        guards: list[dict[str, Any]],
    ) -> StoreError:
        """Which rule's which condition failed: a held lock first (it says whom to wait
        for), then a revision that moved on, then a guarded item. Each rule's items are its
        route, its audit event, then the lock conditions; the guards come last."""
        failed = [code == "ConditionalCheckFailed" for code in reasons]
        guarded = [
            op["Update"]["Key"]["path_rule"]["S"]
            for op, lost in zip(guards, failed[sum(sizes) :], strict=False)
            if lost and "Update" in op
        ]
        per_rule, at = [], 0
        for size in sizes:
            per_rule.append(failed[at : at + size])
            at += size
        for rule, checks in zip(rules, per_rule, strict=True):
            if any(checks[2:]):
                holder = self.lock_holder(rule.host, rule.path_rule)
                return TargetLockedError(f"{rule.host} {rule.path_rule}", holder)
        stale = [
            f"{rule.host} {rule.path_rule}"
            for rule, checks in zip(rules, per_rule, strict=True)
            if checks and checks[0]
        ]
        if guarded and not stale:
            return StaleRouteError(
                f"flag data changed while the routes were written: {', '.join(guarded)}; "
                "nothing was written, check the flags and write again"
            )
        return StaleRouteError(f"route changed since it was read: {', '.join(stale) or 'unknown'}")

    # -- rollouts ---------------------------------------------------------------------------

    def get_rollout(self, rollout_id: str) -> Rollout:
        item = self.client.get_item(
            TableName=self.tables.rollouts, Key=codec.rollout_key(rollout_id), ConsistentRead=True
        )
        if "Item" not in item:
            raise NotFoundError(f"rollout {rollout_id} not found")
        return codec.rollout_from_item(item["Item"])

    def events(
        self, rollout_id: str, *, after: int = 0, limit: int | None = None
    ) -> list[AuditEvent]:
        """The audit trail oldest first: the events after seq ``after``, at most ``limit``."""
        found = self._events(rollout_id, newest_first=False, after=after, page_size=limit)
        return list(found if limit is None else itertools.islice(found, limit))

    def newest_events(self, rollout_id: str) -> Iterator[AuditEvent]:
        """The audit trail from its latest event back, read a page at a time: a task that
        looks for the latest event of a kind stops reading there."""
        return self._events(rollout_id, newest_first=True)

    def _events(
        self, rollout_id: str, *, newest_first: bool, after: int = 0, page_size: int | None = None
    ) -> Iterator[AuditEvent]:
        # Event keys sort by seq (EVENT#<seq, zero-padded to 8 digits>).
        kwargs: dict[str, Any] = {
            "TableName": self.tables.rollouts,
            "KeyConditionExpression": "pk = :pk AND sk BETWEEN :first AND :last",
            "ExpressionAttributeValues": codec.to_attributes(
                {
                    ":pk": f"ROLLOUT#{rollout_id}",
                    ":first": f"EVENT#{after + 1:08d}",
                    ":last": "EVENT#99999999",
                }
            ),
            "ConsistentRead": True,
            "ScanIndexForward": not newest_first,
        }
        if page_size is not None:
            kwargs["Limit"] = page_size
        while True:
            page = self.client.query(**kwargs)
            yield from (codec.event_from_item(item) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def list_rollouts(
        self,
        *,
        target: str | None = None,
        statuses: frozenset[str] = frozenset(),
        limit: int = 50,
        after: str | None = None,
    ) -> tuple[list[Rollout], str | None]:
        """Newest first; ``target`` is ``host#path_rule``. Returns a page and the next cursor
        (a page may hold fewer than ``limit`` items when ``statuses`` filters some out)."""
        index, key = (BY_TARGET_INDEX, target) if target else (BY_KIND_INDEX, "rollout")
        kwargs: dict[str, Any] = {
            "TableName": self.tables.rollouts,
            "IndexName": index[0],
            "KeyConditionExpression": "#k = :v",
            "ExpressionAttributeNames": {"#k": index[1]},
            "ExpressionAttributeValues": codec.to_attributes({":v": key}),
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if statuses:
            names = {f":s{i}": status for i, status in enumerate(sorted(statuses))}
            kwargs["FilterExpression"] = f"#s IN ({', '.join(names)})"
            kwargs["ExpressionAttributeNames"]["#s"] = "status"
            kwargs["ExpressionAttributeValues"].update(codec.to_attributes(names))
        if after:
            kwargs["ExclusiveStartKey"] = codec.decode_cursor(after)
        page = self.client.query(**kwargs)
        rollouts = [codec.rollout_from_item(item) for item in page["Items"]]
        cursor = page.get("LastEvaluatedKey")
        return rollouts, codec.encode_cursor(cursor) if cursor else None

    def lock_holder(self, host: str, path_rule: str) -> str | None:
        item = self.client.get_item(
            TableName=self.tables.rollouts, Key=codec.lock_key(host, path_rule), ConsistentRead=True
        )
        return item["Item"]["rollout_id"]["S"] if "Item" in item else None

    def create_rollout(
        self, rollout: Rollout, event: AuditEvent, idempotency: tuple[str, str] | None = None
    ) -> None:
        """Write the rollout, take its target's lock and record the event, all or nothing.

        ``idempotency`` is ``(key, fingerprint of the request)``: the key is claimed in the
        same transaction, so a repeated start finds it and gets the first rollout back.
        """
        target = rollout.plan.target
        lock = {
            **codec.lock_key(target.host, target.path_rule),
            **codec.to_attributes({"kind": "lock", "rollout_id": rollout.rollout_id}),
        }
        ops = [
            self._put(codec.rollout_item(rollout), "attribute_not_exists(pk)"),
            self._put(lock, "attribute_not_exists(pk)"),
            self._put(codec.event_item(event), "attribute_not_exists(pk)"),
        ]
        if idempotency:
            key, fingerprint = idempotency
            claim = codec.to_attributes(
                {
                    "pk": f"IDEMPOTENCY#{key}",
                    "sk": "START",
                    "kind": "idempotency",
                    "rollout_id": rollout.rollout_id,
                    "fingerprint": fingerprint,
                    "expires_at": int(rollout.created_at.timestamp()) + IDEMPOTENCY_TTL_SECONDS,
                }
            )
            ops.insert(0, self._put(claim, "attribute_not_exists(pk)"))
        try:
            self._transact(ops, rollout, lock_index=2 if idempotency else 1)
        except StoreError:
            if idempotency and (earlier := self.idempotent_start(idempotency[0])):
                raise IdempotentReplay(*earlier) from None
            raise

    def idempotent_start(self, key: str) -> tuple[str, str] | None:
        """``(rollout_id, fingerprint)`` of the start that claimed ``key``, if any."""
        item = self.client.get_item(
            TableName=self.tables.rollouts,
            Key=codec.to_attributes({"pk": f"IDEMPOTENCY#{key}", "sk": "START"}),
            ConsistentRead=True,
        ).get("Item")
        if not item:
            return None
        return item["rollout_id"]["S"], item["fingerprint"]["S"]

    def commit(
        self,
        before: Rollout,
        after: Rollout,
        event: AuditEvent,
        *,
        route: RouteChange | None = None,
        release_lock: bool = False,
    ) -> None:
        """Move a rollout from ``before`` to ``after`` (version + 1) with its audit event."""
        if after.version != before.version + 1 or event.seq != after.version:
            raise ValueError("a commit moves the version by exactly one and records that version")
        ops = [
            self._put(
                codec.rollout_item(after),
                "version = :v",
                codec.to_attributes({":v": before.version}),
            ),
            self._put(codec.event_item(event), "attribute_not_exists(pk)"),
        ]
        if route is not None:
            ops.append(
                self._put(
                    codec.route_item(route.applied()),
                    "revision = :rev",
                    codec.to_attributes({":rev": route.rule.revision}),
                    table=self.tables.routes,
                )
            )
        if release_lock:
            target = before.plan.target
            ops.append(
                {
                    "Delete": {
                        "TableName": self.tables.rollouts,
                        "Key": codec.lock_key(target.host, target.path_rule),
                        "ConditionExpression": "attribute_not_exists(pk) OR rollout_id = :me",
                        "ExpressionAttributeValues": codec.to_attributes(
                            {":me": before.rollout_id}
                        ),
                    }
                }
            )
        self._transact(ops, before, route_index=2 if route else None)
        lifecycle.announce(event, after, self.eventbridge)

    def _put(
        self,
        item: dict[str, Any],
        condition: str,
        values: dict[str, Any] | None = None,
        table: str | None = None,
    ) -> dict[str, Any]:
        put: dict[str, Any] = {
            "TableName": table or self.tables.rollouts,
            "Item": item,
            "ConditionExpression": condition,
        }
        if values:
            put["ExpressionAttributeValues"] = values
        return {"Put": put}

    def _transact(
        self,
        ops: list[dict[str, Any]],
        rollout: Rollout,
        *,
        lock_index: int | None = None,
        route_index: int | None = None,
    ) -> None:
        try:
            self.client.transact_write_items(TransactItems=ops)  # type: ignore[arg-type]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            raise self._refusal(reasons, rollout, lock_index, route_index) from exc

    def _refusal(
        self,
        reasons: list[str | None],
        rollout: Rollout,
        lock_index: int | None,
        route_index: int | None,
    ) -> Exception:
        failed = {i for i, code in enumerate(reasons) if code == "ConditionalCheckFailed"}
        target = rollout.plan.target
        if lock_index in failed:
            holder = self.lock_holder(target.host, target.path_rule)
            return TargetLockedError(f"{target.host} {target.path_rule}", holder)
        if route_index in failed:
            return StaleRouteError(f"route {target.host} {target.path_rule} changed concurrently")
        if 0 in failed:
            return StaleRolloutError(f"rollout {rollout.rollout_id} changed concurrently")
        return StaleWriteError(f"write for rollout {rollout.rollout_id} refused: {reasons}")
