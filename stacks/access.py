"""What each orchestrator function calls on the two tables; the stack grants exactly this.

Read off the code that makes the calls (orchestrator/store/repository.py and its callers in
orchestrator/workflow/ and orchestrator/service.py). Every change to a rollout is one
TransactWriteItems of Puts (the rollout and its audit event, and the route when traffic
moves); IAM authorizes a transaction item by item, so a Put needs dynamodb:PutItem, the
Delete that frees a target's lock when a rollout ends needs dynamodb:DeleteItem, and the
ConditionCheck on the lock that a route definition carries needs
dynamodb:ConditionCheckItem (and the Update that pins a flag-routed rule's flag,
dynamodb:UpdateItem). Nothing scans, batches or reads streams. The local stack runs
every function under these grants (orchestrator/local/iam.py), so a call missing here
fails the integration tests.
"""

from __future__ import annotations

from dataclasses import dataclass

GET = "dynamodb:GetItem"
PUT = "dynamodb:PutItem"
CONDITION_CHECK = "dynamodb:ConditionCheckItem"
DELETE = "dynamodb:DeleteItem"
UPDATE = "dynamodb:UpdateItem"
QUERY = "dynamodb:Query"
SCAN = "dynamodb:Scan"


@dataclass(frozen=True, kw_only=True)
class TableAccess:
    """Actions on the rollouts table, on its secondary indexes, and on the routes table."""

    rollouts: tuple[str, ...]
    rollout_indexes: tuple[str, ...] = ()
    routes: tuple[str, ...] = ()


# Load the rollout, commit a change to it.
_COMMITS = (GET, PUT)
# ... and end it: a final status frees the target's lock in the same transaction.
_ENDS = (GET, PUT, DELETE)
# Read the route's revision, write its new weights in the rollout's transaction.
_MOVES_TRAFFIC = (GET, PUT)

# Keyed by ASL placeholder, like orchestrator.workflow.definition.TASKS. A task missing here
# stops synthesis rather than deploying a function that cannot read its rollout.
TASK_ACCESS: dict[str, TableAccess] = {
    "BeginFunctionArn": TableAccess(rollouts=_COMMITS),
    "ApplyStageFunctionArn": TableAccess(rollouts=_COMMITS, routes=_MOVES_TRAFFIC),
    # A retried look finds its own recorded decision among the audit events.
    "AnalyzeFunctionArn": TableAccess(rollouts=(*_COMMITS, QUERY)),
    "HoldFunctionArn": TableAccess(rollouts=_COMMITS),
    # Hold's, and the audit events, for the answer whose wake-up call was lost.
    "RecheckFunctionArn": TableAccess(rollouts=(*_COMMITS, QUERY)),
    "PromoteFunctionArn": TableAccess(rollouts=_ENDS, routes=_MOVES_TRAFFIC),
    "RollbackFunctionArn": TableAccess(rollouts=_ENDS, routes=_MOVES_TRAFFIC),
    # FAILED keeps the lock on purpose (nobody starts over a half-rolled-back route).
    "RecordFailureFunctionArn": TableAccess(rollouts=_COMMITS),
}

# People's requests: starts (lock, rollout, idempotency claim), steering commits, the
# events behind a resent wake-up call, listings through the by-kind and by-target indexes,
# recover (which ends a rollout and moves traffic, and frees the lock: DeleteItem), and
# route definitions (PUT /routes: Puts on both tables, with a ConditionCheck on the
# target's lock in the rollouts table, and for a flag-routed rule an Update moving its
# flag item to the next revision, so a concurrent flag sync cannot delete it under the rule;
# GET reads a host's rules with one Query).
API_ACCESS = TableAccess(
    rollouts=(GET, PUT, DELETE, QUERY, CONDITION_CHECK),
    rollout_indexes=(QUERY,),
    routes=(GET, QUERY, PUT, UPDATE),
)

# A release starts a rollout like POST /rollouts, with the event id as the store's own
# idempotency claim; a start whose execution never began frees its lock (Delete). The
# route is read for its stable version and never written.
EVENTS_ACCESS = TableAccess(rollouts=_ENDS, routes=(GET,))

# The scheduled flag sync (orchestrator/flags/): reads the flag items (Query), finds the
# flag-routed rules (the one filtered Scan in the app: no index lists rules by flag),
# writes and deletes flag items conditionally, each with an audit event (Put).
FLAG_SYNC_ACCESS = TableAccess(rollouts=(PUT,), routes=(QUERY, SCAN, PUT, DELETE))
