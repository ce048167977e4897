"""A minimal DynamoDB ``Query`` client for the edge: stdlib HTTP, SigV4, typed-JSON decoding.

boto3 is in the Lambda runtime, but importing it and building a client costs ~180 ms of cold
start on every new edge container; one signed POST does the same job.
"""

from __future__ import annotations

import http.client
import json
import os
import time
from typing import Any
from urllib.parse import urlsplit

from edge import config as edge_config
from edge import sigv4

TARGET = "DynamoDB_20120810.Query"
CONTENT_TYPE = "application/x-amz-json-1.0"
# Route items per host are few; a runaway LastEvaluatedKey loop must not eat the 5 s budget.
MAX_PAGES = 20

_idle: dict[tuple[str, str, float], http.client.HTTPConnection] = {}


class DynamoError(Exception):
    """The table could not be read: network, credentials, throttling or a bad response."""


def query_host(
    host: str, *, cfg: edge_config.EdgeConfig | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """Return every route item stored under ``host``, decoded into plain Python values.

    ``limit`` caps the items per page; it exists so tests can force pagination.
    """
    cfg = cfg or edge_config.load()
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
    for _ in range(MAX_PAGES):
        page = _call(url, region, request, cfg.timeout_seconds)
        items.extend(deserialize_item(item) for item in page.get("Items", []))
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
    if len(value) != 1:
        raise DynamoError(f"malformed attribute value: {value!r}")
    ((kind, raw),) = value.items()
    if kind in ("S", "BOOL"):
        return raw
    if kind == "N":
        return _number(raw)
    if kind == "NULL":
        return None
    if kind == "M":
        return deserialize_item(raw)
    if kind == "L":
        return [deserialize(v) for v in raw]
    if kind == "SS":
        return list(raw)
    if kind == "NS":
        return [_number(v) for v in raw]
    if kind in ("B", "BS"):
        import base64  # rare in route items: keep it off the import path

        return base64.b64decode(raw) if kind == "B" else [base64.b64decode(v) for v in raw]
    raise DynamoError(f"unsupported attribute type {kind!r}")


def deserialize_item(item: dict[str, Any]) -> dict[str, Any]:
    """Decode every attribute of a DynamoDB item."""
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


def _number(raw: str) -> int | float:
    try:
        return int(raw)
    except ValueError:
        return float(raw)


def _call(url: str, region: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
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
    status, payload = _post(url, headers, body, timeout)
    try:
        answer = json.loads(payload)
    except ValueError as exc:
        raise DynamoError(f"HTTP {status}: response is not JSON") from exc
    if status != 200 or not isinstance(answer, dict):
        kind = answer.get("__type", "") if isinstance(answer, dict) else ""
        message = answer.get("message", "") if isinstance(answer, dict) else ""
        raise DynamoError(f"HTTP {status} {kind} {message}".strip())
    return answer


def _post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> tuple[int, bytes]:
    # A warm connection saves a TLS handshake on every TTL refresh. Connections are taken out
    # of the pool while in use, so concurrent callers (the local emulator) never share one.
    parts = urlsplit(url)
    key = (parts.scheme, parts.netloc, timeout)
    conn = _idle.pop(key, None)
    reused = conn is not None
    for _attempt in range(2):
        if conn is None:
            conn = _connect(parts.scheme, parts.hostname or "", parts.port, timeout)
        try:
            conn.request("POST", parts.path or "/", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            conn = None
            # An idle connection the server already closed fails once; a fresh one must not.
            if reused:
                reused = False
                continue
            raise DynamoError(f"request to {parts.netloc} failed: {exc!r}") from exc
        _idle[key] = conn
        return response.status, payload
    raise DynamoError(f"request to {parts.netloc} failed")  # pragma: no cover


def _connect(
    scheme: str, hostname: str, port: int | None, timeout: float
) -> http.client.HTTPConnection:
    if scheme == "https":
        return http.client.HTTPSConnection(hostname, port, timeout=timeout, context=_tls())
    if scheme == "http":
        return http.client.HTTPConnection(hostname, port, timeout=timeout)
    raise DynamoError(f"unsupported endpoint scheme {scheme!r}")


_tls_context: Any = None


def _tls() -> Any:
    # Loading the CA bundle is the expensive part of TLS setup: do it once per container.
    global _tls_context
    if _tls_context is None:
        import ssl

        _tls_context = ssl.create_default_context()
    return _tls_context
