"""The analysis section of a plan: where counts come from and how the canary is judged.

The short form (one error-rate metric from ``requests_metric`` / ``errors_metric`` in a
CloudWatch namespace) stays valid; ``metrics`` lists any number of metrics instead.
Query templates may use ``{variant}``, ``{version}``, ``{rollout_id}`` and ``{host}``;
any other name is rejected here, when the plan is validated, not during the rollout.
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Discriminator, Field, Tag, field_validator, model_validator

from .durations import Duration
from .route import Strict

PLACEHOLDERS = ("variant", "version", "rollout_id", "host")
DATADOG_SITES = (
    "datadoghq.com",
    "us3.datadoghq.com",
    "us5.datadoghq.com",
    "ap1.datadoghq.com",
    "ap2.datadoghq.com",
    "datadoghq.eu",
    "ddog-gov.com",
)
MAX_METRICS = 20


# ``{name}`` is a placeholder; braces around anything with ':', ',', '*', '!' or spaces are
# left alone, so Datadog scopes like ``{host:{host},variant:{variant}}`` need no escaping.
_PLACEHOLDER = re.compile(r"\{([^{}:,*!\s]*)\}")


def check_template(template: str) -> str:
    """Raise ``ValueError`` naming the placeholder when ``template`` cannot be filled."""
    depth = 0
    for char in template:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            break
    if depth != 0:
        raise ValueError(f"unbalanced braces in {template!r}")
    for match in _PLACEHOLDER.finditer(template):
        if match.group(1) not in PLACEHOLDERS:
            raise ValueError(
                f"unknown placeholder {match.group(0)} in {template!r}; "
                "use {variant}, {version}, {rollout_id} or {host}"
            )
    return template


def fill_template(template: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda match: values[match.group(1)], template)


Template = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(check_template)]
MetricName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]


class Direction(StrEnum):
    LOWER = "lower"  # lower is better: error rate, latency
    HIGHER = "higher"  # higher is better: conversion, success rate


class Tolerance(Strict):
    """How much worse than the baseline the canary may be and still pass: the larger of a
    share of the baseline's rate (``relative``) and a number of rate points (``absolute``)."""

    relative: float = Field(default=0.0, ge=0, le=10)
    absolute: float = Field(default=0.0, ge=0, le=1)

    def margin(self, baseline_rate: float) -> float:
        return max(self.absolute, self.relative * baseline_rate)


class RatioMetric(Strict):
    """Bad (or good) events over all events, canary against baseline."""

    name: MetricName
    kind: Literal["ratio"] = "ratio"
    numerator: Template = Field(description="CloudWatch metric name or Datadog query")
    denominator: Template = Field(description="CloudWatch metric name or Datadog query")
    direction: Direction = Direction.LOWER
    tolerance: Tolerance = Tolerance(relative=0.2)
    min_samples: int = Field(default=500, ge=1, description="events per variant before judging")
    limit: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="absolute guard: the canary's rate must stay below (lower is better) or "
        "above (higher is better) this, whatever the baseline does",
    )
    critical: bool = Field(default=False, description="a failure rolls back at once")


class ThresholdMetric(Strict):
    """A value (latency, saturation) of the canary judged against fixed bounds."""

    name: MetricName
    kind: Literal["threshold"] = "threshold"
    query: Template = Field(description="CloudWatch metric name or Datadog query")
    stat: str = Field(default="Average", min_length=1, max_length=20, description="CloudWatch")
    aggregator: Literal["avg", "max", "min", "last", "sum"] = Field(
        default="avg", description="how the window's points become one value"
    )
    max: float | None = None
    min: float | None = None
    critical: bool = False

    @model_validator(mode="after")
    def _has_a_bound(self) -> ThresholdMetric:
        if self.max is None and self.min is None:
            raise ValueError("a threshold metric needs max, min or both")
        if self.max is not None and self.min is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        return self


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("kind", "ratio"))
    return str(getattr(value, "kind", "ratio"))


