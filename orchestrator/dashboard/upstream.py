"""The REST API the dashboard talks to, on the browser's behalf.

The browser only ever talks to the dashboard server (same origin); the server forwards each
call here. Against a deployed API every request is signed with the user's AWS credentials
(SigV4 for ``execute-api``, botocore's own signer), so the API keeps IAM authorization on
every method and no credential ever reaches the page.
"""

from __future__ import annotations

import http.client
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

Signer = Callable[[str, str, bytes | None, dict[str, str]], dict[str, str]]
TIMEOUT = 15.0  # seconds; a hung API answers the page with a 504 problem, not a hung tab
# https://{api-id}.execute-api.{region}.amazonaws.com/{stage}
_EXECUTE_API = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")


class MissingCredentials(RuntimeError):
    pass


@dataclass(frozen=True)
class Answer:
    status: int
    content_type: str
    body: bytes


def region_of(url: str) -> str | None:
    """The region of an ``execute-api`` URL, None for any other host."""
    match = _EXECUTE_API.search(urlsplit(url).hostname or "")
    return match.group(1) if match else None


def sigv4_signer(region: str, session: Any = None) -> Signer:
    """Sign with botocore's SigV4Auth for ``execute-api`` in ``region``.

    Credentials are read again for each request, so expiring ones (SSO, assumed roles) are
    refreshed by botocore as they would be for any AWS client.
    """
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = session or botocore.session.get_session()
    if session.get_credentials() is None:
        raise MissingCredentials(
            "no AWS credentials found to sign requests to the API (set AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run `aws sso login`)"
        )

    def sign(method: str, url: str, body: bytes | None, headers: dict[str, str]) -> dict[str, str]:
        credentials = session.get_credentials().get_frozen_credentials()
        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        SigV4Auth(credentials, "execute-api", region).add_auth(request)
        return dict(request.headers.items())

    return sign


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would send the signed headers on to wherever a Location points.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects)


class Upstream:
    """One API base URL (e.g. ``http://127.0.0.1:8081`` or ``https://…/prod``), signed or not."""

    def __init__(self, base_url: str, signer: Signer | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer

    def call(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        url = self.base_url + path
        sent = {"Accept": "application/json", **(headers or {})}
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
        if self.signer is not None:
            sent = self.signer(method, url, body, sent)
        request = urllib.request.Request(url, data=body, method=method, headers=sent)
        try:
            return self._send(request)
        except (http.client.InvalidURL, ValueError) as exc:  # e.g. a control character in the query
            return problem(400, "bad-request", f"cannot send this request to the API: {exc}")

    def _send(self, request: urllib.request.Request) -> Answer:
        try:
            with _OPENER.open(request, timeout=TIMEOUT) as response:
                return Answer(
                    response.status, response.headers.get("Content-Type", ""), response.read()
                )
        except urllib.error.HTTPError as exc:
            with exc:
                if 300 <= exc.code < 400:
                    return problem(
                        502,
                        "api-redirected",
                        f"the API at {self.base_url} answered a redirect ({exc.code}) to "
                        f"{exc.headers.get('Location')}; the dashboard follows none",
                    )
                return Answer(exc.code, exc.headers.get("Content-Type", ""), exc.read())
        except TimeoutError:
            return problem(
                504, "api-timeout", f"the API at {self.base_url} did not answer in {TIMEOUT:g}s"
            )
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return problem(
                502, "api-unreachable", f"cannot reach the API at {self.base_url}: {reason}"
            )


def problem(status: int, slug: str, detail: str) -> Answer:
    """A problem+json answer of the dashboard's own, shaped like the API's."""
    body = {
        "type": f"urn:edgeshift:problem:{slug}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
    }
    return Answer(status, "application/problem+json", json.dumps(body).encode())
