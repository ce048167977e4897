"""A minimal DynamoDB ``Query`` client for the edge: stdlib HTTP, SigV4, typed-JSON decoding.

boto3 is in the Lambda runtime, but importing it and building a client costs ~180 ms of cold
start on every new edge container; one signed POST does the same job.

All table work for one lookup shares one deadline (``deadline_seconds``, 250 ms by default):
the connect, the TLS handshake, every read of every page, and the retry on a stale pooled
connection. A socket timeout alone bounds each operation, not their sum: a table answering
one byte every 0.2 s never trips a 0.3 s timeout. Here each socket operation gets only what
is left of the deadline, and none starts once it has passed.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import socket
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from edge import config as edge_config
from edge import sigv4

TARGET = "DynamoDB_20120810.Query"
CONTENT_TYPE = "application/x-amz-json-1.0"
# Route items per host are few; a runaway LastEvaluatedKey loop must not eat the 5 s budget.
MAX_PAGES = 20

_idle: dict[tuple[str, str], http.client.HTTPConnection] = {}
Transport = Callable[[str, dict[str, str], bytes, float], tuple[int, bytes]]


class DynamoError(Exception):
    """The table could not be read: network, credentials, throttling or a bad response."""


def query_host(
    host: str,
    *,
    cfg: edge_config.EdgeConfig | None = None,
    limit: int | None = None,
    deadline: float | None = None,
    transport: Transport | None = None,
) -> list[dict[str, Any]]:
    """Return every route item stored under ``host``, decoded into plain Python values.

    Raises ``DynamoError`` once ``deadline`` (``time.monotonic()`` seconds; by default the
    config's ``deadline_seconds`` from now) passes. ``limit`` caps the items per page so tests
    can force pagination; ``transport(url, headers, body, deadline)`` replaces the HTTP call.
    """
    cfg = cfg or edge_config.load()
    if deadline is None:
        deadline = time.monotonic() + cfg.deadline_seconds
    post = transport or _post
    region = pick_region(cfg.regions, os.environ.get("AWS_REGION"))
    url = cfg.endpoint_url or f"https://dynamodb.{region}.amazonaws.com"
    request: dict[str, Any] = {
        "TableName": cfg.table,
        # "host" is not reserved today, but the reserved list grows and the alias costs nothing.
        "KeyConditionExpression": "#h = :h",
        "ExpressionAttributeNames": {"#h": "host"},
        "ExpressionAttributeValues": {":h": {"S": host}},
    }
    if limit is not None:
        request["Limit"] = limit
    items: list[dict[str, Any]] = []
    for pages in range(MAX_PAGES):
        if time.monotonic() >= deadline:
            raise DynamoError(f"deadline passed after {pages} pages of routes for {host!r}")
        page = _call(url, region, request, deadline, post)
        found = page.get("Items", [])
        if not isinstance(found, list) or not all(isinstance(i, dict) for i in found):
            raise DynamoError("malformed Query response: Items is not a list of items")
        items.extend(deserialize_item(item) for item in found)
        last_key = page.get("LastEvaluatedKey")
        if not last_key:
            return items
        request["ExclusiveStartKey"] = last_key
    raise DynamoError(f"more than {MAX_PAGES} pages of routes for {host!r}")


def pick_region(regions: tuple[str, ...], executing_region: str | None) -> str:
    """The replica in the region running this function if there is one, else the first."""
    if executing_region and executing_region in regions:
        return executing_region
    return regions[0]


def deserialize(value: dict[str, Any]) -> Any:
    """Turn one DynamoDB typed value (``{"S": "x"}``) into a plain Python value.

    Sets become lists: the edge only iterates them, and lists keep items JSON-friendly.
    """
    if not isinstance(value, dict) or len(value) != 1:
        raise DynamoError(f"malformed attribute value: {str(value)[:100]}")
    ((kind, raw),) = value.items()
    if kind in ("S", "BOOL"):
        if not isinstance(raw, str if kind == "S" else bool):
            raise DynamoError(f"malformed {kind} value")
        return raw
    if kind == "N":
        return _number(raw)
    if kind == "NULL":
        return None
    if kind == "M" and isinstance(raw, dict):
        return deserialize_item(raw)
    if kind == "L" and isinstance(raw, list):
        return [deserialize(v) for v in raw]
    if kind == "SS" and isinstance(raw, list):
        return list(raw)
    if kind == "NS" and isinstance(raw, list):
        return [_number(v) for v in raw]
    if kind in ("B", "BS"):
        import base64  # rare in route items: keep it off the import path

        return base64.b64decode(raw) if kind == "B" else [base64.b64decode(v) for v in raw]
    raise DynamoError(f"unsupported attribute type {kind!r}")


def deserialize_item(item: dict[str, Any]) -> dict[str, Any]:
    """Decode every attribute of a DynamoDB item."""
    if not isinstance(item, dict):
        raise DynamoError("malformed item: not a map")
    return {name: deserialize(value) for name, value in item.items()}


def credentials_from_env() -> sigv4.Credentials:
    """The function's role credentials, which the Lambda runtime exports even at the edge."""
    access_key = os.environ.get("AWS_ACCESS_KEY_ID")
    secret_key = os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not access_key or not secret_key:
        raise DynamoError("no AWS credentials in the environment")
    return sigv4.Credentials(access_key, secret_key, os.environ.get("AWS_SESSION_TOKEN") or None)


def close_connections() -> None:
    """Drop the pooled connections (tests, or after a configuration change)."""
    while _idle:
        _, conn = _idle.popitem()
        conn.close()


def _number(raw: Any) -> int | float:
    if not isinstance(raw, str):
        raise DynamoError("malformed N value")
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw)
    except ValueError:
        raise DynamoError("malformed N value") from None


