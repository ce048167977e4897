"""``rollout dashboard``: the web UI on 127.0.0.1, over the local stack's API or a deployed one."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import click

from .aws import Target
from .exits import EXIT_INVALID, EXIT_OTHER, fail
from .options import port_option

LOCAL_API_PORT = 8081  # `rollout local up --api-port`'s default


@click.command()
@port_option("--port", default=8082, help="Port of the dashboard on 127.0.0.1 (0 = any free port).")
@click.option(
    "--api-url",
    default=None,
    metavar="URL",
    help="A deployed API, e.g. https://abc123.execute-api.eu-west-1.amazonaws.com/prod. Each "
    "request is signed with your AWS credentials (SigV4, execute-api), so the API stays "
    "IAM-only. Without it: the local stack's API on 127.0.0.1 (`rollout local up`), unsigned.",
)
@port_option(
    "--local-api-port",
    default=LOCAL_API_PORT,
    minimum=1,
    help="Without --api-url: the port of `rollout local up`'s REST API (its --api-port).",
)
@click.pass_obj
def dashboard(target: Target, port: int, api_url: str | None, local_api_port: int) -> None:
    """Serve the dashboard: rollouts by target and status; one rollout's stages, bake, evidence,
    served split and audit trail, updated live; pause, resume, abort and promote, each with
    a reason. Only the dashboard talks to the API: the page never sees a credential.

    The signing region comes from the execute-api host name, else from --region or the
    AWS configuration.
    """
    from orchestrator.dashboard import (
        DashboardServer,
        MissingCredentials,
        Upstream,
        region_of,
        sigv4_signer,
    )

    if api_url is None:
        upstream = Upstream(f"http://127.0.0.1:{local_api_port}")
        where = f"the local stack's API at {upstream.base_url}"
    else:
        scheme, _, rest = api_url.partition("://")
        loopback = urlsplit(api_url).hostname in ("127.0.0.1", "localhost", "::1")
        if not rest or scheme not in ("https", "http") or (scheme == "http" and not loopback):
            # Signed calls and the rollouts they answer must not cross a network in clear.
            fail(
                "--api-url: must start with https:// (plain http:// only to 127.0.0.1 "
                f"or localhost; got {api_url!r})",
                EXIT_INVALID,
            )
        region = region_of(api_url) or target.region or _configured_region()
        if region is None:
            fail("--region: needed to sign for an API URL that names no region", EXIT_INVALID)
        try:
            upstream = Upstream(api_url, sigv4_signer(region))
        except MissingCredentials as exc:
            fail(str(exc), EXIT_OTHER)
        where = f"{upstream.base_url} (signed for execute-api in {region})"
    try:
        server = DashboardServer(upstream, port=port)
    except OSError as exc:
        fail(f"--port: cannot listen on 127.0.0.1:{port}: {exc.strerror}", EXIT_INVALID)
    click.echo(f"dashboard: {server.url}  (API: {where})")
    click.echo("Ctrl-C to stop.", err=True)
    server.start()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


def _configured_region() -> str | None:
    import botocore.session

    region = botocore.session.get_session().get_config_variable("region")
    return str(region) if region else None
