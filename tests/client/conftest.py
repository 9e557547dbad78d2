"""Fixtures for the client tests.

`fake` is the in-process fake for unit tests; `podium_server` (the api branch's
integration fixture, reused as is) is a real `podium server` subprocess for the
end-to-end tests.
"""

from __future__ import annotations

import pytest
import trio

from tests.client.fake_server import FakeConductor
from tests.integration.conftest import PodiumServer, podium_server

__all__ = ["PodiumServer", "podium_server"]


@pytest.fixture
async def fake(nursery: trio.Nursery) -> FakeConductor:
    server = FakeConductor()
    await nursery.start(server.serve)
    return server