def _call(
    url: str, region: str, request: dict[str, Any], deadline: float, post: Transport
) -> dict[str, Any]:
    body = json.dumps(request).encode()
    headers = sigv4.sign(
        method="POST",
        url=url,
        headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET},
        body=body,
        region=region,
        service="dynamodb",
        credentials=credentials_from_env(),
        amz_date=time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
    )
    status, payload = post(url, headers, body, deadline)
    try:
        answer = json.loads(payload)
    except ValueError as exc:
        raise DynamoError(f"HTTP {status}: response is not JSON") from exc
    if status != 200 or not isinstance(answer, dict):
        kind = answer.get("__type", "") if isinstance(answer, dict) else ""
        message = answer.get("message", "") if isinstance(answer, dict) else ""
        raise DynamoError(f"HTTP {status} {kind} {message}"[:300].strip())
    return answer


def _post(url: str, headers: dict[str, str], body: bytes, deadline: float) -> tuple[int, bytes]:
    # A warm connection saves a TLS handshake on every TTL refresh. Connections are taken out
    # of the pool while in use, so concurrent callers (the local emulator) never share one.
    parts = urlsplit(url)
    key = (parts.scheme, parts.netloc)
    conn = _idle.pop(key, None)
    reused = conn is not None
    for _attempt in range(2):
        try:
            if conn is None:
                conn = _connect(parts.scheme, parts.hostname or "", parts.port, deadline)
            _bound(conn, deadline)
            conn.request("POST", parts.path or "/", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException, ValueError) as exc:
            if conn is not None:
                conn.close()
            conn = None
            # An idle connection the server already closed fails once; a fresh one must not.
            if reused and time.monotonic() < deadline:
                reused = False
                continue
            raise DynamoError(f"request to {parts.netloc} failed: {exc!r}") from exc
        if conn.sock is not None and not response.will_close:
            _idle[key] = conn
        return response.status, payload
    raise DynamoError(f"request to {parts.netloc} failed")  # pragma: no cover


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the table deadline passed")
    return left


class _DeadlineReader(io.RawIOBase):
    """The socket's reader, except that every ``recv`` gets only what is left of the deadline.

    It wraps the socket file http.client made, so the socket stays open while the response
    is read even if the connection object closes it (http.client relies on that), and reads
    it with ``readinto1``: at most one ``recv`` per call, each under the time left.
    """

    def __init__(self, file: Any, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._file = file
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(_remaining(self._deadline))
        read: int = self._file.readinto1(buffer)
        return read

    def close(self) -> None:
        self._file.close()
        super().close()


class _DeadlineResponse(http.client.HTTPResponse):
    def __init__(self, sock: socket.socket, *args: Any, deadline: float, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp = io.BufferedReader(_DeadlineReader(self.fp, sock, deadline))


def _bound(conn: http.client.HTTPConnection, deadline: float) -> None:
    """Hold the connection's next request and response to ``deadline``."""
    if conn.sock is None:
        raise http.client.NotConnected("pooled connection was closed")
    conn.sock.settimeout(_remaining(deadline))

    def response_class(sock: socket.socket, *args: Any, **kwargs: Any) -> _DeadlineResponse:
        return _DeadlineResponse(sock, *args, deadline=deadline, **kwargs)

    conn.response_class = response_class  # type: ignore[assignment]


def _connect(
    scheme: str, hostname: str, port: int | None, deadline: float
) -> http.client.HTTPConnection:
    if scheme not in ("http", "https"):
        raise DynamoError(f"unsupported endpoint scheme {scheme!r}")
    port = port or (443 if scheme == "https" else 80)
    sock = socket.create_connection((hostname, port), timeout=_remaining(deadline))
    try:
        if scheme == "https":
            sock = _handshake(sock, hostname, deadline)
    except BaseException:
        sock.close()
        raise
    # The socket is connected (and TLS set up) here, under the deadline; http.client only
    # writes and reads it. auto_open off: a closed connection is never silently reopened
    # as plain TCP.
    conn = http.client.HTTPConnection(hostname, port)
    conn.sock = sock
    conn.auto_open = 0
    return conn


def _handshake(sock: socket.socket, hostname: str, deadline: float) -> socket.socket:
    import select
    import ssl

    tls = _tls().wrap_socket(sock, server_hostname=hostname, do_handshake_on_connect=False)
    tls.setblocking(False)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            ready = select.select([tls], [], [], _remaining(deadline))[0]
        except ssl.SSLWantWriteError:
            ready = select.select([], [tls], [], _remaining(deadline))[1]
        if not ready:
            raise TimeoutError("the table deadline passed during the TLS handshake")
    tls.settimeout(_remaining(deadline))
    wrapped: socket.socket = tls
    return wrapped


_tls_context: Any = None


def _tls() -> Any:
    # Loading the CA bundle is the expensive part of TLS setup: do it once per container.
    global _tls_context
    if _tls_context is None:
        import ssl

        _tls_context = ssl.create_default_context()
    return _tls_context
