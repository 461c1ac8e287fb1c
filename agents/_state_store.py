"""Per-partition state in memory, backed by a compacted changelog topic.

The engine keeps one :class:`PartitionState` per owned partition number *p*. Processors read and
write it like a dict (``state[key] = value``, ``del state[key]``, ``state.get(key)``); values
are treated as immutable, so a change is always a new assignment. Every key written since the
last commit is remembered together with its value before the batch (an undo log): at commit
the engine writes the current value of each touched key to changelog partition *p* (a
tombstone for deleted keys) inside the batch's Kafka transaction, and on abort it puts the old
values back, which leaves memory exactly where the changelog's committed records say it is.

On assignment the engine rebuilds the map by reading changelog partition *p* from the
beginning to its end offset at ``read_committed`` (:func:`restore_partitions`); compaction keeps
that read proportional to the number of live keys. Keys are text (UTF-8 in the changelog);
values go through a :class:`StateCodec` so processors can keep decoded objects in memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from typing import Any, Generic, Protocol, TypeVar

from aiokafka import TopicPartition

__all__ = ["BytesCodec", "PartitionState", "StateCodec", "restore_partitions"]

V = TypeVar("V")
_MISSING: Any = object()


class StateCodec(Protocol[V]):
    """Turns state values into changelog bytes and back."""

    def encode(self, value: V, /) -> bytes:
        """The changelog bytes for ``value``."""
        ...

    def decode(self, data: bytes, /) -> V:
        """The value stored as ``data``."""
        ...


class BytesCodec:
    """The identity codec: state values are bytes already."""

    def encode(self, value: bytes, /) -> bytes:
        """Return ``value`` unchanged."""
        return value

    def decode(self, data: bytes, /) -> bytes:
        """Return ``data`` unchanged."""
        return data


class PartitionState(MutableMapping[str, V], Generic[V]):
    """The state of one partition number: a dict that remembers what changed."""

    __slots__ = ("_data", "_undo", "partition")

    def __init__(self, partition: int, data: dict[str, V] | None = None) -> None:
        self.partition = partition
        self._data: dict[str, V] = data if data is not None else {}
        self._undo: dict[str, V] = {}

    def __getitem__(self, key: str) -> V:
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` (a fast path: no exception on a miss)."""
        return self._data.get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __setitem__(self, key: str, value: V) -> None:
        if key not in self._undo:
            self._undo[key] = self._data.get(key, _MISSING)
        self._data[key] = value

    def __delitem__(self, key: str) -> None:
        old = self._data.pop(key)
        if key not in self._undo:
            self._undo[key] = old

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"PartitionState(partition={self.partition}, keys={len(self._data)})"

    @property
    def dirty(self) -> bool:
        """Whether anything changed since the last commit or rollback."""
        return bool(self._undo)

    def changes(self) -> list[tuple[str, V | None]]:
        """Each touched key with its current value (``None``: deleted) since the last commit."""
        out: list[tuple[str, V | None]] = []
        for key, old in self._undo.items():
            new = self._data.get(key, _MISSING)
            if new is _MISSING:
                if old is not _MISSING:  # written then deleted in one batch: nothing to log
                    out.append((key, None))
            else:
                out.append((key, new))
        return out

    def commit(self) -> None:
        """Forget the undo log: the changes are in the committed changelog now."""
        self._undo.clear()

    def rollback(self) -> None:
        """Put every touched key back to its value at the last commit."""
        for key, old in self._undo.items():
            if old is _MISSING:
                self._data.pop(key, None)
            else:
                self._data[key] = old
        self._undo.clear()


async def restore_partitions(
    consumer: Any,
    topic: str,
    partitions: Iterable[int],
    codec: StateCodec[V],
) -> dict[int, dict[str, V]]:
    """Read changelog ``topic`` partitions from beginning to end; return each one's live keys.

    ``consumer`` is a started, group-less ``AIOKafkaConsumer`` at ``read_committed``: its end
    offsets are then the last stable offsets, so records of open or aborted transactions are
    never restored. Callers fence the previous owner first (the engine starts the partition's
    transactional producer), which settles its open transaction and lets the end offset be
    reached.
    """
    tps = [TopicPartition(topic, number) for number in partitions]
    restored: dict[int, dict[str, V]] = {tp.partition: {} for tp in tps}
    if not tps:
        return restored
    consumer.assign(tps)
    try:
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        pending = {tp for tp in tps if await consumer.position(tp) < ends[tp]}
        while pending:  # callers bound the time with asyncio.timeout
            batch = await consumer.getmany(*pending, timeout_ms=200, max_records=10_000)
            for tp, records in batch.items():
                _apply(restored[tp.partition], records, codec)
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
    finally:
        consumer.assign([])
    return restored


def _apply(data: dict[str, V], records: Iterable[Any], codec: StateCodec[V]) -> None:
    for record in records:
        key = record.key.decode()
        if record.value is None:
            data.pop(key, None)
        else:
            data[key] = codec.decode(record.value)