Metric = Annotated[
    Annotated[RatioMetric, Tag("ratio")] | Annotated[ThresholdMetric, Tag("threshold")],
    Discriminator(_kind),
]


class DatadogSource(Strict):
    site: Literal[DATADOG_SITES] = "datadoghq.com"  # type: ignore[valid-type]
    api_key_secret: str = Field(min_length=1, max_length=512, description="Secrets Manager id")
    app_key_secret: str = Field(min_length=1, max_length=512, description="Secrets Manager id")
    api: Literal["v2", "v1"] = Field(default="v2", description="v2 scalar or v1 query_metrics")
    fallback_to_v1: bool = Field(default=True, description="retry a failed v2 query on v1")
    timeout: float = Field(default=10.0, gt=0, le=60, description="seconds per HTTP request")
    max_retries: int = Field(default=3, ge=0, le=10, description="after a 429 (rate limited)")


class Limits(Strict):
    """How verdicts over time and across metrics add up (the worst phase wins)."""

    failure_limit: int = Field(default=0, ge=0, description="failures of non-critical metrics")
    inconclusive_limit: int | None = Field(
        default=None, ge=1, description="inconclusive looks in a stage before it counts as fail"
    )
    consecutive_error_limit: int = Field(
        default=3, ge=1, description="looks in a row the provider may fail before error"
    )


class AnalysisSpec(Strict):
    provider: Literal["cloudwatch", "datadog"] = "cloudwatch"
    # CloudWatch: metric names of ``metrics`` live here, with these dimensions.
    namespace: str | None = Field(default=None, min_length=1, max_length=255)
    dimensions: dict[str, str] = Field(default_factory=dict, max_length=30)
    period: Duration = Field(default=60, ge=1, le=86400)
    datadog: DatadogSource | None = None
    # Short form: one error-rate metric.
    requests_metric: str | None = Field(default=None, min_length=1, max_length=255)
    errors_metric: str | None = Field(default=None, min_length=1, max_length=255)
    min_samples: int = Field(default=100, ge=1, description="short form: requests per variant")
    tolerance: float = Field(
        default=0.01, ge=0, le=1, description="short form: allowed absolute rise of the error rate"
    )
    metrics: list[Metric] = Field(default_factory=list, max_length=MAX_METRICS)
    limits: Limits = Limits()
    alpha: float = Field(
        default=0.0075, gt=0, le=0.2, description="false-rollback budget of the whole rollout"
    )
    pass_alpha: float = Field(
        default=0.05, gt=0, le=0.5, description="chance of passing a canary worse than tolerance"
    )

    @field_validator("dimensions")
    @classmethod
    def _known_placeholders(cls, value: dict[str, str]) -> dict[str, str]:
        for name, template in value.items():
            try:
                check_template(template)
            except ValueError as exc:
                raise ValueError(f"dimension {name!r}: {exc}") from None
        return value

    @model_validator(mode="after")
    def _source_and_metrics(self) -> AnalysisSpec:
        short = (self.requests_metric, self.errors_metric)
        if self.metrics and any(short):
            raise ValueError("use either requests_metric/errors_metric or metrics, not both")
        if not self.metrics and not all(short):
            raise ValueError(
                "a metric needs a denominator and a numerator: set requests_metric "
                "and errors_metric, or list metrics"
            )
        names = [metric.name for metric in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"metric names must be unique, got {names}")
        if self.provider == "cloudwatch" and not self.namespace:
            raise ValueError("provider cloudwatch needs a namespace")
        if self.provider == "datadog" and self.datadog is None:
            raise ValueError("provider datadog needs a datadog section with the key secrets")
        return self

    def judged_metrics(self) -> list[RatioMetric | ThresholdMetric]:
        """The metrics to judge; the short form is one critical error-rate metric."""
        if self.metrics:
            return list(self.metrics)
        return [
            RatioMetric(
                name="error-rate",
                numerator=self.errors_metric or "",
                denominator=self.requests_metric or "",
                tolerance=Tolerance(absolute=self.tolerance),
                min_samples=self.min_samples,
                critical=True,
            )
        ]
