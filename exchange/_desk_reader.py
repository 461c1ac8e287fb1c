"""Reading the manual desk's topic: its latest value per key, tombstones removed (aiokafka I/O).

A read goes from where the reader stands to the topic's end *as of the read*, so it sees every
record whose write finished before it (an answer reads what the provider just deferred).

Closed, a :class:`DeskReader` reads with a consumer of its own each time, from the beginning:
right for a command or script that looks once. Opened (``async with reader`` or
:meth:`~DeskReader.open`), it keeps one consumer and the values read so far, and each read
only fetches what was written since the last: right for a long-lived process that looks often
(a clerk polling the desk, a provider listing its deferred inquiries), which would otherwise
reconnect and re-read the whole topic on every look. The partitions are looked up once, when
the topic first exists; partitions added later (``exchange topics apply`` after a change of
``partitions``) are read after a reopen.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any, Self

from exchange._errors import BrokerError
from exchange._settings import ExchangeSettings
from exchange._topic_reader import group_free_consumer, partitions_of

__all__ = ["DeskReader", "partitions_of"]


class DeskReader:
    """The latest value per key of one compacted topic, read once or kept up to date."""

    def __init__(self, settings: ExchangeSettings, topic: str) -> None:
        self._settings = settings
        self.topic = topic
        self._consumer: Any = None  # set while open
        self._assigned: list[Any] = []
        self._latest: dict[bytes, bytes] = {}
        # Reads of one open reader share its consumer: one catches up at a time.
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Keep one consumer and the values read until :meth:`close` (idempotent)."""
        if self._consumer is not None:
            return
        from aiokafka.errors import KafkaError

        consumer = group_free_consumer(self._settings)
        try:
            await consumer.start()
        except KafkaError as exc:
            await consumer.stop()
            raise BrokerError(f"cannot read {self.topic}: {exc}") from exc
        self._consumer, self._assigned, self._latest = consumer, [], {}

    async def close(self) -> None:
        """Stop the kept consumer; later reads are one-off again."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def read(self, *, only_key: bytes | None = None) -> dict[bytes, bytes]:
        """Latest value per key up to the topic's current end; :class:`BrokerError` if not.

        Closed, with ``only_key``, only the partition that key hashes to is read.
        """
        from aiokafka.errors import KafkaError

        try:
            if self._consumer is None:
                return await self._read_once(only_key)
            async with self._lock:
                await self._catch_up()
                return dict(self._latest)
        except KafkaError as exc:
            raise BrokerError(f"cannot read {self.topic}: {exc}") from exc

    async def _catch_up(self) -> None:
        if not self._assigned:  # the topic may not exist yet: look again on every read
            self._assigned = await self._assign(self._consumer, only_key=None)
        await _read_to_end(self._consumer, self._assigned, self._latest)

    async def _read_once(self, only_key: bytes | None) -> dict[bytes, bytes]:
        consumer = group_free_consumer(self._settings)
        try:
            await consumer.start()
            assigned = await self._assign(consumer, only_key=only_key)
            latest: dict[bytes, bytes] = {}
            await _read_to_end(consumer, assigned, latest)
            return latest
        finally:
            await consumer.stop()

    async def _assign(self, consumer: Any, *, only_key: bytes | None) -> list[Any]:
        """Assign the topic's partitions (the key's one only, with ``only_key``), at the start."""
        from aiokafka import TopicPartition
        from aiokafka.partitioner import DefaultPartitioner

        known = await partitions_of(self._settings, self.topic)
        if not known:
            return []
        if only_key is not None:
            known = [DefaultPartitioner()(only_key, known, known)]
        assigned = [TopicPartition(self.topic, p) for p in known]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        return assigned


async def _read_to_end(consumer: Any, assigned: list[Any], latest: dict[bytes, bytes]) -> None:
    """Fold the records from the consumer's positions to the current ends into ``latest``."""
    if not assigned:
        return
    ends = await consumer.end_offsets(assigned)
    remaining = {tp for tp in assigned if await consumer.position(tp) < ends[tp]}
    while remaining:
        batches = await consumer.getmany(*remaining, timeout_ms=1000)
        for records in batches.values():
            for record in records:
                if record.value is None:
                    latest.pop(record.key, None)
                else:
                    latest[record.key] = record.value
        for tp in list(remaining):
            if await consumer.position(tp) >= ends[tp]:
                remaining.discard(tp)
