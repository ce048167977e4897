"""The DynamoDB tables: routes (read at every edge location) and rollouts (orchestrator only)."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_dynamodb as dynamodb
from constructs import Construct

# The store's own index list, so the deployed table has every index the store queries
# (listing rollouts by kind and by target). Adds the store package (~0.5 s) to a synth.
from orchestrator.store.tables import ROLLOUT_INDEXES

_STRING = dynamodb.AttributeType.STRING
_PITR = dynamodb.PointInTimeRecoverySpecification(point_in_time_recovery_enabled=True)


class RolloutTables(Construct):
    """Routes as a global table, so each edge region reads a nearby replica; rollouts regional."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        routes_table_name: str,
        rollouts_table_name: str,
        replica_regions: Sequence[str],
    ) -> None:
        super().__init__(scope, construct_id)
        # Key schemas mirror orchestrator/store/tables.py. Both tables hold live traffic weights
        # and the audit trail: deleting either by accident must take two deliberate steps.
        self.routes = dynamodb.TableV2(
            self,
            "Routes",
            table_name=routes_table_name,
            partition_key=dynamodb.Attribute(name="host", type=_STRING),
            sort_key=dynamodb.Attribute(name="path_rule", type=_STRING),
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=_PITR,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            replicas=[dynamodb.ReplicaTableProps(region=r) for r in replica_regions],
        )
        self.rollouts = dynamodb.TableV2(
            self,
            "Rollouts",
            table_name=rollouts_table_name,
            partition_key=dynamodb.Attribute(name="pk", type=_STRING),
            sort_key=dynamodb.Attribute(name="sk", type=_STRING),
            billing=dynamodb.Billing.on_demand(),
            point_in_time_recovery_specification=_PITR,
            deletion_protection=True,
            removal_policy=RemovalPolicy.RETAIN,
            # Items carrying expires_at (epoch seconds) expire; items without it are kept.
            time_to_live_attribute="expires_at",
            global_secondary_indexes=[
                dynamodb.GlobalSecondaryIndexPropsV2(
                    index_name=name,
                    partition_key=dynamodb.Attribute(name=partition, type=_STRING),
                    sort_key=dynamodb.Attribute(name=sort, type=_STRING),
                )
                for name, partition, sort in ROLLOUT_INDEXES
            ],
        )
