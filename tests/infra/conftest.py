"""One synthesis of the whole app per test session: it takes seconds, the assertions do not."""

from __future__ import annotations

import pytest

from .cfn import Synthesized, synthesize, vendored_layer_built


@pytest.fixture(scope="session", autouse=True)
def vendored_layer() -> None:
    """Infra tests that build an app of their own find the layer's zip already made."""
    vendored_layer_built()


@pytest.fixture(scope="session")
def synthesized() -> Synthesized:
    return synthesize()
