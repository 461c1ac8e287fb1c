"""Records round-trip through the real broker: idempotent produce, group consume, transactions."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

import fastavro
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition

from exchange import ExchangeSettings
from exchange._kafka import client_options, resolve_bootstrap

if TYPE_CHECKING:
    from conftest import CreateTopics, Unique

pytestmark = pytest.mark.integration

SCHEMA = fastavro.parse_schema(
    {
        "type": "record",
        "name": "Probe",
        "namespace": "exchange.test",
        "fields": [
            {"name": "inquiry_id", "type": "string"},
            {"name": "agency", "type": "string"},
            {"name": "amount", "type": "long"},
        ],
    }
)


def _avro(record: dict[str, Any]) -> bytes:
    out = io.BytesIO()
    fastavro.schemaless_writer(out, SCHEMA, record)
    return out.getvalue()


def _connection(settings: ExchangeSettings) -> dict[str, Any]:
    return {"bootstrap_servers": resolve_bootstrap(settings), **client_options(settings)}


async def _consume(
    settings: ExchangeSettings, topic: str, group: str, count: int, **options: Any
) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        topic,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        **_connection(settings),
        **options,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        for _ in range(50):  # 50 polls of at most 200 ms: a bounded wait
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records.extend(batch)
            if len(records) >= count:
                break
    finally:
        await consumer.stop()
    return records


async def test_avro_record_round_trips_byte_identical(
    settings: ExchangeSettings, create_topics: CreateTopics, unique: Unique
) -> None:
    """An Avro record sent with acks=all and idempotence comes back with identical bytes."""
    (topic,) = await create_topics(unique("roundtrip"))
    value = _avro(
        {"inquiry_id": "c0ffee00-0000-4000-8000-000000000001", "agency": "NOCR", "amount": 7}
    )
    producer = AIOKafkaProducer(acks="all", enable_idempotence=True, **_connection(settings))
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, value, key=b"inquiry-1", headers=[("h", b"1")])
    finally:
        await producer.stop()

    (record,) = await _consume(settings, topic, unique("group"), 1)

    assert (record.key, record.value, record.offset) == (b"inquiry-1", value, sent.offset)
    assert list(record.headers) == [("h", b"1")]
    decoded = fastavro.schemaless_reader(io.BytesIO(record.value), SCHEMA, SCHEMA)
    assert decoded == {
        "inquiry_id": "c0ffee00-0000-4000-8000-000000000001",
        "agency": "NOCR",
        "amount": 7,
    }


async def test_read_committed_sees_committed_transactions_only(
    settings: ExchangeSettings, create_topics: CreateTopics, unique: Unique
) -> None:
    """Committed transactions are visible to read_committed consumers; aborted ones never are."""
    source, sink = await create_topics(unique("src"), unique("sink"), partitions=2)
    group = unique("group")
    producer = AIOKafkaProducer(transactional_id=unique("tx"), **_connection(settings))
    await producer.start()
    try:
        async with producer.transaction():
            await producer.send(sink, b"committed-1", key=b"a")
            # The consume-transform-produce step of the stream engine: offsets in the same txn.
            await producer.send_offsets_to_transaction({TopicPartition(source, 0): 5}, group)
        await producer.begin_transaction()
        await producer.send(sink, b"aborted", key=b"b")
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(sink, b"committed-2", key=b"c")
    finally:
        await producer.stop()

    records = await _consume(settings, sink, unique("reader"), 2, isolation_level="read_committed")

    assert sorted(r.value for r in records) == [b"committed-1", b"committed-2"]
    assert await _committed_offset(settings, group, TopicPartition(source, 0)) == 5


async def _committed_offset(settings: ExchangeSettings, group: str, tp: TopicPartition) -> int:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**_connection(settings))
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return int(offsets[tp].offset)
