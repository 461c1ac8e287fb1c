"""Checking dead letters against their source records before a replay (aiokafka I/O).

A dead letter's headers are data: any principal allowed to write the DLQ (providers are) could
plant one that names another agency's topic as its source, and a replay would then write its
bytes into a topic that principal may not write itself. Each dead letter is therefore compared
with the record still at its source topic/partition/offset: the same key and value bytes mean
the replay puts back what the source's own writer wrote. A source record already gone
(retention, compaction) cannot vouch for it: such a letter is replayed only if the operator
says so; a letter whose bytes differ from its source record is never replayed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from exchange._dlq import DeadLetterEntry
from exchange._errors import BrokerError
from exchange._kafka import kafka_options
from exchange._settings import ExchangeSettings

__all__ = ["Unverified", "unverified"]

#: How long to wait for one source record that the end offsets say is there.
_FETCH_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Unverified:
    """Why a dead letter's source record does not vouch for it; ``gone`` or it differs."""

    id: str
    gone: bool
    why: str


async def unverified(
    settings: ExchangeSettings, entries: Sequence[DeadLetterEntry]
) -> list[Unverified]:
    """The dead letters whose source record does not vouch for them, and why."""
    from aiokafka import AIOKafkaConsumer
    from aiokafka.errors import KafkaError

    consumer = AIOKafkaConsumer(
        **kafka_options(settings),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
        request_timeout_ms=round(settings.request_timeout * 1000),
    )
    problems: list[Unverified] = []
    try:
        await consumer.start()
        for entry in entries:
            problem = await _check(consumer, entry)
            if problem is not None:
                problems.append(problem)
    except KafkaError as exc:
        raise BrokerError(f"cannot read the dead letters' source records: {exc}") from exc
    finally:
        await consumer.stop()
    return problems


async def _check(consumer: Any, entry: DeadLetterEntry) -> Unverified | None:
    from aiokafka import TopicPartition

    assert entry.letter is not None  # chosen entries name their source
    source = entry.letter
    tp = TopicPartition(source.source_topic, source.source_partition)
    consumer.assign([tp])
    start, end = (
        (await consumer.beginning_offsets([tp]))[tp],
        (await consumer.end_offsets([tp]))[tp],
    )
    if source.source_offset < start:
        return Unverified(entry.id, True, f"its source record {_place(entry)} has expired")
    if source.source_offset >= end:
        why = f"it names {_place(entry)}, past the end of that partition"
        return Unverified(entry.id, False, why)
    consumer.seek(tp, source.source_offset)
    record = await _first_from(consumer, tp)
    if record is None or record.offset != source.source_offset:
        return Unverified(entry.id, True, f"its source record {_place(entry)} is gone")
    if (record.key, record.value) != (entry.key, entry.value):
        why = f"its bytes differ from its source record {_place(entry)}"
        return Unverified(entry.id, False, why)
    return None


async def _first_from(consumer: Any, tp: Any) -> Any:
    """The first committed record at or after the position, None if none comes in time."""
    try:
        async with asyncio.timeout(_FETCH_TIMEOUT):
            while True:
                batch = await consumer.getmany(tp, timeout_ms=500, max_records=1)
                if batch.get(tp):
                    return batch[tp][0]
    except TimeoutError:
        return None


def _place(entry: DeadLetterEntry) -> str:
    letter = entry.letter
    assert letter is not None
    return f"{letter.source_topic}[{letter.source_partition}]@{letter.source_offset}"
