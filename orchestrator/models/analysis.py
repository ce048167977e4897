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

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

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
# Validation context key (``{STORED: True}``) for a plan read back with its stored rollout:
# rules added since a rollout started are checked when a plan is submitted, never when it
# is read back, or a rollout running across an upgrade could not be loaded by its own
# tasks, its status, steering or recover.
STORED = "stored"
# Chosen by `make bench`: a canary must be worse by half its tolerance before it fails.
DEFAULT_FAIL_MARGIN = 0.5


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


def _per_variant(template: str) -> bool:
    """Whether ``template`` reads one variant's counts (it names ``{variant}`` or
    ``{version}``, which differ between the canary and the baseline)."""
    return any(m.group(1) in ("variant", "version") for m in _PLACEHOLDER.finditer(template))


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


# Names a plan may still carry from before the limits had one home each.
_RENAMED_LIMITS = {
    "failure_limit": "tolerated_failures",
    "inconclusive_limit": "max_inconclusive_looks",
    "consecutive_error_limit": "max_error_streak",
}


class Limits(Strict):
    """How verdicts over time and across metrics add up (the worst phase wins). Counted
    per stage in the rollout's ``StageTally``; the one function that reads them is
    ``orchestrator.analysis.aggregate.combine``."""

    tolerated_failures: int = Field(
        default=0,
        ge=0,
        le=10,
        description="failing looks of a non-critical metric tolerated in a stage; the next "
        "one rolls back (a critical metric rolls back at its first)",
    )
    max_inconclusive_looks: int | None = Field(
        default=None,
        ge=1,
        description="inconclusive looks in a stage; the next one counts as a failure",
    )
    max_error_streak: int = Field(
        default=3,
        ge=1,
        le=100,
        description="looks in a row a metric may go unmeasured (transient provider errors) "
        "before the analysis counts as unable to measure, which rolls back",
    )

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, data: object) -> object:
        if isinstance(data, dict):
            for old, new in _RENAMED_LIMITS.items():
                if old in data:
                    raise ValueError(
                        f"analysis.limits.{old} was renamed: use analysis.limits.{new} "
                        f"({Limits.model_fields[new].description})"
                    )
        return data


class Noise(BaseModel):
    """Extra-binomial noise of one metric, measured on the stable fleet before the first
    shift: the relative variance of its rate per interval (``kappa``) and the degrees of
    freedom it was estimated with. See ``orchestrator.analysis.dispersion``."""

    model_config = ConfigDict(frozen=True)

    kappa: float = Field(default=0.0, ge=0)
    df: int = Field(default=0, ge=0)
    source: str = "none"
    requests_per_minute: float | None = Field(default=None, ge=0)
    rate: float | None = Field(default=None, ge=0, le=1)
    # How bursty the requests (the denominators) are: the variance of the fleet's requests
    # per interval over their mean (1: independent requests), with its degrees of freedom.
    # The served-split check's prior for viewer clustering (orchestrator.analysis.split).
    requests_dispersion: float | None = Field(default=None, ge=0)
    requests_df: float = Field(default=0, ge=0)


SEGMENT_DIMENSIONS = ("browser", "device", "country")
MAX_SEGMENT_VALUES = 200
# ``... by {tag}`` (or ``by {tag,other}``) in a Datadog query: the group-by segments need.
_GROUP_BY = re.compile(r"\bby\s*\{\s*([^{}]+?)\s*\}")


