"""The ``rollout`` command."""

from __future__ import annotations

import json
import sys
from typing import Any

import click


@click.group()
def cli() -> None:
    """Progressive rollouts for CloudFront: staged weights, bake windows, automatic analysis."""


@cli.command()
@click.option(
    "--scenario",
    type=click.Choice(["good-canary", "bad-canary", "all"]),
    default="all",
    show_default=True,
    help="Which demo rollout to run.",
)
@click.option("--json", "as_json", is_flag=True, help="End stdout with the result as one JSON line.")
@click.option("--moto-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port of the local AWS endpoint on 127.0.0.1 (0 = any free port).")
def demo(scenario: str, as_json: bool, moto_port: int) -> None:
    """Start the local stack and run full rollouts against simulated viewers.

    good-canary must end PROMOTED and bad-canary ROLLED_BACK; the exit status is 0 only
    when every scenario ends as expected.
    """
    from orchestrator.local.demo import SCENARIOS, run_scenario
    from orchestrator.local.stack import LocalStack, PortInUse

    names = list(SCENARIOS) if scenario == "all" else [scenario]
    emit = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    results: list[dict[str, Any]] = []
    try:
        with LocalStack(moto_port=moto_port) as stack:
            emit(f"local stack up: AWS endpoint {stack.endpoint_url}")
            results = [run_scenario(stack, SCENARIOS[name], emit) for name in names]
    except PortInUse as exc:
        raise click.UsageError(str(exc)) from None
    ok = all(result["outcome"] == result["expected"] for result in results)
    for result in results:
        mark = "as expected" if result["outcome"] == result["expected"] else "UNEXPECTED"
        emit(f"{result['scenario']}: {result['outcome']} ({mark}) in {result['seconds']}s, "
             f"requests {result['requests']}, errors {result['errors']}")
    if as_json:
        click.echo(json.dumps(results if scenario == "all" else results[0]))
    sys.exit(0 if ok else 1)
