"""What the engine holds for one owned partition number, and the records waiting for it.

Each partition number runs its own sequence of transactions (its *lane*): the engine's fetch
loop appends fetched records to the partition's buffer, and the lane takes everything buffered
as soon as its previous transaction has committed. Partitions therefore never wait for each
other, and records fetched while a transaction commits are the next transaction's batch.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from aiokafka import TopicPartition

from agents._state_store import PartitionState

__all__ = ["PartitionTask"]

V = TypeVar("V")


@dataclass(slots=True, eq=False)  # compared and hashed by identity
class PartitionTask(Generic[V]):
    """One owned partition number: its producer, state, offsets and buffered records."""

    partition: int
    producer: Any
    state: PartitionState[V]
    #: Per input topic partition: the offset committed last (where a rewind goes).
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    changelog_end: int | None = None  # end offset after our last changelog write, if known
    #: Fetched, not yet processed, per input topic partition, in offset order.
    buffer: dict[TopicPartition, list[Any]] = field(default_factory=dict)
    buffered: int = 0
    #: The offset the next buffered record of each input must have at least: a record
    #: fetched twice (before and after a rewind) is kept once.
    next_offset: dict[TopicPartition, int] = field(default_factory=dict)
    began: float = 0.0  # monotonic time the last transaction of input records began
    failures: int = 0  # failed transactions in a row
    tick_due: bool = False
    lane: asyncio.Task[None] | None = None

    def add(self, tp: TopicPartition, records: list[Any]) -> int:
        """Buffer ``records`` of ``tp`` (dropping any already buffered); how many were new."""
        floor = self.next_offset.get(tp)
        if floor is not None and records and records[0].offset < floor:
            records = [r for r in records if r.offset >= floor]
        if not records:
            return 0
        self.buffer.setdefault(tp, []).extend(records)
        self.next_offset[tp] = records[-1].offset + 1
        self.buffered += len(records)
        return len(records)

    def take(self) -> dict[TopicPartition, list[Any]]:
        """Everything buffered, for one transaction; the buffer is empty afterwards."""
        taken, self.buffer, self.buffered = self.buffer, {}, 0
        return taken

    def rewind(self) -> int:
        """Forget the buffered records and expect each input again from its committed offset
        (the caller seeks there); how many records were dropped."""
        dropped, self.buffer, self.buffered = self.buffered, {}, 0
        self.next_offset = dict(self.committed)
        return dropped

    @property
    def busy(self) -> bool:
        """Whether the lane is running (processing or committing)."""
        return self.lane is not None and not self.lane.done()
