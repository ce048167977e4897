"""A route: what the edge reads for one host and path rule.

The item in the routes table (partition key ``host``, sort key ``path_rule``) is the only
contract between the orchestrator and ``edge/``; it is a native DynamoDB map of
``RouteRule.model_dump(mode="json", exclude_none=True)``::

    host          "www.example.com"
    path_rule     "default" | "exact:/path" | "prefix:/path"  (exact > longest prefix > default)
    variants      [{name, version, weight (basis points), actions}], canary first, sum 10000
    salt          per rollout: each rollout picks a different cohort
    rollout_id, revision
    stickiness    optional {key: "ip_ua" | "cookie" | "header", name, max_age}; ip_ua if absent
    cache_control optional Cache-Control value viewer-response sets on this rule's responses
    allow_forced  optional bool: QA may force a variant with a signed token (edge secret)
    assignment    optional: the variant comes from a LaunchDarkly flag's evaluation for the
                  viewer instead of the weights ({provider: launchdarkly, flag, context:
                  {kind, key_from: "cookie:NAME" | "header:NAME" | "ip_ua", when_missing},
                  variations: {flag value as string: variant name}, fallback})

Variants are stored canary first, so the canary's bucket range always starts at 0 and raising
its weight never moves a canary user back to stable. Actions per variant: ``set_uri``,
``set_querystring``, ``set_headers`` (viewer-request), ``set_origin`` (origin-request, custom
or S3), ``redirect`` or ``respond`` (a generated response; alone, since it ends the request).
Everything here is checked when written, naming the field. The CloudFront rules (which
headers a trigger may set, template fields, safe redirect locations, the generated-response
size with every header the edge adds, URI limits) are the edge's own checks in
``edge/validate.py`` and ``edge/cloudfront.py``, called from here: ``edge`` is stdlib-only at
the bottom of the import graph, so there is one copy. The edge runs the same checks when it
reads an item and serves stable for the paths of a rule that fails them.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from edge import cloudfront
from edge import validate as edge_rules

FULL_WEIGHT = edge_rules.FULL_WEIGHT
MAX_VIEWER_RESPONSE_BYTES = cloudfront.MAX_GENERATED_RESPONSE_BYTES
_HOST = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
HOST_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
_S3_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\.s3[a-z0-9.-]*\.amazonaws\.com$")
BASE_FIELDS = edge_rules.BASE_FIELDS
QUERY_FIELDS = edge_rules.QUERY_FIELDS

Weight = Annotated[int, Field(ge=0, le=FULL_WEIGHT, description="basis points: 10000 = 100%")]


class Strict(BaseModel):
    """Unknown fields are errors: a typo in a plan must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _raise_on(problem: str | None) -> None:
    if problem is not None:
        raise ValueError(problem)


def check_template(value: str, allowed: frozenset[str] = BASE_FIELDS) -> str:
    """Every ``{...}`` in ``value`` names a known field, and no secret header is read."""
    _raise_on(edge_rules.template_problem(value, allowed))
    return value


def check_header_name(name: str, *, request: bool = True) -> str:
    """A header a route may set: in viewer-request, or in a generated response."""
    trigger = cloudfront.VIEWER_REQUEST if request else cloudfront.GENERATED
    _raise_on(edge_rules.header_name_problem(name, trigger))
    return name


Template = Annotated[str, Field(min_length=1, max_length=2048), AfterValidator(check_template)]


def _query_template(value: str) -> str:
    return check_template(value, QUERY_FIELDS)


QueryTemplate = Annotated[
    str, Field(min_length=1, max_length=2048), AfterValidator(_query_template)
]
UriTemplate = Annotated[
    str, Field(min_length=1, max_length=2048, pattern=r"^/"), AfterValidator(check_template)
]
HeaderTemplates = Annotated[dict[str, Template], Field(max_length=20)]


