"""Pipelined calls for RedisStore: concurrent callers share one connection and round trip.

Rules:
- One drainer task per store (a trio system task, started by `start()` and cancelled by
  `close()`) owns the connection (server.stores.redis_wire). Callers queue a request (plain
  commands, or calls of a named Lua script) and wait; while a round trip is on the wire,
  requests that arrive wait in `pending`, and the next round trip carries all of them (up to
  `max_batch` slots) in submission order. A lone request goes out at once, so batching never
  adds latency.
- Each slot is its own command or EVALSHA, atomic on its own; Redis runs a pipeline's slots
  in order, so batching changes nothing about their outcome, only the number of round trips.
  A caller whose earlier call returned is in a later round trip, so it reads what that call
  wrote. Replies are values: an error reply fails its slot only.
- A script slot answered NOSCRIPT (the server restarted or ran SCRIPT FLUSH) never ran: the
  script is loaded again and that slot retried once.
- A caller cancelled before its request leaves is withdrawn; once sent, the outcome stands
  (the caller just does not hear it). A failed connection fails every request of that round
  trip with core.errors.Unavailable; the next round trip reconnects.
- Single-threaded (trio): no locks. Used only from the trio run that started it (another
  run's request is refused with InternalError rather than left waiting for ever).
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import trio
from redis.exceptions import NoScriptError

from core.errors import InternalError, Unavailable
from server.stores.redis_wire import RedisWire, pack

# (script name, argv after the key count) or (None, command argv), one per slot.
Slot = tuple[str | None, tuple[Any, ...] | list[Any]]


@dataclass(slots=True, eq=False)
class _Request:
    slots: list[Slot]
    packed: list[bytes]
    done: trio.Event = field(default_factory=trio.Event)
    sent: bool = False
    replies: list[Any] | None = None
    error: BaseException | None = None

    async def replies_when_done(self, owner: ScriptPipeliner) -> list[Any]:
        """Wait for the round trip; withdraw the request if cancelled before it left."""
        try:
            await self.done.wait()
        except trio.Cancelled:
            owner.withdraw(self)
            raise
        if self.error is not None:
            raise self.error
        assert self.replies is not None
        return self.replies


class ScriptPipeliner:
    """Coalesces the commands and script calls of concurrent callers into round trips."""

    def __init__(self, wire: RedisWire, scripts: dict[str, str], *, max_batch: int = 256) -> None:
        self.wire = wire
        self._sources = scripts
        # The server computes a script's SHA1 the same way, so no load is needed up front.
        self.sha = {name: hashlib.sha1(src.encode()).hexdigest() for name, src in scripts.items()}
        self.max_batch = max_batch
        self._pending: deque[_Request] = deque()
        self._wakeup = trio.Event()
        self._scope: trio.CancelScope | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._closed = False
        self.round_trips = 0
        self.script_calls = 0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Start the drainer task in the current trio run."""
        if self._scope is not None:
            raise InternalError("ScriptPipeliner.start: already started")
        self._scope = trio.CancelScope()
        self._token = trio.lowlevel.current_trio_token()
        trio.lowlevel.spawn_system_task(self._drain_forever, name="podium-redis-pipeliner")

    async def close(self) -> None:
        """Stop the drainer, fail what is still queued, close the connection."""
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()
        while self._pending:
            self._finish(self._pending.popleft(), error=Unavailable("the Redis store is closed"))
        await self.wire.close()

    # -- calls ----------------------------------------------------------------------------

    async def run(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Run the commands (not as a transaction); replies in order (errors as values)."""
        if not commands:
            return []
        return await self.queue([(None, c) for c in commands]).replies_when_done(self)

    async def call(self, script: str, arg_lists: list[list[Any]]) -> list[Any]:
        """Run the named script once per argument list; replies in order (errors as values)."""
        if not arg_lists:
            return []
        return await self.queue([(script, a) for a in arg_lists]).replies_when_done(self)

    def queue(self, slots: list[Slot]) -> _Request:
        """Queue a request now (its place in submission order is fixed by this call)."""
        if self._closed or self._scope is None:
            raise Unavailable("the Redis store is closed")
        if trio.lowlevel.current_trio_token() is not self._token:
            # Its drainer lives in the run that opened it: a request from here would wait
            # for ever.
            raise InternalError("the Redis store was opened in another trio run: open one per run")
        # Packed here, by the caller: an argument that cannot be sent fails this call only.
        request = _Request(slots, [self._pack(slot) for slot in slots])
        self._pending.append(request)
        self._wakeup.set()
        return request

    def _pack(self, slot: Slot) -> bytes:
        script, args = slot
        if script is None:
            return pack(tuple(args))
        sha = self.sha.get(script)
        if sha is None:
            raise InternalError(f"ScriptPipeliner: no script named {script!r}")
        return pack(("EVALSHA", sha, 0, *args))

    def withdraw(self, request: _Request) -> None:
        if not request.sent and request in self._pending:
            self._pending.remove(request)

    # -- the drainer ----------------------------------------------------------------------

    async def _drain_forever(self) -> None:
        assert self._scope is not None
        with self._scope:
            while True:
                if not self._pending:
                    self._wakeup = trio.Event()
                    await self._wakeup.wait()
                    continue
                batch: list[_Request] = []
                size = 0
                while self._pending and (not batch or size < self.max_batch):
                    request = self._pending.popleft()
                    request.sent = True
                    batch.append(request)
                    size += len(request.slots)
                try:
                    replies = await self._send(batch)
                except trio.Cancelled:
                    for request in batch:
                        self._finish(request, error=Unavailable("the Redis store is closed"))
                    raise
                except Exception as exc:  # a system task must not raise: hand it over
                    for request in batch:
                        self._finish(request, error=exc)
                    continue
                start = 0
                for request in batch:
                    end = start + len(request.slots)
                    self._finish(request, replies=replies[start:end])
                    start = end

    @staticmethod
    def _finish(
        request: _Request, *, replies: list[Any] | None = None, error: BaseException | None = None
    ) -> None:
        request.replies, request.error = replies, error
        request.done.set()

    async def _send(self, batch: list[_Request]) -> list[Any]:
        slots = [slot for r in batch for slot in r.slots]
        packed = [p for r in batch for p in r.packed]
        self.script_calls += sum(1 for script, _args in slots if script is not None)
        replies = await self.wire.roundtrip_packed(b"".join(packed), len(packed))
        self.round_trips += 1
        retry = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if not retry:
            return replies
        # Those slots never ran: load the scripts again, then run just them once more.
        lost = sorted({name for i in retry if (name := slots[i][0]) is not None})
        loaded = await self.wire.roundtrip([("SCRIPT", "LOAD", self._sources[n]) for n in lost])
        self.round_trips += 1
        for name, sha in zip(lost, loaded, strict=True):
            if isinstance(sha, Exception):
                raise sha
            self.sha[name] = sha.decode()
        again = [self._pack(slots[i]) for i in retry]
        self.script_calls += sum(1 for i in retry if slots[i][0] is not None)
        retried = await self.wire.roundtrip_packed(b"".join(again), len(again))
        self.round_trips += 1
        for i, reply in zip(retry, retried, strict=True):
            replies[i] = reply
        return replies
