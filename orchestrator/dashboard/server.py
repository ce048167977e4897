"""The dashboard's HTTP server, on 127.0.0.1 only.

It serves the page (one HTML file, its CSS and JS, nothing fetched from elsewhere) and
forwards the page's calls to the API:

- ``GET /api/rollouts?…``: the API's list, as it answers it;
- ``GET /view/rollouts/{id}``: the rollout and its audit trail, read into what the page
  draws (``views.rollout_page``);
- ``POST /api/rollouts/{id}/{pause|resume|abort|promote}``: the steering calls, body as
  sent; the API decides and its problem+json comes back untouched.

Nothing else is forwarded: the page cannot reach ``PUT /routes`` or start rollouts through
the dashboard. Requests naming another host than the dashboard's own address, POSTs from
another origin, and POSTs that are not JSON are refused before the API is asked.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler
from importlib import resources
from typing import Any
from urllib.parse import quote, urlsplit

from orchestrator.local.loopback import LoopbackServer
from orchestrator.models import utcnow

from .upstream import Answer, Upstream, problem
from .views import rollout_page

MAX_BODY = 16 * 1024  # a reason is at most a few hundred characters
# Every audit event written moves its rollout's updated_at, so a poll that finds the same
# updated_at reuses the trail it read (a long rollout has thousands of events, each page
# polls every second); otherwise only the events after the last one kept are asked for.
# Asked again at least this often anyway, and kept for this many rollouts.
EVENTS_MAX_AGE = 10.0
EVENTS_KEPT = 16
_ID = r"r-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}"
_VIEW = re.compile(rf"^/view/rollouts/({_ID})$")
_ANY_VIEW = re.compile(r"^/view/rollouts/([^/]*)$")
_ID_EXAMPLE = "r-20261202T120000Z-1a2b3c4d"
_STEER = re.compile(rf"^/api/rollouts/({_ID})/(pause|resume|abort|promote)$")
_STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8"),
    "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
    "/favicon.svg": ("favicon.svg", "image/svg+xml"),
}
# The page runs only its own files: no inline script, no other origin, no framing.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)


def _length(header: str | None) -> int | None:
    """Content-Length as a size; None when it is not one (a negative or a word)."""
    if header is None or header.strip() == "":
        return 0
    return int(header) if re.fullmatch(r"\s*[0-9]+\s*", header) else None


def _static(name: str) -> bytes:
    return resources.files("orchestrator.dashboard").joinpath("static", name).read_bytes()


class DashboardServer(LoopbackServer):
    """``port`` 0 picks a free one; ``url`` says which it got."""

    def __init__(
        self, upstream: Upstream, *, port: int = 8082, events_max_age: float = EVENTS_MAX_AGE
    ) -> None:
        self.upstream = upstream
        self.events_max_age = events_max_age
        # rollout id -> (its updated_at, when read (monotonic), its audit items)
        self._trails: OrderedDict[str, tuple[object, float, list[Any]]] = OrderedDict()
        self._trails_lock = threading.Lock()
        self.files = {path: (_static(name), kind) for path, (name, kind) in _STATIC.items()}
        super().__init__(self._handler_class(), port)

    # -- what each path answers ----------------------------------------------------------------

    def get(self, path: str, query: str) -> Answer:
        if path in self.files:
            body, kind = self.files[path]
            return Answer(200, kind, body)
        if path == "/api/rollouts":
            return self.upstream.call("GET", "/rollouts" + (f"?{query}" if query else ""))
        if match := _VIEW.match(path):
            return self.view(match.group(1))
        if match := _ANY_VIEW.match(path):
            return problem(
                404,
                "not-found",
                f"no rollout {match.group(1)!r}: a rollout id looks like {_ID_EXAMPLE}",
            )
        return problem(404, "not-found", f"the dashboard has no page {path}")

    def view(self, rollout_id: str) -> Answer:
        rollout = self.upstream.call("GET", f"/rollouts/{quote(rollout_id)}")
        if rollout.status != 200:
            return rollout
        try:
            view = json.loads(rollout.body)
            items = self._trail(rollout_id, view.get("updated_at"))
            if isinstance(items, Answer):
                return items
            page = rollout_page(view, items, utcnow())
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return problem(
                502,
                "api-unreadable",
                f"the API answered something the dashboard cannot read: {exc}",
            )
        return Answer(200, "application/json", json.dumps(page).encode())

    def _trail(self, rollout_id: str, updated_at: object) -> list[Any] | Answer:
        """The rollout's audit items: the ones read before while it has not changed."""
        with self._trails_lock:
            kept = self._trails.get(rollout_id)
        if (
            kept is not None
            and updated_at is not None
            and kept[0] == updated_at
            and time.monotonic() - kept[1] < self.events_max_age
        ):
            return kept[2]
        # Events are only ever appended: ask for the ones after the last kept, page by page
        # (the API pages its trail, as Lambda answers at most 6 MB).
        items = list(kept[2]) if kept is not None else []
        while True:
            after = items[-1].get("seq", 0) if items and isinstance(items[-1], dict) else 0
            path = f"/rollouts/{quote(rollout_id)}/events?after={int(after)}"
            events = self.upstream.call("GET", path)
            if events.status != 200:
                return events
            page = json.loads(events.body)
            if not isinstance(page.get("items"), list):
                raise TypeError("events: items is not a list")
            items.extend(page["items"])
            last = items[-1].get("seq", 0) if items and isinstance(items[-1], dict) else 0
            if page.get("next_after") is None or not isinstance(last, int) or last <= after:
                break  # the end, or an answer that would not move on
        with self._trails_lock:
            self._trails[rollout_id] = (updated_at, time.monotonic(), items)
            self._trails.move_to_end(rollout_id)
            while len(self._trails) > EVENTS_KEPT:
                self._trails.popitem(last=False)
        return items

    def post(self, path: str, body: bytes, content_type: str) -> Answer:
        match = _STEER.match(path)
        if match is None:
            return problem(404, "not-found", f"the dashboard forwards no POST to {path}")
        rollout_id, verb = match.groups()
        # JSON only: an HTML form on another site can send text/plain or form bodies without
        # a CORS preflight, and this server signs with the user's credentials.
        if content_type.split(";")[0].strip().lower() != "application/json":
            return problem(
                415,
                "unsupported-media-type",
                f"Content-Type: must be application/json (got {content_type!r})",
            )
        return self.upstream.call(
            "POST", f"/rollouts/{quote(rollout_id)}/{verb}", body, {"Content-Type": content_type}
        )

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        dashboard = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                if refused := self._refusal():
                    self._answer(refused)
                    return
                parts = urlsplit(self.path)
                self._answer(dashboard.get(parts.path, parts.query))

            def do_POST(self) -> None:
                length = _length(self.headers.get("content-length"))
                refused = self._refusal(post=True)
                if refused is None and length is None:
                    refused = problem(
                        400, "bad-request", "Content-Length: must be a whole number of bytes"
                    )
                elif refused is None and length is not None and length > MAX_BODY:
                    refused = problem(413, "too-large", f"body over {MAX_BODY} bytes")
                if refused is not None:
                    self.close_connection = True  # the body is left unread
                    self._answer(refused)
                    return
                body = self.rfile.read(length or 0)
                kind = self.headers.get("content-type") or ""
                self._answer(dashboard.post(urlsplit(self.path).path, body, kind))

            def _refusal(self, *, post: bool = False) -> Answer | None:
                # Only this address may be asked: a site whose name someone re-pointed at
                # 127.0.0.1 (DNS rebinding) would otherwise reach the API with the user's
                # credentials. And another site open in the same browser must not steer
                # rollouts through this port: browsers send Origin on cross-site POSTs.
                host = self.headers.get("host") or ""
                if host not in (f"127.0.0.1:{dashboard.port}", f"localhost:{dashboard.port}"):
                    return problem(403, "forbidden", f"the dashboard answers no host {host!r}")
                origin = self.headers.get("origin")
                if post and origin is not None and origin != f"http://{host}":
                    return problem(403, "forbidden", "cross-origin requests are refused")
                # Where Origin was stripped, the fetch metadata still says where it came from.
                site = self.headers.get("sec-fetch-site")
                if post and site not in (None, "same-origin", "none"):
                    return problem(403, "forbidden", "cross-origin requests are refused")
                return None

            def _answer(self, answer: Answer) -> None:
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type or "application/octet-stream")
                self.send_header("Content-Length", str(len(answer.body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header("Content-Security-Policy", _CSP)
                self.send_header("X-Content-Type-Options", "nosniff")
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler
