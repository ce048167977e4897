"""An HTTP front for the API handler, the way API Gateway REST (proxy integration) calls it.

Each request becomes an API Gateway proxy event (format 1.0) with a fixed local IAM
principal in ``requestContext.identity``, runs through the real handler, and the proxy
result goes back as the HTTP response. ``GET /openapi.json`` serves the API's document.

Like the deployed REST API, whose resources and methods are exactly the document's
(stacks/api.py), a request for a path or method the document does not name never reaches
the handler: API Gateway answers it 403 ``{"message": "Missing Authentication Token"}``
(its MISSING_AUTHENTICATION_TOKEN gateway response), whatever the method, TRACE included.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from functools import cache
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .dispatch import InvocationContext
from .iam import acting_as
from .loopback import LOOPBACK, LoopbackServer

LOCAL_PRINCIPAL = "arn:aws:iam::000000000000:user/local-operator"
# The deployed API function's handler (stacks.api.API_HANDLER): its role's policy applies.
API_HANDLER = "orchestrator.api.handler.handler"
MAX_READ = 1024 * 1024  # read at most this much of a body; the handler answers 413 above its limit
MISSING_TOKEN: dict[str, Any] = {
    "statusCode": 403,
    "headers": {
        "Content-Type": "application/json",
        "x-amzn-ErrorType": "MissingAuthenticationTokenException",
    },
    "body": json.dumps({"message": "Missing Authentication Token"}),
}


@cache
def _deployed() -> tuple[tuple[re.Pattern[str], frozenset[str]], ...]:
    """(path pattern, methods) of every resource in the API document: what API Gateway
    routes to the handler. A path parameter is one non-empty segment, as in API Gateway."""
    paths = json.loads(openapi_document())["paths"]
    return tuple(
        (
            re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(path)) + "$"),
            frozenset(method.upper() for method in methods),
        )
        for path, methods in paths.items()
    )


def routed(method: str, path: str) -> bool:
    """Whether API Gateway would pass ``method path`` to the handler at all."""
    bare = urlsplit(path).path
    return any(pattern.match(bare) and method in methods for pattern, methods in _deployed())


def proxy_event(
    method: str,
    path: str,
    *,
    body: str | None = None,
    headers: dict[str, str] | None = None,
    principal: str = LOCAL_PRINCIPAL,
) -> dict[str, Any]:
    """An API Gateway REST proxy event as AWS documents it (resource/path parameters omitted:
    powertools routes on ``path``)."""
    parts = urlsplit(path)
    query = parse_qs(parts.query, keep_blank_values=True)
    headers = dict(headers or {})
    return {
        "resource": parts.path,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "stage": "local",
            "httpMethod": method,
            "path": f"/local{parts.path}",
            "resourcePath": parts.path,
            "requestId": str(uuid.uuid4()),
            "requestTimeEpoch": int(time.time() * 1000),
            "protocol": "HTTP/1.1",
            "identity": {
                "userArn": principal,
                "caller": principal.rsplit("/", 1)[-1],
                "sourceIp": LOOPBACK,
                "user": principal.rsplit("/", 1)[-1],
                "accessKey": "LOCALACCESSKEY",
                "accountId": "000000000000",
            },
        },
        "body": body,
        "isBase64Encoded": False,
    }


class LocalApi(LoopbackServer):
    def __init__(self, *, port: int = 0) -> None:
        from orchestrator.api.handler import handler

        self.handler = handler
        self.openapi = openapi_document()
        super().__init__(self._handler_class(), port)

    def call(
        self, method: str, path: str, body: str | None, headers: dict[str, str]
    ) -> dict[str, Any]:
        context = InvocationContext(
            "edgeshift-api", "arn:aws:lambda:us-east-1:000000000000:function:edgeshift-api"
        )
        with acting_as(API_HANDLER):
            result: dict[str, Any] = self.handler(
                proxy_event(method, path, body=body, headers=headers), context
            )
        return result

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = (
                    self.rfile.read(min(length, MAX_READ)).decode("utf-8", "replace")
                    if length
                    else None
                )
                result: dict[str, Any]
                if self.command == "GET" and self.path == "/openapi.json":
                    result = {
                        "statusCode": 200,
                        "headers": {"Content-Type": "application/json"},
                        "body": api.openapi,
                    }
                elif not routed(self.command, self.path):
                    result = MISSING_TOKEN
                else:
                    result = api.call(self.command, self.path, body, dict(self.headers.items()))
                payload = str(result.get("body") or "")
                data = (
                    base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
                )
                self.send_response(int(result["statusCode"]))
                for key, value in response_headers(result):
                    if key.lower() not in ("content-length", "connection"):
                        self.send_header(key, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def __getattr__(self, name: str) -> Any:
                # Any other method (TRACE, HEAD, OPTIONS, ...): http.server would answer 501
                # with an HTML page; API Gateway answers with its JSON, so does this.
                if name.startswith("do_"):
                    return self._serve
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def response_headers(result: dict[str, Any]) -> list[tuple[str, str]]:
    """A proxy result's headers: ``headers`` and ``multiValueHeaders`` (which powertools uses)."""
    pairs = [(k, str(v)) for k, v in (result.get("headers") or {}).items()]
    for key, values in (result.get("multiValueHeaders") or {}).items():
        pairs += [(key, str(v)) for v in values]
    return pairs


def openapi_document() -> str:
    from orchestrator.api.app import openapi_json

    return json.dumps(json.loads(openapi_json()), indent=2) + "\n"
