"""In-process delayed-delivery priority queue with visibility timeouts (used by MemoryStore).

Rules:
- One message per id. Its key is (deliver_at, -priority, seq): pop order is earliest
  delivery first, then higher priority, then insertion order (seq grows on every push).
- A pop does not remove: it moves the message's deliver_at to now + unack_ms, so an
  unacknowledged message becomes visible again by itself. ack/remove delete it.
- The heap is lazy: replaced or deleted entries stay in the heap and are skipped when they
  surface (the id's live entry is compared by identity), so every operation is O(log n).
"""

from __future__ import annotations

import heapq
import itertools

# (deliver_at, -priority, seq, message_id)
Entry = tuple[int, int, int, str]


class DelayQueue:
    """One named queue."""

    def __init__(self, seq: itertools.count[int]) -> None:
        self._seq = seq  # shared by all queues of a store: insertion order is global
        self._heap: list[Entry] = []
        self._live: dict[str, Entry] = {}

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, message_id: str) -> bool:
        return message_id in self._live

    def _put(self, entry: Entry) -> None:
        self._live[entry[3]] = entry
        heapq.heappush(self._heap, entry)
        # Bound the garbage: rebuild when stale entries outnumber live ones.
        if len(self._heap) > 64 and len(self._heap) > 2 * len(self._live):
            self._heap = list(self._live.values())
            heapq.heapify(self._heap)

    def push(self, message_id: str, priority: int, deliver_at: int) -> None:
        """Add, or replace the id's delivery time and priority (it queues as new)."""
        self._put((deliver_at, -priority, next(self._seq), message_id))

    def pop(self, count: int, now_ms: int, unack_ms: int) -> list[str]:
        """Up to `count` ids visible at `now_ms`, each hidden until now_ms + unack_ms."""
        out: list[Entry] = []
        heap, live = self._heap, self._live
        while heap and len(out) < count:
            entry = heap[0]
            if live.get(entry[3]) is not entry:
                heapq.heappop(heap)
                continue
            if entry[0] > now_ms:
                break
            heapq.heappop(heap)
            out.append(entry)
        for _, neg_priority, seq, message_id in out:
            self._put((now_ms + unack_ms, neg_priority, seq, message_id))
        return [e[3] for e in out]

    def delete(self, message_id: str) -> bool:
        return self._live.pop(message_id, None) is not None

    def peek(self, count: int) -> list[str]:
        return [e[3] for e in heapq.nsmallest(count, self._live.values())]
