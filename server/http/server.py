"""The HTTP server: listeners, one task per connection, timeouts, graceful shutdown.

Rules (hypercorn's and trio's style): `serve_http` owns every task it starts through
nurseries (accept loops, connections, the timeout reaper), reports a `HttpServer` handle
through `task_status` once it is listening, and returns after a graceful shutdown:
stop accepting, close idle connections, let in-flight requests finish (their responses
say `connection: close`) until `graceful_timeout`, then cancel what is left. Cancelling
the task that runs `serve_http` stops everything at once instead.
"""

from __future__ import annotations

from functools import partial

import trio

from server.http.config import HttpConfig
from server.http.connection import HttpConnection
from server.http.metrics import HttpMetrics
from server.http.peer_watch import PeerWatcher
from server.http.router import Router


class ConnectionTracker:
    """The live connections: enforces their deadlines and tells them about shutdown."""

    def __init__(self, config: HttpConfig, metrics: HttpMetrics | None = None) -> None:
        self._config = config
        self._metrics = metrics
        self._connections: set[HttpConnection] = set()
        self.peers = PeerWatcher()  # long-polling sockets, watched for disconnects
        self.shutting_down = False
        if metrics is not None:
            metrics.connections.set_function(self.__len__)

    def __len__(self) -> int:
        return len(self._connections)

    async def serve(self, stream: trio.abc.HalfCloseableStream, router: Router) -> None:
        """Serve one accepted stream until it closes (a `serve_listeners` handler)."""
        connection = HttpConnection(stream, router, self._config, self, self._metrics)
        if self.shutting_down:
            connection.closing = True
        self._connections.add(connection)
        try:
            await connection.run()
        finally:
            self._connections.discard(connection)

    async def reap(self) -> None:
        """Forever: expire connections whose socket deadline has passed.

        One sweep a second is cheaper than a cancel scope per socket operation; it makes
        every timeout up to `reaper_interval` late, which does not matter at 30-75 s.
        """
        while True:
            await trio.sleep(self._config.reaper_interval)
            now = trio.current_time()
            for connection in self._connections:
                if connection.deadline <= now:
                    connection.expire()

    def begin_shutdown(self) -> None:
        """Close idle connections now; the busy ones close after their current response."""
        self.shutting_down = True
        for connection in self._connections:
            connection.begin_shutdown()


class HttpServer:
    """What `serve_http` hands to `task_status.started`: addresses and a shutdown switch."""

    def __init__(self, listeners: list[trio.SocketListener], tracker: ConnectionTracker) -> None:
        self.listeners = listeners
        self.tracker = tracker
        self._shutdown = trio.Event()

    @property
    def port(self) -> int:
        """The port of the first listener (useful when serving on port 0)."""
        address = self.listeners[0].socket.getsockname()
        port: int = address[1]
        return port

    def shutdown(self) -> None:
        """Ask for a graceful shutdown; `serve_http` returns once it is complete."""
        self._shutdown.set()


async def serve_http(
    router: Router,
    host: str | None,
    port: int,
    *,
    config: HttpConfig | None = None,
    metrics: HttpMetrics | None = None,
    task_status: trio.TaskStatus[HttpServer] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `router` over HTTP/1.1 on `host:port` until shut down.

    Args:
        router: the route table.
        host: the address to bind (`None` for every interface).
        port: the TCP port (0 picks a free one; read it from the handle).
        config: limits and timeouts; the defaults suit the official SDK.
        metrics: if given, every response is counted and timed there.
        task_status: receives the HttpServer handle once the listeners accept.

    Raises:
        OSError: the address cannot be bound.
    """
    config = config or HttpConfig()
    listeners = await trio.open_tcp_listeners(port, host=host, backlog=config.backlog)
    tracker = ConnectionTracker(config, metrics)
    server = HttpServer(listeners, tracker)
    handler = partial(tracker.serve, router=router)
    async with trio.open_nursery() as outer:
        outer.start_soon(tracker.reap)
        outer.start_soon(tracker.peers.run)
        async with trio.open_nursery() as connections:
            async with trio.open_nursery() as accepting:
                await accepting.start(
                    partial(trio.serve_listeners, handler, listeners, handler_nursery=connections)
                )
                task_status.started(server)
                await server._shutdown.wait()
                accepting.cancel_scope.cancel()  # closes the listeners: no new connections
            tracker.begin_shutdown()
            connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        outer.cancel_scope.cancel()
