"""``exchange broker check``: prove a cluster carries the bus's records, end to end.

Creates a throwaway topic, sends one Avro-encoded record with the settings every component
uses for no-loss writes (``acks="all"``, idempotent producer), reads it back through a
consumer group, compares the bytes, and deletes the topic. The record is encoded schemaless
with an inline schema: the check is about the cluster, not the bus's wire format.
"""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from dataclasses import dataclass
from typing import Any

import fastavro

from exchange._errors import BrokerError
from exchange._kafka_probe import check_reachable

#: Seconds to wait for the record to come back.
READ_TIMEOUT = 30.0

_SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "SmokeProbe",
        "namespace": "exchange.check",
        "doc": "One record sent by `exchange broker check`.",
        "fields": [
            {"name": "probe_id", "type": "string"},
            {"name": "sent_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "note", "type": "string"},
        ],
    }
)


@dataclass(frozen=True)
class RoundTrip:
    """What one round trip showed."""

    topic: str
    partition: int
    offset: int
    size: int
    seconds: float
    identical: bool
    decoded: dict[str, Any]


def encode(record: dict[str, Any]) -> bytes:
    """The probe record in Avro binary (schemaless)."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, _SCHEMA, record)
    return out.getvalue()


async def round_trip(bootstrap: str, options: dict[str, Any], topic_prefix: str) -> RoundTrip:
    """Send one Avro record to a throwaway topic, read it back, delete the topic."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import KafkaError

    await check_reachable(bootstrap, READ_TIMEOUT, options)  # a clear line if it is not
    topic = f"{topic_prefix}.check.{uuid.uuid4().hex[:12]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **options)
    try:
        await admin.start()
        await admin.create_topics([NewTopic(topic, 1, 1)])
        try:
            return await _send_and_read(bootstrap, options, topic)
        finally:
            await admin.delete_topics([topic])
    except KafkaError as exc:
        raise BrokerError(f"the round trip through {bootstrap} failed: {exc!r}") from exc
    finally:
        await admin.close()


async def _send_and_read(bootstrap: str, options: dict[str, Any], topic: str) -> RoundTrip:
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    value = encode(
        {"probe_id": str(uuid.uuid4()), "sent_at": int(time.time() * 1000), "note": "hello"}
    )
    began = time.perf_counter()
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, **options
    )
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, value, key=b"probe")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=None,  # no consumer group: the check leaves nothing behind on the cluster
        auto_offset_reset="earliest",
        **options,
    )
    await consumer.start()
    try:
        async with asyncio.timeout(READ_TIMEOUT):
            record = await consumer.getone()
    except TimeoutError as exc:
        raise BrokerError(
            f"the record sent to {topic} did not come back in {READ_TIMEOUT:g} s"
        ) from exc
    finally:
        await consumer.stop()
    got: bytes = record.value
    decoded = fastavro.schemaless_reader(io.BytesIO(got), _SCHEMA, _SCHEMA)
    if not isinstance(decoded, dict):
        raise BrokerError(f"the record read back from {topic} is not the probe record")
    return RoundTrip(
        topic=topic,
        partition=sent.partition,
        offset=sent.offset,
        size=len(got),
        seconds=time.perf_counter() - began,
        identical=got == value,
        decoded=decoded,
    )
