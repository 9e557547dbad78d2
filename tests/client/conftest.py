"""Fixtures for the client tests: the in-process fake (unit tests only)."""

from __future__ import annotations

import pytest
import trio

from tests.client.fake_server import FakeConductor


@pytest.fixture
async def fake(nursery: trio.Nursery) -> FakeConductor:
    server = FakeConductor()
    await nursery.start(server.serve)
    return server
