"""A bounded population of simulated viewers, and per-variant counts published to CloudWatch.

Each viewer is an IP, a User-Agent and a country, so the edge's sticky hash sees distinct
users and its segment labels (browser, device, country) see a realistic mix. Counts are what
the viewers saw, keyed by the variant the origin says it served and the segment the edge
labelled the request with (the origin echoes both, the way an application tags its metrics).
They go to CloudWatch as high-resolution ``Requests`` and ``Errors`` sums every second, per
``{Host, Variant}`` and per ``{Host, Variant, <dimension>}`` for each segment dimension,
with ``Viewers`` per ``{Host, Variant}`` (each variant's viewers first seen in that minute:
a minute's points sum to its distinct viewers), and, when a local Datadog endpoint runs, to
it as ``edgeshift.demo.requests`` / ``edgeshift.demo.errors`` tagged ``host``, ``variant``,
``browser``, ``device``, ``country`` (and ``edgeshift.demo.viewers``, ``host`` and
``variant``).
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .cloudfront import EMULATED_COUNTRY_HEADER
from .datadog import PointStore
from .loopback import LOOPBACK
from .origins import SEGMENT_HEADER, VARIANT_HEADER

NAMESPACE = "EdgeShift/Demo"
DATADOG_REQUESTS = "edgeshift.demo.requests"
DATADOG_ERRORS = "edgeshift.demo.errors"
# Distinct viewers of each variant per minute (published each second as the viewers first
# seen in the minute), as an application counting its viewers would: a plan's
# ``analysis.split.viewers`` may name it (``Viewers``) with 60-second periods.
VIEWERS_METRIC = "Viewers"
DATADOG_VIEWERS = "edgeshift.demo.viewers"
SEGMENT_DIMENSIONS = ("browser", "device", "country")
# PutMetricData takes at most 1,000 metrics and 1 MB per call.
MAX_METRICS_PER_CALL = 1000
MAX_BYTES_PER_CALL = 1_000_000

_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
_ANDROID = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko)"
_TABLET = "Mozilla/5.0 (Linux; Android 13; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko)"
_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS {v} like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
)
_IPAD = "Mozilla/5.0 (iPad; CPU OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko)"
IE_11 = "Mozilla/5.0 (Windows NT 10.0; WOW64; Trident/7.0; rv:11.0) like Gecko"
# (share in per mille, User-Agent), about the browser and device mix of a consumer web site:
# Chrome 64%, Safari 19%, Edge 5%, Firefox 3%, Samsung Internet 3%, Opera 2%, IE 11 1%,
# other 3%; mobile ~55%, desktop ~42%, tablet ~2%, and a few bots.
USER_AGENTS: tuple[tuple[int, str], ...] = (
    (205, f"{_WIN} Chrome/131.0.0.0 Safari/537.36"),
    (40, f"{_WIN} Chrome/130.0.0.0 Safari/537.36"),
    (50, f"{_MAC} Chrome/131.0.0.0 Safari/537.36"),
    (280, f"{_ANDROID} Chrome/131.0.0.0 Mobile Safari/537.36"),
    (40, f"{_ANDROID} Chrome/130.0.0.0 Mobile Safari/537.36"),
    (20, _IPHONE.format(v="18_1") + " CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1"),
    (10, f"{_TABLET} Chrome/131.0.0.0 Safari/537.36"),
    (110, _IPHONE.format(v="18_1") + " Version/18.1 Mobile/15E148 Safari/604.1"),
    (30, _IPHONE.format(v="17_6") + " Version/17.6 Mobile/15E148 Safari/604.1"),
    (10, _IPHONE.format(v="18_1") + " Mobile/15E148 [FBAN/FBIOS;FBAV/450.0.0.38.108]"),
    (30, f"{_MAC} Version/18.1 Safari/605.1.15"),
    (10, f"{_IPAD} Version/18.1 Mobile/15E148 Safari/604.1"),
    (45, f"{_WIN} Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86"),
    (5, f"{_ANDROID} Chrome/131.0.0.0 Mobile Safari/537.36 EdgA/131.0.2903.87"),
    (20, "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    (5, "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"),
    (5, "Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0"),
    (28, f"{_ANDROID} SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36"),
    (2, f"{_TABLET} SamsungBrowser/26.0 Chrome/122.0.0.0 Safari/537.36"),
    (10, f"{_WIN} Chrome/130.0.0.0 Safari/537.36 OPR/115.0.0.0"),
    (10, f"{_ANDROID} Chrome/130.0.0.0 Mobile Safari/537.36 OPR/86.0.0.0"),
    (10, IE_11),
    (10, f"{_WIN} Chrome/131.0.0.0 YaBrowser/24.12.0.0 Safari/537.36"),
    (5, f"{_ANDROID} UCBrowser/13.4.0.1306 Mobile Safari/537.36"),
    (5, "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"),
    (5, "okhttp/4.12.0"),  # an app's own HTTP client: no browser, no device
)
# (share in per mille, ISO 3166-1 alpha-2): a global site's spread of viewers.
COUNTRIES: tuple[tuple[int, str], ...] = (
    (320, "US"), (80, "IN"), (60, "BR"), (60, "DE"), (50, "GB"), (40, "FR"), (40, "JP"),
    (30, "CA"), (30, "MX"), (30, "ID"), (25, "IT"), (25, "ES"), (20, "AU"), (20, "NL"),
    (20, "PL"), (20, "TR"), (20, "KR"), (20, "PH"), (20, "VN"), (15, "NG"), (15, "ZA"),
    (15, "AR"), (10, "SE"), (10, "EG"), (5, "NZ"),
)  # fmt: skip
UNASSIGNED = "unassigned"


class Viewer(NamedTuple):
    ip: str
    user_agent: str
    country: str


def population(size: int, seed: int = 7) -> list[Viewer]:
    """Viewers from 198.18.0.0/15, the range reserved for benchmarks: never a real client.

    Browsers and countries are drawn in the proportions above, deterministically from
    ``seed``, so a scenario sees the same viewers every run.
    """
    rng = random.Random(seed)
    agents = rng.choices([ua for _, ua in USER_AGENTS], weights=[w for w, _ in USER_AGENTS], k=size)
    countries = rng.choices(
        [code for _, code in COUNTRIES], weights=[w for w, _ in COUNTRIES], k=size
    )
    return [
        Viewer(f"198.{18 + i // 65536}.{i // 256 % 256}.{i % 256}", agents[i], countries[i])
        for i in range(size)
    ]


def segment_mix(size: int = 2000, seed: int = 7) -> list[tuple[float, str]]:
    """The shares of each segment label in ``population(size, seed)``, labelled by the edge's
    own code, for feeders that publish segment counts without HTTP."""
    from edge import segments

    counts = Counter(
        segments.label(viewer.user_agent, viewer.country) for viewer in population(size, seed)
    )
    return [(count / size, label) for label, count in sorted(counts.items())]


def segment_parts(segment: str) -> dict[str, str]:
    """``browser=ie-11;device=desktop;country=de`` -> {"browser": "ie-11", ...}."""
    parts = dict(part.partition("=")[::2] for part in segment.split(";") if "=" in part)
    return {dim: parts[dim] for dim in SEGMENT_DIMENSIONS if parts.get(dim)}


@dataclass
class Tally:
    """Requests and errors per variant, and per (variant, segment label) beside them."""

    requests: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    segment_requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    segment_errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    viewers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(
        self, variant: str, failed: bool, segment: str | None = None, viewer: str | None = None
    ) -> None:
        with self.lock:
            self.requests[variant] += 1
            if viewer is not None:
                self.viewers[variant].add(viewer)
            if failed:
                self.errors[variant] += 1
            if segment:
                self.segment_requests[variant, segment] += 1
                if failed:
                    self.segment_errors[variant, segment] += 1

    def take(self) -> Tally:
        """A copy of the counts so far; these are reset."""
        with self.lock:
            taken = Tally(
                self.requests.copy(),
                self.errors.copy(),
                self.segment_requests.copy(),
                self.segment_errors.copy(),
                self.viewers,
            )
            self.viewers = defaultdict(set)
            for counter in (
                self.requests,
                self.errors,
                self.segment_requests,
                self.segment_errors,
            ):
                counter.clear()
            return taken

    def by_dimension(self, variant: str, dimension: str) -> dict[str, tuple[int, int]]:
        """(requests, errors) of ``variant`` per value of one segment dimension."""
        found: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (name, segment), count in self.segment_requests.items():
            value = segment_parts(segment).get(dimension) if name == variant else None
            if value is not None:
                found[value][0] += count
                found[value][1] += self.segment_errors[name, segment]
        return {value: (n, e) for value, (n, e) in sorted(found.items())}


@dataclass
class TrafficGenerator:
    """Sends at most ``max_requests`` within ``max_seconds``, at about ``rate`` per second."""

    edge_port: int
    host: str
    cloudwatch: Any
    users: int = 2000
    rate: float = 400.0
    workers: int = 4
    max_requests: int = 200_000
    max_seconds: float = 120.0
    path: str = "/app.js"
    seed: int = 7
    datadog: PointStore | None = None
    # The segment dimensions published to CloudWatch beside the totals (Datadog points carry
    # every dimension as tags whatever this says).
    segment_dimensions: tuple[str, ...] = SEGMENT_DIMENSIONS
    totals: Tally = field(default_factory=Tally)
    _pending: Tally = field(default_factory=Tally)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _sent: int = 0
    _sent_lock: threading.Lock = field(default_factory=threading.Lock)
    # The viewers of each variant already published this minute (epoch minute, variant ->
    # ids): a viewer counts once a minute however many seconds it makes requests in.
    _minute: int = -1
    _published_viewers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))

    def start(self) -> TrafficGenerator:
        viewers = population(self.users, self.seed)
        deadline = time.monotonic() + self.max_seconds
        for worker in range(self.workers):
            rng = random.Random(self.seed * 1000 + worker)
            thread = threading.Thread(
                target=self._drive, args=(viewers, rng, deadline), daemon=True
            )
            self._threads.append(thread)
        self._threads.append(threading.Thread(target=self._publish_loop, daemon=True))
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self._flush()

    def _claim(self) -> bool:
        with self._sent_lock:
            if self._sent >= self.max_requests:
                return False
            self._sent += 1
            return True

    def _drive(self, viewers: list[Viewer], rng: random.Random, deadline: float) -> None:
        pause = self.workers / self.rate
        connection = http.client.HTTPConnection(LOOPBACK, self.edge_port, timeout=10)
        while not self._stop.is_set() and time.monotonic() < deadline and self._claim():
            started = time.monotonic()
            viewer = rng.choice(viewers)
            variant, failed, segment = self._request(connection, viewer)
            self.totals.add(variant, failed, segment)
            self._pending.add(variant, failed, segment, f"{viewer.ip}|{viewer.user_agent}")
            time.sleep(max(0.0, pause - (time.monotonic() - started)))
        connection.close()

    def _request(
        self, connection: http.client.HTTPConnection, viewer: Viewer
    ) -> tuple[str, bool, str | None]:
        headers = {
            "Host": self.host,
            "User-Agent": viewer.user_agent,
            "X-Forwarded-For": viewer.ip,
            # Where the viewer is: the emulator turns it into CloudFront-Viewer-Country.
            EMULATED_COUNTRY_HEADER: viewer.country,
        }
        try:
            connection.request("GET", self.path, headers=headers)
            response = connection.getresponse()
            response.read()
            variant = response.getheader(VARIANT_HEADER) or UNASSIGNED
            return variant, response.status >= 500, response.getheader(SEGMENT_HEADER)
        except (OSError, http.client.HTTPException):
            connection.close()  # reconnects on the next request
            return UNASSIGNED, True, None

    def _publish_loop(self) -> None:
        while not self._stop.wait(1.0):
            self._flush()

    def _flush(self) -> None:
        taken = self._pending.take()
        if not taken.requests:
            return
        now = time.time()
        self._first_of_minute(taken, int(now) // 60)
        if self.datadog is not None:
            datadog_points(self.datadog, self.host, taken, int(now))
        put_counts(self.cloudwatch, tally_data(self.host, taken, now, self.segment_dimensions))

    def _first_of_minute(self, taken: Tally, minute: int) -> None:
        """Keep in ``taken`` only the viewers not published yet this minute, so a minute's
        per-second ``Viewers`` sum to its distinct viewers."""
        if minute != self._minute:
            self._minute, self._published_viewers = minute, defaultdict(set)
        for variant, viewers in taken.viewers.items():
            viewers -= self._published_viewers[variant]
            self._published_viewers[variant] |= viewers


def tally_data(
    host: str, tally: Tally, at: float, dimensions: Sequence[str] = SEGMENT_DIMENSIONS
) -> list[dict[str, Any]]:
    """MetricData for a tally: each variant's totals, then its counts per segment value."""
    data = []
    for variant, count in tally.requests.items():
        data.extend(count_data(host, variant, count, tally.errors[variant], at))
        if tally.viewers.get(variant):
            data.append(
                _count(VIEWERS_METRIC, _dimensions(host, variant), at, len(tally.viewers[variant]))
            )
        for dimension in dimensions:
            for value, (n, e) in tally.by_dimension(variant, dimension).items():
                data.extend(count_data(host, variant, n, e, at, segment=(dimension, value)))
    return data


