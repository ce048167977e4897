"""A CloudFront emulator: real Lambda@Edge event dicts through the real edge handlers.

Per request, in CloudFront's order: viewer-request (may answer by itself, and then nothing
else runs), origin-request (may switch the origin, or answer), a fetch from the origin the
request ends up with, then viewer-response on that response, which sees the request as
viewer-request left it. As in CloudFront, viewer-response is skipped when the origin answers
400 or more. There is no cache, so every request is a miss and runs origin-request, the worst
case for the functions. ``X-Forwarded-For`` supplies the viewer IP so one loopback client can
play many viewers, and ``X-Emulated-Viewer-Country`` stands in for CloudFront's geolocation of
that IP: as CloudFront does when the origin request policy names it, the emulator sets
``CloudFront-Viewer-Country`` after viewer-request (which sees only a viewer's own copy).
S3 origins are not emulated (502): the local stack uses custom origins.

One fault can be switched on, off by default: ``reassign_variant`` names a variant whose
viewers the edge assigns a second time under a second key (the viewer's address with one
bit changed, as an edge keyed on another hop of the viewer's path would), serving the
second answer. With ``"stable"`` the canary serves weight * (2 - weight) of the requests
instead of its weight, nearly twice at small weights: what the served-split check exists
to notice.
"""

from __future__ import annotations

import copy
import http.client
import ipaddress
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from .loopback import LOOPBACK, LoopbackServer

DISTRIBUTION = {
    "distributionDomainName": "d111111abcdef8.cloudfront.net",
    "distributionId": "EDFDVBD6EXAMPLE",
}
# The emulator only ever forwards to loopback: a route can never make it reach elsewhere.
_ALLOWED_ORIGIN_HOSTS = {"127.0.0.1", "localhost"}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length"}
EMULATED_COUNTRY_HEADER = "x-emulated-viewer-country"
_VIEWER_COUNTRY = "cloudfront-viewer-country"


def viewer_event(
    event_type: str,
    request: dict[str, Any],
    request_id: str | None = None,
    response: dict[str, Any] | None = None,
) -> dict[str, Any]:
    config = {**DISTRIBUTION, "eventType": event_type, "requestId": request_id or uuid.uuid4().hex}
    cf: dict[str, Any] = {"config": config, "request": request}
    if response is not None:
        cf["response"] = response
    return {"Records": [{"cf": cf}]}


def cf_headers(pairs: list[tuple[str, str]]) -> dict[str, list[dict[str, str]]]:
    headers: dict[str, list[dict[str, str]]] = {}
    for key, value in pairs:
        headers.setdefault(key.lower(), []).append({"key": key, "value": value})
    return headers


