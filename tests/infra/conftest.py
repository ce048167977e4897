"""One synthesis of the whole app per test session: it takes seconds, the assertions do not."""

from __future__ import annotations

import pytest

from .cfn import Synthesized, synthesize


@pytest.fixture(scope="session")
def synthesized() -> Synthesized:
    return synthesize()
