"""``rollout demo`` and ``rollout local up``: the embedded local stack."""

from __future__ import annotations

import json
import sys
import time

import click

from .exits import EXIT_INVALID, fail
from .options import Duration, port_option

_AWS_PORT_HELP = "Port of the local AWS endpoint on 127.0.0.1 (0 = any free port)."


@click.command()
@click.option(
    "--scenario",
    type=click.Choice(
        ["good-canary", "bad-canary", "segment-regression", "split-mismatch", "flag-routing", "all"]
    ),
    default="all",
    show_default=True,
    help="Which demo rollout to run.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Progress to stderr; stdout ends with the result as one JSON line.",
)
@port_option("--aws-port", default=0, help=_AWS_PORT_HELP)
@click.option(
    "--provider",
    type=click.Choice(["cloudwatch", "datadog"]),
    default="cloudwatch",
    show_default=True,
    help="Where the analysis reads counts: moto's CloudWatch, or a local Datadog-compatible "
    "endpoint through the real datadog-api-client.",
)
def demo(scenario: str, as_json: bool, aws_port: int, provider: str) -> None:
    """Start the local stack and run full rollouts against simulated viewers.

    good-canary (0.5% errors, like stable) must end PROMOTED; bad-canary (8% errors) must
    end ROLLED_BACK; segment-regression (fails every IE 11 request, about 1% of viewers, and
    nothing else) must end ROLLED_BACK by its per-browser analysis; split-mismatch (an
    emulated edge fault serves the canary about twice its weight) must end PAUSED by the
    served-split check, and is then aborted; flag-routing (a LaunchDarkly flag with 30% of
    users on true chooses the variant) must serve every viewer as the SDK evaluates them.
    Exit status 0 only when every scenario ends as expected.
    """
    from orchestrator.local.demo import DEMO_SCENARIOS, run_scenario
    from orchestrator.local.stack import LocalStack, PortInUse

    names = list(DEMO_SCENARIOS) if scenario == "all" else [scenario]
    emit = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    try:
        with LocalStack(moto_port=aws_port) as stack:
            emit(f"local stack up: AWS endpoint {stack.endpoint_url}")
            results = [
                run_scenario(stack, DEMO_SCENARIOS[name], emit, provider=provider) for name in names
            ]
    except PortInUse as exc:
        fail(str(exc), EXIT_INVALID)
    for result in results:
        mark = "as expected" if result["outcome"] == result["expected"] else "NOT AS EXPECTED"
        emit(
            f"{result['scenario']}: {result['outcome']} ({mark}) in {result['seconds']}s; "
            f"requests {result['requests']}, errors {result['errors']}; "
            f"reason: {result['reason'] or '-'}"
        )
    if as_json:
        click.echo(json.dumps(results if scenario == "all" else results[0]))
    sys.exit(0 if all(r["outcome"] == r["expected"] for r in results) else 1)


@click.group()
def local() -> None:
    """The embedded local stack (moto server, state machine, CloudFront emulator)."""


@local.command()
@port_option("--aws-port", default=4566, help=_AWS_PORT_HELP)
@port_option(
    "--cdn-port",
    default=8080,
    help="Port of the CloudFront emulator on 127.0.0.1 (0 = any free port).",
)
@click.option(
    "--canary-error-rate",
    type=click.FloatRange(0, 1),
    default=0.005,
    show_default=True,
    help="Share of requests the canary variant fails, whatever its release (stable fails 0.5%).",
)
@click.option(
    "--traffic/--no-traffic",
    default=True,
    show_default=True,
    help="Drive simulated viewers (300 a second) through the emulator; their counts are "
    "what the analysis judges.",
)
@port_option(
    "--api-port",
    default=8081,
    help="Port of the REST API (API Gateway emulation) on 127.0.0.1 (0 = any free port).",
)
@click.option(
    "--seconds",
    type=Duration(0),
    default=0,
    help="Stop after this long, e.g. 90, 10m, 1h30m (0 = until Ctrl-C).",
)
def up(
    aws_port: int,
    cdn_port: int,
    api_port: int,
    canary_error_rate: float,
    traffic: bool,
    seconds: float,
) -> None:
    """Run the local stack with the demo route for demo.edgeshift.test until stopped.

    Then, from another shell: export EDGESHIFT_ENDPOINT_URL=http://127.0.0.1:AWS_PORT;
    rollout start examples/plan.yaml --wait; curl http://127.0.0.1:API_PORT/rollouts; and
    curl -H 'Host: demo.edgeshift.test' http://127.0.0.1:CDN_PORT/app.js

    The origin serves whichever release a request's path names, so after v2 is promoted a
    plan from v2 to v3 runs next. Each start begins afresh (v1 stable, no rollouts): nothing
    is kept when it stops.
    """
    from orchestrator.local.site import DEMO_HOST, DemoSite
    from orchestrator.local.stack import LocalStack, PortInUse, ensure_free

    try:
        ensure_free(cdn_port, "--cdn-port")
        ensure_free(api_port, "--api-port")
        stack = LocalStack(moto_port=aws_port).start()
    except PortInUse as exc:
        fail(str(exc), EXIT_INVALID)
    site = DemoSite(
        stack,
        cdn_port=cdn_port,
        api_port=api_port,
        canary_error_rate=canary_error_rate,
        traffic=traffic,
        traffic_seconds=seconds or 24 * 3600,
    )
    try:
        site.start()
        click.echo(f"AWS endpoint:        {stack.endpoint_url}")
        click.echo(f"CloudFront emulator: {site.edge_url}  (Host: {DEMO_HOST})")
        click.echo(f"REST API:            {site.api_url}  (OpenAPI: {site.api_url}/openapi.json)")
        click.echo(f"state machine:       {stack.state_machine_arn}")
        click.echo(f"export EDGESHIFT_ENDPOINT_URL={stack.endpoint_url}  # for rollout commands")
        click.echo("Ctrl-C to stop.", err=True)
        deadline = time.monotonic() + seconds if seconds else None
        while deadline is None or time.monotonic() < deadline:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        site.stop()
        stack.stop()
