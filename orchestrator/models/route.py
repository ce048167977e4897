"""A route: what the edge reads for one host and path rule.

The item shape is the contract with ``edge/``: variants are stored canary first, so
the canary's bucket range always starts at 0 and raising its weight never moves a
canary user back to stable.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

FULL_WEIGHT = 10_000  # basis points
_PATH_RULE = re.compile(r"^(default|exact:/\S*|prefix:/\S*)$")
_HOST = re.compile(
    r"^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

Weight = Annotated[int, Field(ge=0, le=FULL_WEIGHT, description="basis points: 10000 = 100%")]


class Strict(BaseModel):
    """Unknown fields are errors: a typo in a plan must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class SetOrigin(Strict):
    domain: str = Field(min_length=1, max_length=253)
    port: int = Field(default=443, ge=1, le=65535)
    protocol: Literal["http", "https"] = "https"
    path: str = Field(default="", max_length=255, pattern=r"^(/[^?#]*)?$")


class VariantActions(Strict):
    set_uri: str | None = Field(default=None, min_length=1, max_length=1024, pattern=r"^/")
    set_origin: SetOrigin | None = None


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
        if not _NAME.match(value):
            raise ValueError(
                "must be lowercase letters, digits, '-' or '_', starting with a letter"
            )
        return value


class Variant(Release):
    actions: VariantActions = VariantActions()
    weight: Weight


def check_host(value: str) -> str:
    if not _HOST.match(value):
        raise ValueError("must be a lowercase DNS host name such as 'www.example.com'")
    return value


def check_path_rule(value: str) -> str:
    if not _PATH_RULE.match(value):
        raise ValueError("must be 'default', 'exact:/path' or 'prefix:/path'")
    return value


Host = Annotated[str, AfterValidator(check_host)]
PathRule = Annotated[str, AfterValidator(check_path_rule)]


class RouteRule(Strict):
    host: Host
    path_rule: PathRule = "default"
    variants: list[Variant] = Field(min_length=2, max_length=8)
    salt: str = Field(default="", max_length=128)
    rollout_id: str | None = None
    revision: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _weights_cover_everyone(self) -> RouteRule:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variant names must be unique, got {names}")
        total = sum(v.weight for v in self.variants)
        if total != FULL_WEIGHT:
            raise ValueError(f"variant weights must sum to {FULL_WEIGHT} basis points, got {total}")
        return self

    def variant(self, name: str) -> Variant:
        for candidate in self.variants:
            if candidate.name == name:
                return candidate
        raise KeyError(name)

    def weights(self) -> dict[str, int]:
        return {v.name: v.weight for v in self.variants}
