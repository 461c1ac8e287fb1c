"""Timer structures of the correlator: which keys fall due by a given wall-clock time.

:class:`DeadlineIndex` holds the deadline of every pending inquiry; ``due(now_ms)`` finds the
inquiries to time out, and settling an inquiry cancels its deadline. :class:`ExpiryQueue` holds
when each settled inquiry settled, to forget it once its retention has passed.

It is a binary heap of ``(at_ms, key)`` with *lazy deletion*: moving or cancelling a key only
updates the ``_live`` map, and stale heap entries are skipped when they surface. ``schedule``
and ``cancel`` cost O(log n) and O(1); ``due`` costs O(log n) per entry popped. When stale
entries outnumber live ones the heap is rebuilt, so memory stays proportional to the live
keys even under heavy cancelling (every answered inquiry cancels its deadline).
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable

__all__ = ["DeadlineIndex", "ExpiryQueue"]

# Rebuild only past this size: below it, stale entries cost less than the rebuild.
_MIN_COMPACT = 1024


class DeadlineIndex:
    """Keys with one due time each (milliseconds since the epoch); pure, no clock of its own."""

    __slots__ = ("_heap", "_live")

    def __init__(self) -> None:
        self._heap: list[tuple[int, str]] = []
        self._live: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, key: object) -> bool:
        return key in self._live

    def at(self, key: str) -> int | None:
        """The time *key* is due, or None when it is not scheduled."""
        return self._live.get(key)

    def schedule(self, key: str, at_ms: int) -> None:
        """Make *key* due at *at_ms*, replacing any earlier schedule for it."""
        if self._live.get(key) == at_ms:
            return
        self._live[key] = at_ms
        heapq.heappush(self._heap, (at_ms, key))
        self._maybe_compact()

    def cancel(self, key: str) -> None:
        """Forget *key*; cancelling an unknown key is a no-op."""
        if self._live.pop(key, None) is not None:
            self._maybe_compact()

    def next_at(self) -> int | None:
        """The earliest due time, or None when nothing is scheduled (to size a sleep)."""
        heap, live = self._heap, self._live
        while heap:
            at_ms, key = heap[0]
            if live.get(key) == at_ms:
                return at_ms
            heapq.heappop(heap)
        return None

    def due(self, now_ms: int) -> list[str]:
        """Remove and return every key due at or before *now_ms*, earliest first."""
        heap, live = self._heap, self._live
        fired: list[str] = []
        while heap and heap[0][0] <= now_ms:
            at_ms, key = heapq.heappop(heap)
            if live.get(key) == at_ms:
                del live[key]
                fired.append(key)
        return fired

    def _maybe_compact(self) -> None:
        heap = self._heap
        if len(heap) > _MIN_COMPACT and len(heap) > 2 * len(self._live):
            self._heap = [(at_ms, key) for key, at_ms in self._live.items()]
            heapq.heapify(self._heap)


class ExpiryQueue:
    """``(at_ms, key)`` entries that are never cancelled, only checked when they surface.

    Settled inquiries far outnumber pending ones, so this is the leanest structure that works:
    a bare heap, no index. Whether an entry still counts is asked of the caller's table
    (*current* gives the key's live time, or None), so entries of forgotten or re-settled keys
    are dropped as they surface.
    """

    __slots__ = ("_heap",)

    def __init__(self, entries: Iterable[tuple[int, str]] = ()) -> None:
        self._heap = list(entries)
        heapq.heapify(self._heap)

    def push(self, key: str, at_ms: int) -> None:
        """Add *key* with time *at_ms*."""
        heapq.heappush(self._heap, (at_ms, key))

    def pop_due(self, horizon_ms: int, current: Callable[[str], int | None]) -> list[str]:
        """Remove and return the keys whose current time is at or before *horizon_ms*."""
        heap, fired = self._heap, dict[str, None]()  # a key pushed twice fires once
        while heap and heap[0][0] <= horizon_ms:
            at_ms, key = heapq.heappop(heap)
            if current(key) == at_ms:
                fired[key] = None
        return list(fired)

    def next_at(self, current: Callable[[str], int | None]) -> int | None:
        """The earliest current time, dropping stale entries on the way."""
        heap = self._heap
        while heap:
            at_ms, key = heap[0]
            if current(key) == at_ms:
                return at_ms
            heapq.heappop(heap)
        return None
