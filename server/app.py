"""The Podium server: store + engine + HTTP API, with graceful shutdown.

Rules (hypercorn's and trio's style):
- `serve` owns every task through nurseries: the engine's background work (sweeper,
  system tasks, delayed wake-ups) in one, the HTTP server in another inside it.
- It reports the HttpServer handle through `task_status` once the port accepts.
- Shutdown (SIGINT/SIGTERM when `handle_signals`, or `ServerHandle.shutdown()`): stop
  accepting, let in-flight requests finish (up to `graceful_timeout`), then stop the
  engine and close the store. Every engine write is one atomic commit, so stopping
  between requests leaves nothing half-written; the store is closed shielded from
  cancellation so its last writes land.
"""

from __future__ import annotations

import logging
import signal
from functools import partial

import trio

import hotpath
from core import __version__
from server.api import ApiContext, ApiMetrics, build_router
from server.collector import tune_for_serving
from server.config import ServerConfig, redacted_url
from server.engine import Engine
from server.http import HttpConfig, HttpServer, serve_http
from server.samples_loader import register_samples
from server.stores import open_store

log = logging.getLogger("podium.server")


async def _stop_on_signal(server: HttpServer) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("%s received: shutting down gracefully", signal.Signals(signum).name)
            server.shutdown()
            return


async def serve(
    config: ServerConfig,
    *,
    task_status: trio.TaskStatus[HttpServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the server until it is shut down.

    Args:
        config: where to listen, which store, whether to load samples.
        task_status: receives the HttpServer handle (port, `shutdown()`) once listening.

    Raises:
        OSError: the address cannot be bound.
        core.errors.BadRequest: the store URL is not understood.
    """
    store = open_store(config.store_url)
    await store.open()
    try:
        engine = Engine(store, config=config.engine)
        ctx = ApiContext(
            engine=engine,
            metrics=ApiMetrics(),
            version=__version__,
            store_url=redacted_url(config.store_url),
        )
        router = build_router(ctx)
        http_config = HttpConfig(graceful_timeout=config.graceful_timeout)
        async with trio.open_nursery() as background:
            await background.start(engine.run)
            if config.samples:
                await register_samples(engine)
            async with trio.open_nursery() as front:

                async def run_http(*, task_status: trio.TaskStatus[HttpServer]) -> None:
                    await serve_http(
                        router,
                        config.host,
                        config.port,
                        config=http_config,
                        task_status=task_status,
                    )
                    front.cancel_scope.cancel()  # the signal watcher is no longer needed

                server: HttpServer = await front.start(run_http)
                if config.handle_signals:
                    front.start_soon(_stop_on_signal, server)
                log.info(
                    "podium %s listening on http://%s:%d (store %s, hotpath %s)",
                    __version__,
                    config.host,
                    server.port,
                    ctx.store_url,
                    hotpath.IMPLEMENTATION,
                )
                task_status.started(server)
            background.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            await store.close()
        log.info("podium stopped; store closed")


def run(config: ServerConfig) -> None:
    """Blocking entry point (the CLI): serve until SIGINT/SIGTERM."""
    tune_for_serving()
    trio.run(partial(serve, config))
