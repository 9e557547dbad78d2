"""Watching long-polling connections for their client going away, all in one task.

Rules:
- A connection whose handler may wait (a `long_poll` route) registers its socket with
  the server's PeerWatcher for as long as the handler runs, and unregisters it before
  writing the response. The watcher owns a private epoll set (level-triggered, EPOLLIN
  and EPOLLRDHUP) and waits for it to become readable in one trio task; for each ready
  socket it calls the connection's callback, which reads what arrived without blocking.
  Registering costs one epoll_ctl call, where a watching task per request cost a
  nursery, a task spawn and a cancellation.
- Callbacks run on the trio thread inside the watcher task: they must not block, and a
  callback that raises is logged and its socket unregistered (the handler then runs
  unwatched, as it would have with the watching task gone).
- `open` only while `run` runs (a tracker nobody runs the watcher for falls back to a
  reading task per request); the epoll set is closed when `run` ends.
"""

from __future__ import annotations

import contextlib
import logging
import select
from collections.abc import Callable

import trio

log = logging.getLogger("podium.http")

_EVENTS = select.EPOLLIN | select.EPOLLRDHUP


class PeerWatcher:
    """One epoll set of sockets whose readability is reported to callbacks."""

    def __init__(self) -> None:
        self._epoll: select.epoll | None = select.epoll()
        self._callbacks: dict[int, Callable[[], None]] = {}
        self._running = False

    @property
    def open(self) -> bool:
        """Watching: `run` is running."""
        return self._running

    def watch(self, fd: int, on_readable: Callable[[], None]) -> bool:
        """Call `on_readable()` whenever `fd` has data or EOF; False if not watching."""
        epoll = self._epoll
        if epoll is None or not self._running or fd in self._callbacks:
            return False
        try:
            epoll.register(fd, _EVENTS)
        except OSError:
            return False
        self._callbacks[fd] = on_readable
        return True

    def unwatch(self, fd: int) -> None:
        if self._callbacks.pop(fd, None) is None or self._epoll is None:
            return
        with contextlib.suppress(OSError):  # closed already: the kernel dropped it
            self._epoll.unregister(fd)

    def __len__(self) -> int:
        return len(self._callbacks)

    async def run(self) -> None:
        """Report readable sockets until cancelled; then close the epoll set."""
        epoll = self._epoll
        assert epoll is not None
        self._running = True
        try:
            while True:
                await trio.lowlevel.wait_readable(epoll.fileno())
                for fd, _ in epoll.poll(0):
                    callback = self._callbacks.get(fd)
                    if callback is None:
                        continue
                    try:
                        callback()
                    except Exception:
                        log.exception("peer watch callback failed")
                        self.unwatch(fd)
        finally:
            self._running = False
            self._epoll = None
            self._callbacks.clear()
            epoll.close()
