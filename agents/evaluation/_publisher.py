"""What the evaluation processor has yet to publish to ``<prefix>.compliance``.

The agent notes every window value it writes and every offset it has processed; a flush
takes a snapshot of both (synchronously, so no record is half in it) and sends the window
partials first and the coverage records after them, waiting for each group's acks, which is
the order the compliance topic's readers rely on (see ``exchange._compliance_topic``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

from exchange._compliance import WindowKey
from exchange._compliance_topic import (
    Coverage,
    WindowPartial,
    coverage_key,
    encode_coverage,
    encode_partial,
    partial_key,
)
from exchange._evaluation import PartitionCoverage, WindowValue

__all__ = ["Publisher", "Send"]

#: Sends a group of (key, value) records and returns once the broker has all of them.
Send = Callable[[list[tuple[bytes, bytes]]], Awaitable[None]]


@dataclass(slots=True)
class Publisher:
    """Dirty window partials and per-partition progress, waiting for the next flush."""

    dirty: dict[tuple[WindowKey, int], WindowValue] = field(default_factory=dict)
    through: dict[int, int] = field(default_factory=dict)
    coverage: dict[int, PartitionCoverage] = field(default_factory=dict)
    moved: set[int] = field(default_factory=set)
    published: int = 0

    def wrote(self, window: WindowKey, partition: int, value: WindowValue) -> None:
        """The agent (or table recovery) holds this value for the window partial."""
        self.dirty[(window, partition)] = value

    def processed(self, partition: int, offset: int, coverage: PartitionCoverage | None) -> None:
        """Every record of ``partition`` up to ``offset`` is in the tables."""
        self.through[partition] = offset
        if coverage is not None:
            self.coverage[partition] = coverage
        self.moved.add(partition)

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions revoked: another worker publishes them now; drop what is pending."""
        gone = set(partitions)
        self.dirty = {k: v for k, v in self.dirty.items() if k[1] not in gone}
        for partition in gone:
            self.through.pop(partition, None)
            self.coverage.pop(partition, None)
        self.moved -= gone

    def snapshot(self, now_ms: int) -> tuple[list[tuple[bytes, bytes]], list[tuple[bytes, bytes]]]:
        """Take what is pending: (partial records, coverage records), as key/value bytes."""
        partials = [
            (
                partial_key(window, partition),
                encode_partial(
                    WindowPartial(window, partition, value.through_offset, value.figures),
                    now_ms=now_ms,
                ),
            )
            for (window, partition), value in sorted(self.dirty.items())
        ]
        coverages = [
            (
                coverage_key(partition),
                encode_coverage(
                    Coverage(partition, self.through[partition], self.coverage[partition].since_ms),
                    now_ms=now_ms,
                ),
            )
            for partition in sorted(self.moved)
            if partition in self.coverage and partition in self.through
        ]
        self.dirty = {}
        self.moved = {p for p in self.moved if p not in self.coverage or p not in self.through}
        return partials, coverages

    async def flush(self, send: Send) -> int:
        """Publish what is pending; returns the number of records sent.

        A failed send loses the snapshot; the processor then stops with an error, and its
        restart republishes every window it recovers from the changelog.
        """
        partials, coverages = self.snapshot(round(time.time() * 1000))
        for group in (partials, coverages):
            if group:
                await send(group)
        self.published += len(partials) + len(coverages)
        return len(partials) + len(coverages)