def datadog_points(store: PointStore, host: str, tally: Tally, second: int) -> None:
    """One point per variant and segment, tagged with every dimension, as an application
    tags its own: a query without ``by`` sums them back to the variant's total."""
    for variant, count in tally.requests.items():
        if tally.viewers.get(variant):
            tags = {"host": host, "variant": variant}
            store.add(DATADOG_VIEWERS, tags, second, float(len(tally.viewers[variant])))
        labelled = errors = 0
        for (name, segment), n in tally.segment_requests.items():
            if name != variant:
                continue
            tags = {"host": host, "variant": variant, **segment_parts(segment)}
            store.add(DATADOG_REQUESTS, tags, second, float(n))
            store.add(DATADOG_ERRORS, tags, second, float(tally.segment_errors[name, segment]))
            labelled += n
            errors += tally.segment_errors[name, segment]
        if count > labelled:  # requests the edge did not label (no route, no answer)
            tags = {"host": host, "variant": variant}
            store.add(DATADOG_REQUESTS, tags, second, float(count - labelled))
            store.add(DATADOG_ERRORS, tags, second, float(tally.errors[variant] - errors))


def count_data(
    host: str,
    variant: str,
    total: int,
    errors: int,
    at: float,
    *,
    segment: tuple[str, str] | None = None,
) -> list[dict[str, Any]]:
    """CloudWatch MetricData for one variant's request and error counts (1 s resolution),
    under ``{Host, Variant}``, or ``{Host, Variant, <dimension>}`` for one segment value."""
    dimensions = _dimensions(host, variant)
    if segment is not None:
        dimensions.append({"Name": segment[0], "Value": segment[1]})
    return [
        _count(name, dimensions, at, value)
        for name, value in (("Requests", total), ("Errors", errors))
    ]