class SegmentSpec(Strict):
    """One way to cut the traffic (the edge labels every request with these dimensions):
    each value with enough events is judged canary against baseline on its own, so a
    release broken for one small browser fails although the totals look fine."""

    by: Literal["browser", "device", "country"]
    dimension: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        description="CloudWatch dimension holding the value (default: the by value)",
    )
    tag: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Datadog tag to group by (default: the by value), or a whole group-by "
        "clause such as 'by {browser}'",
    )
    max_values: int = Field(
        default=50,
        ge=1,
        le=MAX_SEGMENT_VALUES,
        description="values judged at most; the ones with the fewest requests beyond this "
        "are reported as not judged",
    )
    metrics: list[str] | None = Field(
        default=None, description="ratio metrics cut by this segment (default: every one)"
    )
    min_samples: int = Field(
        default=20,
        ge=1,
        description="requests per variant in a value before it is judged; smaller values "
        "are listed as not judged, never passed",
    )

    @field_validator("tag")
    @classmethod
    def _tag_groups(cls, value: str | None) -> str | None:
        if value is None:
            return value
        if "{" in value or "}" in value or " " in value.strip():
            found = _GROUP_BY.search(value)
            if found is None:
                raise ValueError(
                    f"segment tag {value!r} has no group-by: write a tag name, or 'by {{tag}}'"
                )
            return found.group(1).strip()
        if not re.fullmatch(r"[A-Za-z][\w.\-/]*", value):
            raise ValueError(f"segment tag {value!r} is not a Datadog tag name")
        return value

    @property
    def cloudwatch_dimension(self) -> str:
        return self.dimension or self.by

    @property
    def datadog_tag(self) -> str:
        return self.tag or self.by


# The counts ``analysis.split.viewers`` names are measured under this name, beside the
# plan's metrics (in a look's measurements, the preflight noise and a replay's windows).
SPLIT_VIEWERS = "split-viewers"


