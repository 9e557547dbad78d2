"""Store contract, queues against a reference model: random operation sequences (hypothesis).

Rules: every backend runs the same random sequences of push / pop / ack / remove / postpone
and clock advances, and must answer exactly like the tiny model below, which restates the
rules of core/store.py (order: deliver time, then higher priority, then insertion; a pop
hides a message for unack_ms; a push or postpone of an existing id re-inserts it). Each
example uses fresh queue names, so one store per test serves every example.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.store import Store
from tests.server.contract_support import T0
from tests.server.store_backends import BACKENDS, backend_params


@pytest.fixture(params=backend_params())
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@dataclass
class QueueModel:
    """(deliver_at, -priority, seq) per id: the whole contract of one queue."""

    messages: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    seq: itertools.count[int] = field(default_factory=itertools.count)

    def push(self, message_id: str, priority: int, at: int) -> None:
        self.messages[message_id] = (at, -priority, next(self.seq))

    def pop(self, count: int, now: int, unack_ms: int) -> list[str]:
        visible = sorted((key, mid) for mid, key in self.messages.items() if key[0] <= now)[:count]
        for (_, neg_priority, seq), mid in visible:
            self.messages[mid] = (now + unack_ms, neg_priority, seq)
        return [mid for _, mid in visible]

    def delete(self, message_id: str) -> bool:
        return self.messages.pop(message_id, None) is not None

    def order(self) -> list[str]:
        return [mid for _, mid in sorted((k, m) for m, k in self.messages.items())]


ids = st.sampled_from([f"m{i}" for i in range(6)])
operations = st.lists(
    st.one_of(
        st.tuples(st.just("push"), ids, st.integers(0, 3), st.sampled_from([0, 0, 500, 3000])),
        st.tuples(st.just("pop"), st.integers(1, 4), st.sampled_from([0, 0, 1000, 2000])),
        st.tuples(st.just("ack"), ids),
        st.tuples(st.just("remove"), ids),
        st.tuples(st.just("postpone"), ids, st.integers(0, 3), st.sampled_from([0, 700])),
        st.tuples(st.just("advance"), st.sampled_from([1, 499, 500, 1000, 2500])),
    ),
    max_size=30,
)
_examples = itertools.count()


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(ops=operations)
def test_queue_matches_the_reference_model(
    request: pytest.FixtureRequest, backend: str, ops: list[tuple[object, ...]]
) -> None:
    async def run() -> None:
        async with BACKENDS[backend].open(request) as store:
            await check_against_model(store, ops)

    trio.run(run)


async def check_against_model(store: Store, ops: list[tuple[object, ...]]) -> None:
    queue = f"model-{next(_examples)}"
    model = QueueModel()
    now = T0
    for op in ops:
        kind = op[0]
        if kind == "push":
            _, mid, priority, delay = op
            assert isinstance(priority, int)
            assert isinstance(delay, int)
            await store.push(queue, str(mid), priority=priority, delay_ms=delay, now_ms=now)
            model.push(str(mid), priority, now + delay)
        elif kind == "postpone":
            _, mid, priority, delay = op
            assert isinstance(priority, int)
            assert isinstance(delay, int)
            await store.postpone(queue, str(mid), delay_ms=delay, priority=priority, now_ms=now)
            model.push(str(mid), priority, now + delay)
        elif kind == "pop":
            _, count, unack = op
            assert isinstance(count, int)
            assert isinstance(unack, int)
            got = await store.pop(queue, count, unack_ms=unack, now_ms=now)
            assert got == model.pop(count, now, unack), ops
        elif kind in ("ack", "remove"):
            mid = str(op[1])
            done = await (store.ack(queue, mid) if kind == "ack" else store.remove(queue, mid))
            assert done == model.delete(mid), ops
        else:
            step = op[1]
            assert isinstance(step, int)
            now += step
    assert await store.size(queue) == len(model.messages)
    assert await store.peek(queue, 10) == model.order()
    for mid in (f"m{i}" for i in range(6)):
        assert await store.contains(queue, mid) == (mid in model.messages)
