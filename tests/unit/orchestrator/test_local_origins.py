"""The demo origin serves the release a request's path names and fails requests at the
rate of the variant the edge chose, so any vN rollout of the local stack is served."""

from __future__ import annotations

import http.client

import pytest

from orchestrator.local.origins import VARIANT_HEADER, DemoOrigin


def _get(origin: DemoOrigin, path: str, variant: str | None = None) -> tuple[int, str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", origin.port, timeout=5)
    try:
        connection.request("GET", path, headers={VARIANT_HEADER: variant} if variant else {})
        response = connection.getresponse()
        return response.status, response.getheader("x-release") or "", response.read().decode()
    finally:
        connection.close()


def test_the_release_is_the_one_the_path_names() -> None:
    """GIVEN an origin started as v1 WHEN asked for /releases/v3/app.js THEN release v3
    (the v2 -> v3 rollout after a promotion); other paths get the origin's own."""
    origin = DemoOrigin("v1", 0.0).start()
    try:
        assert _get(origin, "/releases/v3/app.js") == (
            200,
            "v3",
            "release v3: /releases/v3/app.js\n",
        )
        assert _get(origin, "/app.js")[1] == "v1"
    finally:
        origin.stop()


def test_the_canary_variant_fails_at_its_rate_whatever_its_release() -> None:
    """GIVEN variant_errors canary=1.0 WHEN the canary and stable variants are asked THEN
    every canary request fails and no stable one does."""
    origin = DemoOrigin("v1", 0.0, variant_errors={"canary": 1.0}).start()
    try:
        canary = [_get(origin, "/releases/v3/app.js", "canary")[0] for _ in range(20)]
        stable = [_get(origin, "/releases/v2/app.js", "stable")[0] for _ in range(20)]
    finally:
        origin.stop()
    assert set(canary) == {500}
    assert set(stable) == {200}


def test_a_variant_rate_outside_0_to_1_is_refused() -> None:
    """GIVEN a canary rate of 1.5 WHEN the origin is made THEN ValueError naming it."""
    with pytest.raises(ValueError, match=r"canary must be within 0\.\.1"):
        DemoOrigin("v1", 0.0, variant_errors={"canary": 1.5})