class SplitSpec(Strict):
    """The served-split check at every look: the canary's share of the requests (the
    denominators of ``metric``), or of the viewers (``viewers``), against the stage's
    weight. See ``orchestrator.analysis.split``."""

    metric: MetricName | None = Field(
        default=None,
        description="ratio metric whose denominators are the requests (default: the first "
        "ratio metric)",
    )
    viewers: Template | None = Field(
        default=None,
        description="CloudWatch metric name or Datadog query counting, per variant and "
        "period, the viewers each served (distinct viewers or sticky ids, sessions "
        "started): the check then compares viewer shares, which a few heavy clients cannot "
        "skew as they skew request shares",
    )
    tolerance: float = Field(
        default=0.25,
        gt=0,
        lt=1,
        description="relative: the served canary share may be within weight*(1 +- tolerance)",
    )
    enabled: bool = True


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
    fail_margin: float = Field(
        default=DEFAULT_FAIL_MARGIN,
        ge=0,
        le=1,
        description="share of a metric's tolerance the canary must be worse by, with "
        "confidence, before it fails (0: any difference fails)",
    )
    margin_alpha: float = Field(
        default=0.1,
        gt=0,
        le=0.5,
        description="chance of rolling back a canary exactly at the fail margin (a canary "
        "equal to the baseline is held to alpha)",
    )
    initial_delay: Duration = Field(
        default=0,
        ge=0,
        le=86400,
        description="warm-up at the start of each stage: looks in it count toward neither a "
        "fail nor a pass (a metric's absolute limit still applies at once)",
    )
    edge_settle: Duration | None = Field(
        default=None,
        ge=0,
        le=3600,
        description="seconds after a stage's write before its requests count: the edge "
        "reads new weights when its routes cache expires; default: the edge's cache TTL",
    )
    dispersion: Literal["estimate", "binomial"] = Field(
        default="estimate",
        description="estimate: widen the tests by the extra-binomial noise measured on the "
        "stable fleet and in each stage; binomial: assume none (ideal counts only)",
    )
    noise_history: Duration = Field(
        default=3600,
        ge=0,
        le=86400,
        description="how far back preflight reads the stable fleet to measure its noise and "
        "traffic (0: not at all)",
    )
    segments: list[SegmentSpec] = Field(
        default_factory=list,
        max_length=len(SEGMENT_DIMENSIONS),
        description="cut each ratio metric by these edge dimensions and judge every value "
        "with enough events; the false-rollback budget alpha is shared with them",
    )

    split: SplitSpec = Field(
        default_factory=SplitSpec,
        description="compare the canary's served share of requests (or of viewers, with "
        "split.viewers) with the stage's weight at every look (policies.on_split_mismatch "
        "acts on a mismatch)",
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
    def _source_and_metrics(self, info: ValidationInfo) -> AnalysisSpec:
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
        self._check_segments()
        self._check_split()
        if not (info.context or {}).get(STORED):
            self._check_per_variant()
        return self

    def _check_per_variant(self) -> None:
        """Every count must be read per variant: a query that names neither ``{variant}``
        nor ``{version}`` (in the query, or for CloudWatch in a dimension) returns the same
        numbers for the canary and the baseline, and a broken canary would pass."""
        if self.provider == "cloudwatch" and any(map(_per_variant, self.dimensions.values())):
            return
        queries: list[tuple[str, str]] = []
        for index, metric in enumerate(self.judged_metrics()):
            where = f"analysis.metrics.{index}" if self.metrics else "analysis"
            if isinstance(metric, RatioMetric):
                numerator = "numerator" if self.metrics else "errors_metric"
                denominator = "denominator" if self.metrics else "requests_metric"
                queries += [
                    (f"{where}.{numerator}", metric.numerator),
                    (f"{where}.{denominator}", metric.denominator),
                ]
            else:
                queries.append((f"{where}.query", metric.query))
        if self.split.viewers is not None:
            queries.append(("analysis.split.viewers", self.split.viewers))
        shared = [
            f"{field}: {template!r}" for field, template in queries if not _per_variant(template)
        ]
        if shared:
            scope = (
                " and no analysis.dimensions value does either"
                if self.provider == "cloudwatch"
                else ""
            )
            many = len(shared) > 1
            raise ValueError(
                f"{'; '.join(shared)} {'name' if many else 'names'} neither {{variant}} nor "
                f"{{version}}{scope}, so {'they' if many else 'it'} would read the same counts "
                "for the canary and the baseline"
            )

    def _check_segments(self) -> None:
        ratios = {m.name for m in self.judged_metrics() if isinstance(m, RatioMetric)}
        seen: set[str] = set()
        for index, segment in enumerate(self.segments):
            where = f"analysis.segments.{index}"
            if segment.by in seen:
                raise ValueError(f"{where}.by: {segment.by!r} is declared twice")
            seen.add(segment.by)
            for name in segment.metrics or []:
                if name not in ratios:
                    raise ValueError(
                        f"{where}.metrics: {name!r} is not a ratio metric of this plan "
                        f"(ratio metrics: {', '.join(sorted(ratios)) or 'none'})"
                    )

    def _check_split(self) -> None:
        ratios = [m.name for m in self.judged_metrics() if isinstance(m, RatioMetric)]
        name = self.split.metric
        if self.split.viewers is not None and name is not None:
            raise ValueError(
                "analysis.split.viewers: counts the viewers itself; name either "
                "analysis.split.metric or analysis.split.viewers, not both"
            )
        if any(m.name == SPLIT_VIEWERS for m in self.metrics):
            raise ValueError(
                f"analysis.metrics: the name {SPLIT_VIEWERS!r} is reserved for the counts "
                "of analysis.split.viewers"
            )
        if name is not None and name not in ratios:
            raise ValueError(
                f"analysis.split.metric: {name!r} is not a ratio metric of this plan "
                f"(ratio metrics: {', '.join(ratios) or 'none'})"
            )

    def split_viewers(self) -> str | None:
        """The query counting each variant's viewers for the served-split check, if any."""
        return self.split.viewers if self.split.enabled else None

    def split_metric(self) -> RatioMetric | None:
        """The ratio metric whose denominators count the requests of each variant."""
        ratios = [m for m in self.judged_metrics() if isinstance(m, RatioMetric)]
        wanted = self.split.metric
        return next((m for m in ratios if wanted is None or m.name == wanted), None)

    def segmented(self, metric: str) -> list[SegmentSpec]:
        """The segments a ratio metric is cut by."""
        return [s for s in self.segments if s.metrics is None or metric in s.metrics]

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
