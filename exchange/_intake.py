"""Pure bookkeeping of the provider's intake: which offsets may be committed, which inquiries
were already taken.

The provider handles records concurrently, so they finish out of order; Kafka commits one
offset per partition meaning "everything before this is done". :class:`OffsetTracker` keeps the
offsets started and finished per partition and answers the highest offset that is safe to
commit (every record below it finished: at-least-once, never a gap). :class:`SeenInquiries`
remembers the inquiry ids taken recently (bounded LRU) so a redelivered record does not reach
the handler a second time.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from typing import Generic, TypeVar

P = TypeVar("P")


class _Partition:
    __slots__ = ("done", "next_commit", "started")

    def __init__(self) -> None:
        self.started: list[int] = []  # min-heap of offsets in progress
        self.done: set[int] = set()  # finished, but a lower offset is still in progress
        self.next_commit: int | None = None  # offset to commit (one past the last done)


class OffsetTracker(Generic[P]):
    """Offsets started / finished per partition ``P``; tells what may be committed."""

    def __init__(self) -> None:
        self._parts: dict[P, _Partition] = {}
        self._dirty: set[P] = set()

    def start(self, partition: P, offset: int) -> None:
        """A record at ``offset`` was taken for handling."""
        state = self._parts.get(partition)
        if state is None:
            state = self._parts[partition] = _Partition()
        heapq.heappush(state.started, offset)

    def finish(self, partition: P, offset: int) -> None:
        """The record at ``offset`` is fully handled (its response acknowledged)."""
        state = self._parts.get(partition)
        if state is None:  # partition was revoked meanwhile: nothing to commit here
            return
        state.done.add(offset)
        while state.started and state.started[0] in state.done:
            low = heapq.heappop(state.started)
            state.done.discard(low)
            state.next_commit = low + 1
            self._dirty.add(partition)

    def committable(self) -> dict[P, int]:
        """Offsets to commit now (only partitions that moved since the last call)."""
        ready = {p: n for p in self._dirty if (n := self._parts[p].next_commit) is not None}
        self._dirty.clear()
        return ready

    def in_progress(self) -> int:
        """Records started and not finished, over every partition."""
        return sum(len(s.started) for s in self._parts.values())

    def drop(self, partition: P) -> None:
        """The partition was revoked: forget it (its records will be redelivered elsewhere)."""
        self._parts.pop(partition, None)
        self._dirty.discard(partition)


class SeenInquiries:
    """The last ``capacity`` inquiry ids taken by this process (least recently seen evicted)."""

    def __init__(self, capacity: int = 100_000) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, inquiry_id: str) -> bool:
        return inquiry_id in self._ids

    def claim(self, inquiry_id: str) -> bool:
        """Record the id; True the first time it is seen, False for a repeat."""
        if inquiry_id in self._ids:
            self._ids.move_to_end(inquiry_id)
            return False
        self._ids[inquiry_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True

    def release(self, inquiry_id: str) -> None:
        """Forget an id whose handling did not complete, so a redelivery is handled again."""
        self._ids.pop(inquiry_id, None)
