"""``rollout forecast``: before starting, whether a healthy canary can pass each stage in time.

The same forecast preflight makes with the stable fleet's measured traffic, rate and noise
(``orchestrator.analysis.forecast``), here from numbers a person gives, so a plan can be
sized before anything runs.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from .exits import EXIT_INVALID, fail


def _pairs(values: tuple[str, ...], option: str) -> dict[str, float]:
    found: dict[str, float] = {}
    for value in values:
        name, sep, number = value.partition("=")
        try:
            parsed = float(number)
        except ValueError:
            parsed = math.nan
        if not sep or not name or not math.isfinite(parsed) or parsed < 0:
            raise click.BadParameter(
                f"{value!r}: use METRIC=NUMBER with a number of 0 or more", param_hint=option
            )
        found[name] = parsed
    return found


@click.command()
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--requests-per-minute",
    type=click.FloatRange(min=0, min_open=True),
    required=True,
    help="The host's traffic: the metrics' denominator per minute, both arms together.",
)
@click.option(
    "--rate",
    "rates",
    multiple=True,
    required=True,
    metavar="METRIC=RATE",
    help="The stable fleet's rate of a ratio metric as written (0.01 for 1% errors, 0.05 for "
    "a 5% conversion); once per metric to forecast.",
)
@click.option(
    "--noise",
    "noises",
    multiple=True,
    metavar="METRIC=S",
    help="The log-sd of the metric's per-interval rate beyond chance (0.1 to 0.2 is common on "
    "real fleets; default 0: ideal counts, the most hopeful forecast).",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def forecast(
    plan_file: Path,
    requests_per_minute: float,
    rates: tuple[str, ...],
    noises: tuple[str, ...],
    as_json: bool,
) -> None:
    """Forecast, for each stage of PLAN_FILE, whether a healthy canary passes within the
    bake and its extension at this traffic, and the shortest bake that would do.

    Exit status 0 when every stage is feasible, 1 when one is not, 2 for invalid input.
    Preflight makes the same forecast with measured numbers before the first shift and
    refuses an infeasible plan unless `rollout start --force`.
    """
    from orchestrator.analysis.forecast import forecast as forecast_stages
    from orchestrator.models.analysis import Noise
    from orchestrator.plans import InvalidPlan, load_plan

    try:
        plan = load_plan(plan_file)
    except InvalidPlan as exc:
        fail(str(exc), EXIT_INVALID)
    known = {metric.name for metric in plan.analysis.judged_metrics()}
    given = _pairs(rates, "--rate")
    spreads = _pairs(noises, "--noise")
    for option, names in (("--rate", given), ("--noise", spreads)):
        unknown = sorted(set(names) - known)
        if unknown:
            fail(
                f"{option}: unknown metric {unknown[0]!r}; the plan has {sorted(known)}",
                EXIT_INVALID,
            )
    noise = {name: Noise(kappa=s * s, df=60, source="--noise") for name, s in spreads.items()}
    stages = forecast_stages(plan, requests_per_minute, given, noise)
    if as_json:
        click.echo(json.dumps([stage.as_dict() for stage in stages], indent=2))
    else:
        for stage in stages:
            mark = "ok " if stage.feasible else "TOO SHORT"
            click.echo(f"{mark:9} {stage.message()}")
        if not stages:
            click.echo("no ratio metric named with --rate: nothing to forecast")
    sys.exit(0 if all(stage.feasible for stage in stages) else 1)