def _dimensions(host: str, variant: str) -> list[dict[str, str]]:
    return [{"Name": "Host", "Value": host}, {"Name": "Variant", "Value": variant}]


def _count(name: str, dimensions: list[dict[str, str]], at: float, value: int) -> dict[str, Any]:
    """One high-resolution count (1 s) for PutMetricData."""
    return {
        "MetricName": name,
        "Dimensions": dimensions,
        "Timestamp": at,
        "Value": float(value),
        "Unit": "Count",
        "StorageResolution": 1,
    }


def put_counts(cloudwatch: Any, data: Sequence[dict[str, Any]]) -> int:
    """Publish ``data`` in as few PutMetricData calls as its limits allow; the call count."""
    calls = 0
    for batch in batches(data):
        cloudwatch.put_metric_data(Namespace=NAMESPACE, MetricData=batch)
        calls += 1
    return calls


def batches(
    data: Sequence[dict[str, Any]],
    max_items: int = MAX_METRICS_PER_CALL,
    max_bytes: int = MAX_BYTES_PER_CALL,
) -> Iterator[list[dict[str, Any]]]:
    """Runs of ``data`` within PutMetricData's limits. Size is estimated as the query
    encoding would send it (``MetricData.member.N.<path>=<value>``: about 40 bytes of name
    per field beside the value), which is over three times what botocore's CBOR sends."""
    batch: list[dict[str, Any]] = []
    size = 0
    for datum in data:
        fields = 6 + 2 * len(datum.get("Dimensions", ()))
        cost = 40 * fields + len(repr(datum))
        if batch and (len(batch) >= max_items or size + cost > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(datum)
        size += cost
    if batch:
        yield batch
