"""Reading and replaying the DLQ on a real cluster: the aiokafka I/O around :mod:`exchange._dlq`.

:func:`read_dlq` reads every partition of ``<prefix>.dlq`` from its start to the end it had
when the read began (records written meanwhile are left for the next run), at
``read_committed``, without a consumer group, into a :class:`~exchange._dlq.DlqListing`.

:func:`replay` writes the chosen dead letters back to their source topics with a
transactional producer (``<prefix>.dlq-replay``): each record and its replay marker commit
together, so a replay interrupted half-way leaves every dead letter either replayed and
marked, or neither; of two replays running at once, the newer fences the older, which stops.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from exchange._dlq import DeadLetterEntry, DlqListing, replay_marker, replay_record
from exchange._errors import BrokerError
from exchange._kafka import kafka_options
from exchange._settings import ExchangeSettings
from exchange._topic_reader import read_to_end
from exchange._topology import Topics

__all__ = ["Replayed", "read_dlq", "replay"]

#: Dead letters per replay transaction: small enough to stay far from the transaction timeout.
_PER_TRANSACTION = 500


@dataclass(frozen=True, slots=True)
class Replayed:
    """Where one dead letter went back to."""

    id: str
    reason: str
    topic: str
    partition: int
    offset: int


def _options(settings: ExchangeSettings) -> dict[str, Any]:
    return {
        **kafka_options(settings),
        "request_timeout_ms": round(settings.request_timeout * 1000),
    }


async def read_dlq(settings: ExchangeSettings, listing: DlqListing) -> DlqListing:
    """Feed every committed DLQ record, up to the end at the start of the read, to ``listing``."""

    def take(records: list[Any]) -> None:
        for record in records:
            listing.add(record)

    await read_to_end(settings, Topics.for_settings(settings).dlq, take)
    return listing


async def replay(settings: ExchangeSettings, entries: Sequence[DeadLetterEntry]) -> list[Replayed]:
    """Write each dead letter back to its source topic, with its marker, transactionally."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.errors import KafkaError

    topics = Topics.for_settings(settings)
    producer = AIOKafkaProducer(
        transactional_id=topics.replay_transactional_id,
        acks="all",
        enable_idempotence=True,
        **_options(settings),
    )
    done: list[Replayed] = []
    try:
        await producer.start()
        for start in range(0, len(entries), _PER_TRANSACTION):
            chunk = entries[start : start + _PER_TRANSACTION]
            done += await _replay_chunk(producer, topics.dlq, chunk)
    except KafkaError as exc:
        raise BrokerError(f"replay stopped after {len(done)} dead letter(s): {exc}") from exc
    finally:
        await producer.stop()
    return done


async def _replay_chunk(
    producer: Any, dlq_topic: str, entries: Sequence[DeadLetterEntry]
) -> list[Replayed]:
    sent = []
    async with producer.transaction():
        for entry in entries:
            record = replay_record(entry, dlq_topic)
            delivery = await producer.send(
                record.topic,
                record.value,
                key=record.key,
                headers=record.headers,
                partition=record.partition,
            )
            marker = replay_marker(entry, dlq_topic, record.topic)
            await producer.send(
                marker.topic, marker.value, headers=marker.headers, partition=marker.partition
            )
            sent.append((entry, delivery))
    replayed = []
    for entry, delivery in sent:
        meta = await delivery
        replayed.append(Replayed(entry.id, entry.reason, meta.topic, meta.partition, meta.offset))
    return replayed
