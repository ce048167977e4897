"""What ``rollout local up`` serves beside the local stack: the demo route, one release
origin for both variants, the CloudFront emulator, the REST API and simulated viewers.

The origin serves the release each request's path names and fails requests at the rate of
the variant the edge chose, so every rollout of the demo host works the same way: v1 to v2,
then v2 to v3 after a promotion, with ``--canary-error-rate`` for whichever release is the
canary. Nothing outlives the process: the next ``rollout local up`` starts from v1 again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .cloudfront import CloudFrontEmulator
from .demo import demo_route
from .origins import DemoOrigin
from .stack import LocalStack

DEMO_HOST = "demo.edgeshift.test"
STABLE_ERROR_RATE = 0.005
# examples/plan.yaml's 20-second bakes need this much: at 100 a second preflight forecasts
# that a healthy canary cannot pass its 10% stage in time, and ends the rollout.
VIEWERS_PER_SECOND = 300


@dataclass
class DemoSite:
    stack: LocalStack
    cdn_port: int = 0
    api_port: int = 0
    canary_error_rate: float = STABLE_ERROR_RATE
    traffic: bool = True
    traffic_seconds: float = 24 * 3600
    host: str = DEMO_HOST
    edge_url: str = ""
    api_url: str = ""
    _servers: list[Any] = field(default_factory=list)

    def start(self) -> DemoSite:
        from .apigw import LocalApi
        from .traffic import TrafficGenerator

        try:
            origin = DemoOrigin(
                "v1", STABLE_ERROR_RATE, seed=1, variant_errors={"canary": self.canary_error_rate}
            ).start()
            self._servers.append(origin)
            edge = CloudFrontEmulator(default_origin_port=origin.port, port=self.cdn_port)
            self._servers.append(edge.start())
            self.edge_url = edge.url
            api = LocalApi(port=self.api_port).start()
            self._servers.append(api)
            self.api_url = api.url
            route = demo_route(self.host, origin.port, origin.port)
            self.stack.store().put_route(route, expected_revision=None)
            if self.traffic:
                viewers = TrafficGenerator(
                    edge.port,
                    self.host,
                    self.stack.client("cloudwatch"),
                    rate=VIEWERS_PER_SECOND,
                    max_seconds=self.traffic_seconds,
                    # Viewers for as long as asked, not the generator's default budget
                    # (ten minutes at this rate), so a rollout an hour in still has traffic.
                    max_requests=int(VIEWERS_PER_SECOND * self.traffic_seconds) + 1,
                )
                self._servers.insert(0, viewers.start())
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        while self._servers:
            self._servers.pop(0).stop()

    def __enter__(self) -> DemoSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