class SetOrigin(Strict):
    """Where a variant's cache misses go: a custom origin (default) or an S3 bucket."""

    kind: Literal["custom", "s3"] = "custom"
    domain: str = Field(min_length=1, max_length=253)
    port: int = Field(default=443, ge=1, le=65535)
    protocol: Literal["http", "https"] = "https"
    path: str = Field(default="", max_length=255, pattern=r"^(/[^?#]*[^/?#])?$")
    region: str | None = Field(default=None, pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")
    auth_method: Literal["none", "origin-access-identity"] | None = None

    @model_validator(mode="after")
    def _fits_its_kind(self) -> SetOrigin:
        if self.kind == "s3":
            return self._check_s3()
        if ":" in self.domain:
            raise ValueError("domain: cannot hold a colon (the port goes in port)")
        if _is_ip(self.domain) and not _is_ip(self.domain, loopback=True):
            # CloudFront wants a DNS name; loopback is accepted only for the local stack.
            raise ValueError("domain: CloudFront custom origins need a DNS name, not an IP")
        if self.port not in (80, 443) and self.port < 1024:
            raise ValueError("port: CloudFront allows 80, 443 or 1024-65535")
        if self.region is not None or self.auth_method is not None:
            raise ValueError("region and auth_method apply to S3 origins only")
        return self

    def _check_s3(self) -> SetOrigin:
        if {"port", "protocol"} & self.model_fields_set:
            raise ValueError("port and protocol apply to custom origins only")
        if len(self.domain) > 128 or not _S3_DOMAIN.match(self.domain):
            raise ValueError(
                "domain: an S3 origin is a lowercase bucket domain, e.g. b.s3.amazonaws.com"
            )
        if self.auth_method == "origin-access-identity" and self.region is None:
            raise ValueError("region: required with auth_method 'origin-access-identity'")
        return self


class Redirect(Strict):
    status: Literal[301, 302, 307, 308] = 302
    location: QueryTemplate
    keep_querystring: bool = True

    @field_validator("location")
    @classmethod
    def _same_host_or_literal_url(cls, value: str) -> str:
        _raise_on(edge_rules.location_problem(value))
        return value


class Respond(Strict):
    """A synthetic response from viewer-request; CloudFront caps it at 40 KB."""

    status: int = Field(default=200, ge=200, le=599)
    body: str = ""
    content_type: str = Field(default="text/plain; charset=utf-8", min_length=1, max_length=256)
    headers: dict[str, str] = Field(default_factory=dict, max_length=20)

    @field_validator("headers")
    @classmethod
    def _settable(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            check_header_name(name, request=False)
        return value

    @field_validator("content_type")
    @classmethod
    def _a_header_value(cls, value: str) -> str:
        _raise_on(cloudfront.header_value_problem(value))
        return value


class VariantActions(Strict):
    set_uri: UriTemplate | None = None
    set_querystring: QueryTemplate | None = None
    set_headers: HeaderTemplates | None = None
    set_origin: SetOrigin | None = None
    redirect: Redirect | None = None
    respond: Respond | None = None

    @field_validator("set_querystring")
    @classmethod
    def _no_question_mark(cls, value: str | None) -> str | None:
        if value is not None and value.startswith("?"):
            raise ValueError("leave out the leading '?'")
        return value

    @field_validator("set_headers")
    @classmethod
    def _settable_headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        _raise_on(edge_rules.set_headers_problem(value) if value is not None else None)
        return value

    @model_validator(mode="after")
    def _generated_response_stands_alone(self) -> VariantActions:
        present = [name for name, value in self if value is not None]
        terminal = [name for name in present if name in ("redirect", "respond")]
        if terminal and len(present) > 1:
            others = ", ".join(n for n in present if n != terminal[0])
            raise ValueError(f"{terminal[0]} answers the request itself; remove {others}")
        return self


class Stickiness(Strict):
    """What identifies a viewer for assignment. ``ip_ua`` needs nothing from the viewer."""

    key: Literal["ip_ua", "cookie", "header"] = "ip_ua"
    name: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=cloudfront.TOKEN.pattern
    )
    max_age: int = Field(default=30 * 86_400, ge=60, le=400 * 86_400)

    @model_validator(mode="after")
    def _named_when_needed(self) -> Stickiness:
        if self.key != "ip_ua" and self.name is None:
            raise ValueError(f"name: the {self.key} to read is required for key '{self.key}'")
        if self.key == "ip_ua" and self.name is not None:
            raise ValueError("name: only cookie and header stickiness read a name")
        if self.key == "header" and self.name is not None:
            check_header_name(self.name)
        return self


class FlagContext(Strict):
    """The LaunchDarkly context a flag is evaluated for, built from the viewer's request.

    ``when_missing`` says what a viewer without the cookie or header gets: the rule's
    ``fallback`` variant, or an evaluation keyed by client IP and User-Agent.
    """

    kind: str = "user"
    key_from: str
    when_missing: Literal["fallback", "ip_ua"] = "fallback"

    @field_validator("key_from")
    @classmethod
    def _a_key_source(cls, value: str) -> str:
        _raise_on(edge_rules.key_from_problem(value))
        return value

    @model_validator(mode="after")
    def _the_edge_reads_it(self) -> FlagContext:
        _raise_on(edge_rules.flag_context_problem(self.model_dump()))
        return self


class Assignment(Strict):
    """A rule's variant from a flag: ``variations`` maps the flag's value, as a string
    (``"true"``/``"false"`` for a boolean flag), to a variant; anything else, and any flag
    data the edge lacks, serves ``fallback``."""

    provider: Literal["launchdarkly"]
    flag: str = Field(max_length=256)
    context: FlagContext
    variations: dict[str, str] = Field(min_length=1, max_length=edge_rules.MAX_VARIATIONS)
    fallback: str

    @field_validator("flag")
    @classmethod
    def _a_flag_key(cls, value: str) -> str:
        _raise_on(edge_rules.flag_key_problem(value))
        return value

    @field_validator("variations", mode="before")
    @classmethod
    def _yaml_keys_as_flag_values(cls, value: object) -> object:
        # YAML reads an unquoted `true:` or `3:` key as a bool or number: the flag value.
        from edge import flags

        if isinstance(value, dict):
            scalar = (bool, int, float, type(None))
            return {flags.value_key(k) if isinstance(k, scalar) else k: v for k, v in value.items()}
        return value

    def variant_for(self, flag_value: object) -> str | None:
        """The variant ``variations`` names for a flag value, None if it names none."""
        from edge import flags

        return self.variations.get(flags.value_key(flag_value))


class Release(Strict):
    """One version of what is being served: the stable one or the canary.

    In a plan, ``actions`` left out means "keep the route's actions for this variant".
    """

    name: str = Field(description="variant name, e.g. 'stable' or 'canary'")
    version: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    actions: VariantActions | None = None

    @field_validator("name")
    @classmethod
    def _name_is_a_slug(cls, value: str) -> str:
        _raise_on(edge_rules.variant_name_problem(value))
        return value


class Variant(Release):
    actions: VariantActions = VariantActions()
    weight: Weight


def check_host(value: str) -> str:
    if not _HOST.match(value):
        raise ValueError("must be a lowercase DNS host name such as 'www.example.com'")
    return value


def check_path_rule(value: str) -> str:
    problem = edge_rules.path_rule_problem(value)
    _raise_on(None if problem is None else problem.removeprefix("path_rule: "))
    return value


# Documented as JSON Schema can say it (no look-ahead), so a host the API document allows
# is a host the model takes: lowercase DNS labels, at most 253 characters.
Host = Annotated[
    str,
    AfterValidator(check_host),
    WithJsonSchema({"type": "string", "maxLength": 253, "pattern": HOST_PATTERN}),
]
PathRule = Annotated[str, AfterValidator(check_path_rule)]


class RouteRule(Strict):
    host: Host
    path_rule: PathRule = "default"
    variants: list[Variant] = Field(min_length=2, max_length=8)
    salt: str = Field(default="", max_length=128)
    rollout_id: str | None = None
    revision: int = Field(default=0, ge=0)
    stickiness: Stickiness | None = None
    cache_control: str | None = Field(
        default=None, min_length=1, max_length=256, pattern=r"^[\x20-\x7e]+$"
    )
    allow_forced: StrictBool = False
    assignment: Assignment | None = None

    @field_validator("variants")
    @classmethod
    def _weights_cover_everyone(cls, variants: list[Variant]) -> list[Variant]:
        # A field validator, so the error names `variants`, not the whole rule.
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        total = sum(v.weight for v in variants)
        if total != FULL_WEIGHT:
            raise ValueError(f"variant weights must sum to {FULL_WEIGHT} basis points, got {total}")
        return variants

    @model_validator(mode="after")
    def _the_edge_serves_it(self) -> RouteRule:
        # The edge's own check over the stored form: what only the whole rule decides (a
        # generated response with the Cache-Control, cookie and debug header the edge adds)
        # and anything the fields above let through that the edge would not serve.
        problem = edge_rules.rule_problem(self.model_dump(mode="json", exclude_none=True))
        if problem is not None:
            raise ValueError(f"{problem} (rule {self.path_rule})")
        return self

    @property
    def flag_routed(self) -> bool:
        """True when a flag, not the weights, chooses this rule's variant."""
        return self.assignment is not None

    def variant(self, name: str) -> Variant:
        for candidate in self.variants:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def weights(self) -> dict[str, int]:
        return {v.name: v.weight for v in self.variants}


def _is_ip(value: str, *, loopback: bool = False) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return address.is_loopback if loopback else True
