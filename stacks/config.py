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
DATADOG_SITE = "edgeshift:datadogSite"
DISTRIBUTION = "edgeshift:distribution"
ROUTED_PATHS = "edgeshift:routedPaths"
POWERTOOLS_VERSION = "edgeshift:powertoolsLayerVersion"
METRIC_PROVIDERS = "edgeshift:metricProviders"
INVALIDATION_DISTRIBUTIONS = "edgeshift:invalidationDistributionIds"
# Flag-driven routing: the secret holding the LaunchDarkly SDK key (the scheduled flag sync
# exists only when it is set), and the path patterns whose rules route by flag (their
# behaviours run the viewer-request function that carries the SDK).
LAUNCHDARKLY_SDK_KEY_SECRET = "edgeshift:launchDarklySdkKeySecret"
FLAG_ROUTED_PATHS = "edgeshift:flagRoutedPaths"

# The analysis providers a deployment can grant Begin and Analyze access to.
CLOUDWATCH = "cloudwatch"
DATADOG = "datadog"
METRIC_PROVIDER_NAMES = (CLOUDWATCH, DATADOG)

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
# The sites Datadog documents; the API host is api.<site>.
DATADOG_SITES = frozenset(
    {
        "datadoghq.com",
        "us3.datadoghq.com",
        "us5.datadoghq.com",
        "datadoghq.eu",
        "ap1.datadoghq.com",
        "ap2.datadoghq.com",
        "ddog-gov.com",
    }
)
_DISTRIBUTION_ID = re.compile(r"^E[A-Z0-9]{5,20}$")
# CloudFront path patterns: a leading slash (or a bare *), URL characters, * and ? wildcards.
_PATH_PATTERN = re.compile(r"^(/[A-Za-z0-9_\-.*$/~\"'@:+?&=!]*|\*)$")
# ACM certificates for CloudFront must live in us-east-1.
_CERTIFICATE_ARN = re.compile(r"^arn:aws[a-z-]*:acm:us-east-1:\d{12}:certificate/[0-9a-f-]{36}$")
_VERSION = re.compile(r"^(latest|\d+\.\d+\.\d+)$")


@dataclass(frozen=True, kw_only=True)
class DistributionConfig:
    """Either an existing distribution (by id) or a demo one this app creates."""

    existing_id: str | None = None
    demo_origin_domain: str | None = None
    certificate_arn: str | None = None

    @property
    def is_demo(self) -> bool:
        return self.existing_id is None


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
    metric_providers: tuple[str, ...] = METRIC_PROVIDER_NAMES
    # The folder the Datadog key secrets live under; None when Datadog is not a provider.
    datadog_secret_name: str | None
    datadog_site: str = "datadoghq.com"
    distribution: DistributionConfig
    routed_paths: tuple[str, ...]
    powertools_layer_version: str = "latest"
    # The distributions a rollback may invalidate; none: no CloudFront permission at all.
    invalidation_distribution_ids: tuple[str, ...] = ()
    routes_table_name: str = ROUTES_TABLE_NAME
    rollouts_table_name: str = ROLLOUTS_TABLE_NAME
    launchdarkly_sdk_key_secret: str | None = None
    flag_routed_paths: tuple[str, ...] = ()

    @property
    def edge_hosts(self) -> tuple[str, ...] | None:
        """The hosts the edge reads rules for, written into its bundled config.

        The demo distribution without a certificate answers on its *.cloudfront.net name,
        which is not known until it exists (and the functions must exist first), so there the
        edge reads any host, behind its bounded cache of hosts without rules.
        """
        demo = self.distribution
        if demo.is_demo and demo.certificate_arn is None:
            return None
        return self.hosts

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
        providers, secret = _metric_providers(get)
        site = get(DATADOG_SITE) or "datadoghq.com"
        if site not in DATADOG_SITES:
            raise ContextError(DATADOG_SITE, f"{site!r} is not one of {sorted(DATADOG_SITES)}")
        paths = _string_list(ROUTED_PATHS, get(ROUTED_PATHS), allow_empty=False)
        for path in paths:
            if not _PATH_PATTERN.match(path):
                raise ContextError(ROUTED_PATHS, f"{path!r} is not a CloudFront path pattern")
        powertools = get(POWERTOOLS_VERSION) or "latest"
        if not isinstance(powertools, str) or not _VERSION.match(powertools):
            raise ContextError(
                POWERTOOLS_VERSION, f"{powertools!r} is neither 'latest' nor a version like 3.4.0"
            )
        sdk_key_secret = get(LAUNCHDARKLY_SDK_KEY_SECRET)
        if sdk_key_secret is not None and (
            not isinstance(sdk_key_secret, str) or not _SECRET_NAME.match(sdk_key_secret)
        ):
            raise ContextError(
                LAUNCHDARKLY_SDK_KEY_SECRET, f"{sdk_key_secret!r} is not a Secrets Manager name"
            )
        flag_paths = _string_list(FLAG_ROUTED_PATHS, get(FLAG_ROUTED_PATHS) or [], allow_empty=True)
        for path in flag_paths:
            if not _PATH_PATTERN.match(path):
                raise ContextError(FLAG_ROUTED_PATHS, f"{path!r} is not a CloudFront path pattern")
            if path in paths:
                raise ContextError(
                    FLAG_ROUTED_PATHS, f"{path!r} is in {ROUTED_PATHS} too; list it in one only"
                )
        return cls(
            hosts=hosts,
            primary_region=primary,
            replica_regions=replicas,
            metric_providers=providers,
            datadog_secret_name=secret,
            datadog_site=site,
            distribution=_distribution(get(DISTRIBUTION)),
            routed_paths=paths,
            powertools_layer_version=powertools,
            invalidation_distribution_ids=_invalidation_ids(get(INVALIDATION_DISTRIBUTIONS)),
            launchdarkly_sdk_key_secret=sdk_key_secret,
            flag_routed_paths=flag_paths,
        )


