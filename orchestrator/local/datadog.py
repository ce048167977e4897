"""A Datadog-compatible query endpoint on 127.0.0.1 for the local stack and tests.

It serves the routes the Datadog provider uses, with Datadog's documented bodies:
``GET /api/v1/validate``, ``GET /api/v1/query`` (series with ``pointlist``),
``POST /api/v2/query/scalar`` (``data.attributes.columns``) and
``POST /api/v2/query/timeseries`` (``data.attributes.times``, ``series`` with
``query_index`` and ``group_tags``, ``values``; points summed per ``interval``). Points are
per-second counts recorded by the traffic generator under a metric name and tags. Queries
understood: ``<aggr>:<metric>{tag:value,...}`` with an optional ``by {key}``, optional
``.as_count()`` / ``.as_rate()``, an optional ``.rollup(<aggr>, <seconds>)`` and an optional
``default_zero(...)`` around it, which is what the demo plan and the provider send.
"""

from __future__ import annotations

import json
import re
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from .loopback import LoopbackServer

API_KEY = "local-datadog-api-key"
APP_KEY = "local-datadog-app-key"
_QUERY = re.compile(
    r"^(?P<zero>default_zero\()?\s*(?P<aggr>sum|avg|max|min):(?P<metric>[\w.]+)"
    r"\{(?P<scope>[^{}]*)\}(?:\s*by\s*\{(?P<by>[\w.]+)\})?(?:\.as_count\(\)|\.as_rate\(\))?"
    r"(?:\.rollup\(\s*(?P<rollup>sum|avg|max|min|count)\s*(?:,\s*(?P<every>\d+)\s*)?\))?"
    r"\s*(?(zero)\))$"
)
_AGGREGATE: dict[str, Callable[[list[float]], float]] = {
    "sum": lambda values: float(sum(values)),
    "avg": lambda values: sum(values) / len(values),
    "max": max,
    "min": min,
    "count": lambda values: float(len(values)),
}

