"""server.app.serve in process: serves the API on a free port over a memory store and
shuts down gracefully through its handle (store closed, serve returns)."""

from __future__ import annotations

import httpx
import trio

from server.app import serve
from server.config import ServerConfig, redacted_url
from server.http import HttpServer


async def test_serve_and_shutdown() -> None:
    config = ServerConfig(port=0, store_url="memory://", graceful_timeout=2.0)
    # The whole run, graceful shutdown included, must end well within this.
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            server: HttpServer = await nursery.start(serve, config)
            base = f"http://127.0.0.1:{server.port}"
            async with httpx.AsyncClient(base_url=base) as client:
                assert (await client.get("/health")).json()["healthy"] is True
                resp = await client.post("/api/metadata/taskdefs", json=[{"name": "app_task"}])
                assert resp.status_code == 200
                names = [t["name"] for t in (await client.get("/api/metadata/taskdefs")).json()]
                assert names == ["app_task"]
            server.shutdown()
    # The nursery exited: serve returned after closing the store.


def test_cli_default_store_matches_config() -> None:
    from server.cli_server import DEFAULT_STORE_URL

    assert ServerConfig().store_url == DEFAULT_STORE_URL
    assert ServerConfig().host == "127.0.0.1"


def test_redacted_url() -> None:
    assert redacted_url("postgresql://u:secret@db:5432/x") == "postgresql://u:***@db:5432/x"
    assert redacted_url("sqlite:///./a.db") == "sqlite:///./a.db"
    assert redacted_url("redis://:pw@h/0") == "redis://:***@h/0"