class CloudFrontEmulator(LoopbackServer):
    def __init__(
        self, default_origin_port: int, *, port: int = 0, reassign_variant: str | None = None
    ) -> None:
        from edge import config, origin_request, viewer_request, viewer_response

        self.viewer_request = viewer_request.handler
        self.origin_request = origin_request.handler
        self.viewer_response = viewer_response.handler
        self.reassign_variant = reassign_variant  # an emulated fault: see the module's doc
        self.variant_header = config.load().variant_header
        self.default_origin = {
            "custom": {
                "domainName": LOOPBACK,
                "port": default_origin_port,
                "protocol": "http",
                "path": "",
                "sslProtocols": ["TLSv1.2"],
                "readTimeout": 30,
                "keepaliveTimeout": 5,
                "customHeaders": {},
            }
        }
        self.stats: Counter[str] = Counter()
        self._connections = threading.local()  # one keep-alive origin connection per thread
        self._stats_lock = threading.Lock()
        super().__init__(self._handler_class(), port)

    def count(self, name: str) -> None:
        with self._stats_lock:
            self.stats[name] += 1

    def serve(  # type: ignore[no-untyped-def]
        self,
        method: str,
        path: str,
        headers: list[tuple[str, str]],
        client_ip: str,
        country: str | None = None,
    ):
        """Run one request through the triggers; returns (status, headers, body).

        ``country`` is where the viewer's IP is, as CloudFront's geolocation would say.
        """
        parts = urlsplit(path)
        request = {
            "clientIp": client_ip,
            "headers": cf_headers(headers),
            "method": method,
            "querystring": parts.query,
            "uri": parts.path or "/",
        }
        request_id = uuid.uuid4().hex
        # viewer-request rewrites its request in place: the fault's second pass needs it as sent.
        untouched = copy.deepcopy(request) if self.reassign_variant else None
        try:
            result = self.viewer_request(viewer_event("viewer-request", request, request_id), None)
            if untouched is not None:
                result = self._reassigned(result, untouched, request_id)
            if "status" in result:  # generated: CloudFront answers at once, no other trigger
                self.count("generated_responses")
                return _generated(result)
            # viewer-response sees the request as viewer-request left it, not the origin's copy.
            viewed = copy.deepcopy(result)
            # CloudFront's own value replaces a viewer's copy once viewer-request has run.
            result["headers"].pop(_VIEWER_COUNTRY, None)
            if country:
                result["headers"][_VIEWER_COUNTRY] = [
                    {"key": "CloudFront-Viewer-Country", "value": country}
                ]
            result["origin"] = copy.deepcopy(self.default_origin)
            result = self.origin_request(viewer_event("origin-request", result, request_id), None)
            if "status" in result:
                status, out_headers, body = _generated(result)
            else:
                status, out_headers, body = self._fetch(result)
            if status >= 400:  # CloudFront does not run viewer-response for these
                return status, out_headers, body
            response = {
                "status": str(status),
                "statusDescription": http.client.responses.get(status, ""),
                "headers": cf_headers(out_headers),
            }
            event = viewer_event("viewer-response", viewed, request_id, response)
            final = self.viewer_response(event, None)
            return int(final["status"]), _pairs(final["headers"]), body
        except Exception:  # CloudFront answers 502 when a function fails; count it loudly
            self.count("function_errors")
            return 502, [("content-type", "text/plain")], b"LambdaExecutionError\n"

    def _reassigned(
        self, result: dict[str, Any], request: dict[str, Any], request_id: str
    ) -> dict[str, Any]:
        """The ``reassign_variant`` fault: a request the edge gave that variant is assigned
        again under the viewer's second key, and that answer wins when it differs."""
        if "status" in result or _header(result, self.variant_header) != self.reassign_variant:
            return result
        request["clientIp"] = _second_address(request["clientIp"])
        again: dict[str, Any] = self.viewer_request(
            viewer_event("viewer-request", request, request_id), None
        )
        if "status" in again or _header(again, self.variant_header) == self.reassign_variant:
            return result
        self.count("reassigned")
        return again

    def _fetch(self, request: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        if "custom" not in request["origin"]:
            self.count("origin_refused")
            return 502, [("content-type", "text/plain")], b"S3 origins are not emulated\n"
        origin = request["origin"]["custom"]
        if origin["domainName"] not in _ALLOWED_ORIGIN_HOSTS:
            self.count("origin_refused")
            return 502, [("content-type", "text/plain")], b"origin outside loopback refused\n"
        url = origin.get("path", "") + request["uri"]
        if request.get("querystring"):
            url += "?" + request["querystring"]
        connection = self._connection(int(origin["port"]))
        try:
            forwarded = {k: v[0]["value"] for k, v in request["headers"].items()}
            forwarded["host"] = origin["domainName"]
            connection.request(request["method"], url, headers=forwarded)
            response = connection.getresponse()
            body = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            self.count("origin_errors")
            return 502, [("content-type", "text/plain")], b"origin unreachable\n"
        kept = [(k, v) for k, v in response.getheaders() if k.lower() not in _HOP_BY_HOP]
        self.count("origin_fetches")
        return response.status, kept, body

    def _connection(self, port: int) -> http.client.HTTPConnection:
        pool: dict[int, http.client.HTTPConnection] = self._connections.__dict__.setdefault(
            "pool", {}
        )
        if port not in pool:
            pool[port] = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
        return pool[port]

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out in two writes

            def do_GET(self) -> None:
                forwarded = self.headers.get("x-forwarded-for", "")
                client_ip = forwarded.split(",")[0].strip() or self.client_address[0]
                country = self.headers.get(EMULATED_COUNTRY_HEADER)
                stand_ins = ("x-forwarded-for", EMULATED_COUNTRY_HEADER)
                pairs = [(k, v) for k, v in self.headers.items() if k.lower() not in stand_ins]
                status, headers, body = emulator.serve("GET", self.path, pairs, client_ip, country)
                emulator.count("requests")
                # CloudFront passes the origin's Server and Date on: the emulator adds its own
                # only where the origin sent none (an edge redirect has no origin), never twice.
                self.log_request(status)
                self.send_response_only(status)
                sent = {key.lower() for key, _ in headers}
                if "server" not in sent:
                    self.send_header("Server", "CloudFront")
                if "date" not in sent:
                    self.send_header("Date", self.date_time_string())
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def _header(request: dict[str, Any], name: str) -> str | None:
    values = request.get("headers", {}).get(name)
    return values[0]["value"] if values else None


def _second_address(address: str) -> str:
    """Another address for the same viewer, stable across its requests (so the faulty
    assignment is as sticky as the real one)."""
    try:
        return str(ipaddress.ip_address(int(ipaddress.ip_address(address)) ^ 0x80))
    except ValueError:
        return address + "-2"


def _pairs(headers: dict[str, list[dict[str, str]]]) -> list[tuple[str, str]]:
    """CloudFront's header map back to HTTP lines, every value of a repeated header kept."""
    return [
        (entry.get("key") or name, entry["value"])
        for name, values in headers.items()
        if name not in _HOP_BY_HOP
        for entry in values
    ]


def _generated(response: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    body = response.get("body", "")
    if response.get("bodyEncoding") == "base64":
        import base64

        return int(response["status"]), _pairs(response.get("headers", {})), base64.b64decode(body)
    return int(response["status"]), _pairs(response.get("headers", {})), str(body).encode()