Points = dict[int, float]  # second (or period start) -> value


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
        return self.groups(metric, scope, None, start, end).get((), {})

    def groups(
        self, metric: str, scope: set[str], by: str | None, start: int, end: int
    ) -> dict[tuple[str, ...], Points]:
        """Like ``series``, one per value of the tag ``by`` (the group's tags as key)."""
        found: dict[tuple[str, ...], Points] = defaultdict(lambda: defaultdict(float))
        with self._lock:
            for (name, tags), points in self._points.items():
                if name != metric or not scope <= set(tags):
                    continue
                group = tuple(t for t in tags if by is not None and t.split(":", 1)[0] == by)
                for second, value in points.items():
                    if start <= second <= end:
                        found[group][second] += value
        return {group: dict(sorted(points.items())) for group, points in sorted(found.items())}


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
        """The window's aggregate (of every group) and its points, for one query."""
        groups = self.groups(query, start, end, None)
        points = [[second * 1000.0, v] for p in groups.values() for second, v in p.items()]
        values = [v for p in groups.values() for v in p.values()]
        if not values:
            return (0.0 if _parse(query)["zero"] else None), points
        return _AGGREGATE[_parse(query)["aggr"]](values), points

    def groups(
        self, query: str, start: int, end: int, interval: int | None
    ) -> dict[tuple[str, ...], Points]:
        """The points of each group of ``query`` in [start, end], per ``interval`` seconds
        (or its own ``.rollup``, or per second); ``default_zero`` fills empty periods."""
        match = _parse(query)
        scope = {part.strip() for part in match["scope"].split(",") if part.strip() != "*"}
        groups = self.store.groups(match["metric"], scope, match["by"], start, end)
        every = int(match["every"]) if match["every"] else interval
        if every:
            rollup = _AGGREGATE[match["rollup"] or "sum"]
            groups = {group: _rolled(points, every, rollup) for group, points in groups.items()}
        if match["zero"]:
            step = every or 1
            zeros = dict.fromkeys(range(start // step * step, end + 1, step), 0.0)
            groups = {g: zeros | p for g, p in (groups or {(): {}}).items()}
        return groups


def _parse(query: str) -> re.Match[str]:
    match = _QUERY.match(query.strip())
    if not match:
        raise ValueError(f"unsupported query: {query}")
    return match


def _rolled(points: Points, every: int, rollup: Callable[[list[float]], float]) -> Points:
    periods: dict[int, list[float]] = defaultdict(list)
    for second, value in points.items():
        periods[second // every * every].append(value)
    return {start: rollup(values) for start, values in sorted(periods.items())}


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
            groups = self.owner.groups(query, start, end, None)
        except (KeyError, ValueError) as exc:
            return self._send(400, {"errors": [f"Error parsing query: {exc}"]})
        self._send(200, _v1_body(query, start, end, groups))

    def do_POST(self) -> None:
        url = urlparse(self.path)
        self.owner.requests.append(("POST", url.path))
        if url.path not in ("/api/v2/query/scalar", "/api/v2/query/timeseries"):
            return self._send(404, {"errors": ["Not found"]})
        if not self._authorized():
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
            attributes = json.loads(self.rfile.read(length))["data"]["attributes"]
            if url.path.endswith("/scalar"):
                body = self._scalar(attributes)
            else:
                body = self._timeseries(attributes)
        except (KeyError, ValueError, TypeError) as exc:
            return self._send(400, {"errors": [f"Error parsing query: {exc}"]})
        self._send(200, body)

    def _scalar(self, attributes: dict[str, Any]) -> dict[str, Any]:
        start, end = int(attributes["from"]) // 1000, int(attributes["to"]) // 1000
        values = {
            q["name"]: self.owner.value(q["query"], start, end)[0] for q in attributes["queries"]
        }
        columns = [
            {"name": formula, "type": "number", "values": [values[formula]], "meta": {"unit": None}}
            for formula in _formulas(attributes)
        ]
        return {"data": {"type": "scalar_response", "attributes": {"columns": columns}}}

    def _timeseries(self, attributes: dict[str, Any]) -> dict[str, Any]:
        start, end = int(attributes["from"]) // 1000, int(attributes["to"]) // 1000
        interval = max(1, int(attributes.get("interval") or 60_000) // 1000)
        queries = {q["name"]: q["query"] for q in attributes["queries"]}
        found: list[tuple[int, tuple[str, ...], Points]] = []
        for index, formula in enumerate(_formulas(attributes)):
            groups = self.owner.groups(queries[formula], start, end - 1, interval)
            found += [(index, group, points) for group, points in groups.items() if points]
        times = sorted({second for _, _, points in found for second in points})
        series = [
            {"group_tags": list(group), "query_index": i, "unit": None} for i, group, _ in found
        ]
        values = [[points.get(t) for t in times] for _, _, points in found]
        return {
            "data": {
                "id": "0",
                "type": "timeseries_response",
                "attributes": {
                    "series": series,
                    "times": [t * 1000 for t in times],
                    "values": values,
                },
            }
        }

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


def _formulas(attributes: dict[str, Any]) -> list[str]:
    """Formula names in request order (each names one query), or the queries' names."""
    names = [q["name"] for q in attributes["queries"]]
    formulas = [f["formula"] for f in attributes.get("formulas") or []] or names
    unknown = [f for f in formulas if f not in names]
    if unknown:
        raise ValueError(f"formulas other than a query name are not served: {unknown}")
    return formulas


def _v1_body(
    query: str, start: int, end: int, groups: dict[tuple[str, ...], Points]
) -> dict[str, Any]:
    match = _parse(query)
    series = []
    for group, points in groups.items():
        if not points:
            continue
        pointlist = [[second * 1000.0, value] for second, value in points.items()]
        scope = ",".join([match["scope"], *group]) if group else match["scope"]
        series.append(
            {
                "aggr": match["aggr"],
                "display_name": match["metric"],
                "end": int(pointlist[-1][0]),
                "expression": query,
                "interval": int(match["every"] or 1),
                "length": len(pointlist),
                "metric": match["metric"],
                "pointlist": pointlist,
                "query_index": 0,
                "scope": scope,
                "start": int(pointlist[0][0]),
                "tag_set": list(group),
                "unit": None,
            }
        )
    return {
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
        "group_by": [match["by"]] if match["by"] else [],
    }
