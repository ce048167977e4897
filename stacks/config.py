"""The app's settings, read from CDK context and checked before any construct is built.

A bad value fails `cdk synth` with the context key in the message, instead of surfacing as a
CloudFormation error halfway through a deploy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

HOSTS = "edgeshift:hosts"
PRIMARY_REGION = "edgeshift:primaryRegion"
REPLICA_REGIONS = "edgeshift:replicaRegions"
DATADOG_SECRET_NAME = "edgeshift:datadogSecretName"

# Lambda@Edge functions and CloudFront configuration live in us-east-1 only.
EDGE_REGION = "us-east-1"
# The tables keep their names fixed because the edge cannot take environment variables: the
# routes table name is written into the edge bundle. Same defaults as
# orchestrator.store.tables.TableNames (a test keeps them in step).
ROUTES_TABLE_NAME = "edgeshift-routes"
ROLLOUTS_TABLE_NAME = "edgeshift-rollouts"

_REGION = re.compile(r"^[a-z]{2}(-gov)?-[a-z]+-\d$")
_LABEL = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
# CloudFront alternate domain names may start with one wildcard label.
_HOST = re.compile(rf"^(\*\.)?({_LABEL}\.)+{_LABEL}$")
# Secrets Manager's own name alphabet.
_SECRET_NAME = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")


class ContextError(ValueError):
    """A context value is missing or malformed; the message names the context key."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"context key {key!r}: {problem}")
        self.key = key


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    hosts: tuple[str, ...]
    primary_region: str
    replica_regions: tuple[str, ...]
    datadog_secret_name: str
    routes_table_name: str = ROUTES_TABLE_NAME
    rollouts_table_name: str = ROLLOUTS_TABLE_NAME

    @property
    def table_regions(self) -> tuple[str, ...]:
        """Every region holding a copy of the routes table, the primary first."""
        return (self.primary_region, *self.replica_regions)

    @classmethod
    def from_context(cls, get: Callable[[str], Any]) -> AppConfig:
        """Build from a context lookup such as `app.node.try_get_context`."""
        primary = get(PRIMARY_REGION) or EDGE_REGION
        if not isinstance(primary, str) or not _REGION.match(primary):
            raise ContextError(PRIMARY_REGION, f"{primary!r} does not look like an AWS region")
        replicas = _string_list(REPLICA_REGIONS, get(REPLICA_REGIONS), allow_empty=True)
        for region in replicas:
            if not _REGION.match(region):
                raise ContextError(REPLICA_REGIONS, f"{region!r} does not look like an AWS region")
        if primary in replicas:
            raise ContextError(
                REPLICA_REGIONS, f"{primary!r} is the primary region; list only the other regions"
            )
        hosts = _string_list(HOSTS, get(HOSTS), allow_empty=False)
        for host in hosts:
            if not _HOST.match(host):
                raise ContextError(HOSTS, f"{host!r} is not a lower-case DNS name")
        secret = get(DATADOG_SECRET_NAME)
        if not isinstance(secret, str) or not _SECRET_NAME.match(secret):
            raise ContextError(
                DATADOG_SECRET_NAME, f"{secret!r} is not a Secrets Manager secret name"
            )
        return cls(
            hosts=hosts,
            primary_region=primary,
            replica_regions=replicas,
            datadog_secret_name=secret,
        )


def from_mapping(context: Mapping[str, Any]) -> AppConfig:
    """Validate a plain dict of context values (tests, scripts)."""
    return AppConfig.from_context(context.get)


def _string_list(key: str, value: Any, *, allow_empty: bool) -> tuple[str, ...]:
    # `cdk -c key=value` hands over a string: accept a JSON list or comma-separated names.
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ContextError(key, f"not a valid JSON list ({exc.msg})") from exc
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
    if value is None:
        raise ContextError(key, "missing (set it in cdk.json or with -c)")
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise ContextError(key, f"expected a list of strings, got {value!r}")
    if not value and not allow_empty:
        raise ContextError(key, "must list at least one value")
    if len(set(value)) != len(value):
        raise ContextError(key, f"lists a value twice: {list(value)!r}")
    return tuple(value)