def from_mapping(context: Mapping[str, Any]) -> AppConfig:
    """Validate a plain dict of context values (tests, scripts)."""
    return AppConfig.from_context(context.get)


def _metric_providers(get: Callable[[str], Any]) -> tuple[tuple[str, ...], str | None]:
    """The providers Begin and Analyze may read, and the Datadog secrets' folder.

    Begin's preflight and Analyze call every provider a plan names; a provider without its
    settings would deploy roles that refuse those calls, so that stops synthesis here.
    """
    value = get(METRIC_PROVIDERS)
    providers = (
        METRIC_PROVIDER_NAMES
        if value is None
        else _string_list(METRIC_PROVIDERS, value, allow_empty=False)
    )
    unknown = sorted(set(providers) - set(METRIC_PROVIDER_NAMES))
    if unknown:
        raise ContextError(
            METRIC_PROVIDERS, f"unknown providers {unknown}; known: {list(METRIC_PROVIDER_NAMES)}"
        )
    secret = get(DATADOG_SECRET_NAME)
    if DATADOG not in providers:
        return providers, None
    if secret is None or secret == "":
        raise ContextError(
            DATADOG_SECRET_NAME,
            "missing: the datadog provider is configured, and Begin and Analyze may read only "
            "the key secrets named under this folder (e.g. edgeshift/datadog)",
        )
    if not isinstance(secret, str) or not _SECRET_NAME.match(secret):
        raise ContextError(DATADOG_SECRET_NAME, f"{secret!r} is not a Secrets Manager secret name")
    if secret.endswith("/"):
        # The grant is on "<name>/*": a trailing slash would ask plans for "<name>//api-key".
        raise ContextError(DATADOG_SECRET_NAME, f"{secret!r}: give the folder without a final /")
    return providers, secret


def _invalidation_ids(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    ids = _string_list(INVALIDATION_DISTRIBUTIONS, value, allow_empty=True)
    for distribution_id in ids:
        if not _DISTRIBUTION_ID.match(distribution_id):
            raise ContextError(
                INVALIDATION_DISTRIBUTIONS,
                f"{distribution_id!r} is not a CloudFront distribution id",
            )
    return ids


def _distribution(value: Any) -> DistributionConfig:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ContextError(DISTRIBUTION, f"not a valid JSON object ({exc.msg})") from exc
    if not isinstance(value, dict):
        raise ContextError(
            DISTRIBUTION, 'expected {"id": "E..."} or {"demoOriginDomain": "origin.example.com"}'
        )
    unknown = value.keys() - {"id", "demoOriginDomain", "certificateArn"}
    if unknown:
        raise ContextError(DISTRIBUTION, f"unknown fields {sorted(unknown)}")
    existing, origin = value.get("id"), value.get("demoOriginDomain")
    if (existing is None) == (origin is None):
        raise ContextError(DISTRIBUTION, "set exactly one of 'id' and 'demoOriginDomain'")
    if existing is not None and (
        not isinstance(existing, str) or not _DISTRIBUTION_ID.match(existing)
    ):
        raise ContextError(DISTRIBUTION, f"id {existing!r} is not a CloudFront distribution id")
    if origin is not None and (not isinstance(origin, str) or not _HOST.match(origin)):
        raise ContextError(DISTRIBUTION, f"demoOriginDomain {origin!r} is not a DNS name")
    certificate = value.get("certificateArn")
    if certificate is not None:
        if existing is not None:
            raise ContextError(DISTRIBUTION, "certificateArn applies to the demo distribution only")
        if not isinstance(certificate, str) or not _CERTIFICATE_ARN.match(certificate):
            raise ContextError(
                DISTRIBUTION, f"certificateArn {certificate!r} is not an ACM ARN in us-east-1"
            )
    return DistributionConfig(
        existing_id=existing, demo_origin_domain=origin, certificate_arn=certificate
    )


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
