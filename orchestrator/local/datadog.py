"""A Datadog-compatible query endpoint on 127.0.0.1 for the local stack and tests.

It serves the routes the Datadog provider uses, with Datadog's documented bodies:
``GET /api/v1/validate``, ``GET /api/v1/query`` (series with ``pointlist``) and
``POST /api/v2/query/scalar`` (``data.attributes.columns``). Points are per-second counts
recorded by the traffic generator under a metric name and tags. Queries understood:
``<aggr>:<metric>{tag:value,...}`` with optional ``.as_count()`` / ``.as_rate()`` and an
optional ``default_zero(...)`` around it, which is what the demo plan asks.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from .loopback import LoopbackServer

API_KEY = "local-datadog-api-key"
APP_KEY = "local-datadog-app-key"
_QUERY = re.compile(
    r"^(?P<zero>default_zero\()?\s*(?P<aggr>sum|avg|max|min):(?P<metric>[\w.]+)"
    r"\{(?P<scope>[^{}]*)\}(?:\.as_count\(\)|\.as_rate\(\))?\s*\)?$"
)


@dataclass
class PointStore:
    """Per-second sums keyed by metric name and sorted tags."""

    _points: dict[tuple[str, tuple[str, ...]], dict[int, float]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(float))
    )
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, metric: str, tags: dict[str, str], second: int, value: float) -> None:
        key = (metric, tuple(sorted(f"{k}:{v}" for k, v in tags.items())))
        with self._lock:
            self._points[key][second] += value

    def series(self, metric: str, scope: set[str], start: int, end: int) -> dict[int, float]:
        """Points of every tag set that holds ``scope``, summed per second, in [start, end]."""
        found: dict[int, float] = defaultdict(float)
        with self._lock:
            for (name, tags), points in self._points.items():
                if name == metric and scope <= set(tags):
                    for second, value in points.items():
                        if start <= second <= end:
                            found[second] += value
        return dict(sorted(found.items()))


class DatadogEndpoint(LoopbackServer):
    """``start()`` serves on a free port; ``url`` is what ``Configuration(host=...)`` takes."""

    def __init__(self, store: PointStore | None = None, port: int = 0) -> None:
        self.store = store or PointStore()
        self.requests: list[tuple[str, str]] = []
        endpoint = self

        class Handler(_Handler):
            owner = endpoint

        super().__init__(Handler, port)

    def value(self, query: str, start: int, end: int) -> tuple[float | None, list[list[Any]]]:
        """The window's sum (or other aggregate) and its points, for one query."""
        match = _QUERY.match(query.strip())
        if not match:
            raise ValueError(f"unsupported query: {query}")
        scope = {part.strip() for part in match["scope"].split(",") if part.strip() != "*"}
        points = self.store.series(match["metric"], scope, start, end)
        pointlist = [[second * 1000.0, value] for second, value in points.items()]
        if not points:
            return (0.0 if match["zero"] else None), pointlist
        values = list(points.values())
        aggregate = {
            "sum": sum(values),
            "avg": sum(values) / len(values),
            "max": max(values),
            "min": min(values),
        }[match["aggr"]]
        return aggregate, pointlist


class _Handler(BaseHTTPRequestHandler):
    owner: DatadogEndpoint

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        url = urlparse(self.path)
        self.owner.requests.append(("GET", url.path))
        if url.path == "/api/v1/validate":
            if self.headers.get("DD-API-KEY") != API_KEY:
                return self._send(403, {"errors": ["Forbidden"]})
            return self._send(200, {"valid": True})
        if url.path != "/api/v1/query":
            return self._send(404, {"errors": ["Not found"]})
        if not self._authorized():
            return None
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        try:
            start, end, query = int(params["from"]), int(params["to"]), params["query"]
            _, pointlist = self.owner.value(query, start, end)
        except (KeyError, ValueError) as exc:
            return self._send(400, {"errors": [f"Error parsing query: {exc}"]})
        series = []
        if pointlist:
            series.append(
                {
                    "aggr": query.split(":", 1)[0],
                    "display_name": query,
                    "end": int(pointlist[-1][0]),
                    "expression": query,
                    "interval": 1,
                    "length": len(pointlist),
                    "metric": query.split(":", 1)[1].split("{", 1)[0],
                    "pointlist": pointlist,
                    "scope": query.split("{", 1)[1].split("}", 1)[0],
                    "start": int(pointlist[0][0]),
                    "tag_set": [],
                    "unit": None,
                }
            )
        self._send(
            200,
            {
                "status": "ok",
                "res_type": "time_series",
                "resp_version": 1,
                "query": query,
                "from_date": start * 1000,
                "to_date": end * 1000,
                "series": series,
                "values": [],
                "times": [],
                "message": "",
                "group_by": [],
            },
        )

    def do_POST(self) -> None:
        url = urlparse(self.path)
        self.owner.requests.append(("POST", url.path))
        if url.path != "/api/v2/query/scalar":
            return self._send(404, {"errors": ["Not found"]})
        if not self._authorized():
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            attributes = body["data"]["attributes"]
            start, end = int(attributes["from"]) // 1000, int(attributes["to"]) // 1000
            values = {
                q["name"]: self.owner.value(q["query"], start, end)[0]
                for q in attributes["queries"]
            }
            formulas = [f["formula"] for f in attributes.get("formulas") or []] or list(values)
            columns = [
                {
                    "name": formula,
                    "type": "number",
                    "values": [values.get(formula)],
                    "meta": {"unit": None},
                }
                for formula in formulas
            ]
        except (KeyError, ValueError, TypeError) as exc:
            return self._send(400, {"errors": [f"Error parsing query: {exc}"]})
        self._send(200, {"data": {"type": "scalar_response", "attributes": {"columns": columns}}})

    def _authorized(self) -> bool:
        if self.headers.get("DD-API-KEY") != API_KEY:
            self._send(403, {"errors": ["Forbidden"]})
            return False
        if self.headers.get("DD-APPLICATION-KEY") != APP_KEY:
            self._send(403, {"errors": ["Forbidden"]})
            return False
        return True

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
