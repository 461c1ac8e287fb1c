"""`exchange dlq` on the real broker: dead letters are listed with reasons and replayed intact."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest
from topics_cli import cli_env, run

from exchange import ExchangeSettings
from exchange._dlq import HEADER_REPLAYED_FROM, dead_letter_record
from exchange._errors import FramingError
from exchange._topology import Topics
from exchange._wire import HEADER_TYPE

if TYPE_CHECKING:
    from conftest import CreateTopics

pytestmark = pytest.mark.integration

#: Original records, as an agency wrote them: key, value bytes, headers.
ORIGINALS = [
    (b"inquiry-1", b"\x00\x01not avro", [(HEADER_TYPE, b"request")]),
    (b"inquiry-2", b"\xc3\x01\xff\xfe", [(HEADER_TYPE, b"response"), ("traceparent", b"00-ab")]),
    (b"inquiry-3", bytes(range(256)), []),
]


async def _produce(settings: ExchangeSettings, topic: str, records: list[Any]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        for key, value, headers in records:
            await producer.send_and_wait(topic, value, key=key, headers=headers)
    finally:
        await producer.stop()


def _replays(records: list[Any]) -> list[Any]:
    return [r for r in records if any(k == HEADER_REPLAYED_FROM for k, _v in r.headers)]


async def _read_all(
    settings: ExchangeSettings, topic: str, expected: int, *, replays: bool = False
) -> list[Any]:
    """Every committed record of ``topic``; waits until ``expected`` (replayed ones) arrived."""
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(30):
            while len(_replays(records) if replays else records) < expected:
                batch = await consumer.getmany(timeout_ms=500)
                records += [r for rs in batch.values() for r in rs]
    finally:
        await consumer.stop()
    return sorted(records, key=lambda r: (r.partition, r.offset))


async def _plant(settings: ExchangeSettings, create_topics: CreateTopics) -> list[Any]:
    """Write the originals to out.TAX, read them back, dead-letter them as a worker would."""
    topics = Topics.for_settings(settings)
    await create_topics(topics.out("TAX"), topics.dlq, partitions=2)
    await _produce(settings, topics.out("TAX"), ORIGINALS)
    consumed = await _read_all(settings, topics.out("TAX"), len(ORIGINALS))
    letters = []
    for record in consumed:
        error = RuntimeError("boom") if record.key == b"inquiry-3" else FramingError("bad magic")
        dead = dead_letter_record(record, error, component="worker")
        letters.append((dead.key, dead.value, dead.headers))
    await _produce(settings, topics.dlq, letters)
    return consumed


async def test_show_lists_dead_letters_with_reason_source_and_size(
    settings: ExchangeSettings, create_topics: CreateTopics
) -> None:
    """Each planted dead letter is listed with its reason, source place, size and key."""
    consumed = await _plant(settings, create_topics)
    shown = await run(cli_env(settings), "dlq", "show", "--json")
    assert shown.code == 0, shown.err
    rows = {row["key"]: row for row in shown.json()}
    for record in consumed:
        row = rows[record.key.decode()]
        letter = row["letter"]
        assert (letter["source_topic"], letter["source_partition"], letter["source_offset"]) == (
            record.topic,
            record.partition,
            record.offset,
        )
        assert row["size"] == len(record.value)
        assert row["replayed"] is False
    assert rows["inquiry-3"]["reason"] == "processing-error"
    assert rows["inquiry-3"]["letter"]["message"] == "RuntimeError: boom"
    assert {rows[k]["reason"] for k in ("inquiry-1", "inquiry-2")} == {"bad-framing"}
    only = await run(cli_env(settings), "dlq", "show", "--reason", "processing-error", "--json")
    assert [row["key"] for row in only.json()] == ["inquiry-3"]
    text = await run(cli_env(settings), "dlq", "show", "--limit", "1")
    assert text.out.startswith("1 dead letter(s), oldest first")


async def test_replay_puts_the_original_bytes_back_once(
    settings: ExchangeSettings, create_topics: CreateTopics
) -> None:
    """Replayed records are byte-identical to the originals; a second replay skips them."""
    topics = Topics.for_settings(settings)
    consumed = await _plant(settings, create_topics)
    env = cli_env(settings)
    done = await run(env, "dlq", "replay", "--reason", "bad-framing", "--yes", "--json")
    assert done.code == 0, done.err
    replayed = done.json()["replayed"]
    assert len(replayed) == 2
    assert {r["topic"] for r in replayed} == {topics.out("TAX")}
    records = await _read_all(settings, topics.out("TAX"), len(ORIGINALS) + 2)
    first = {(c.partition, c.offset) for c in consumed}
    again = [r for r in records if (r.partition, r.offset) not in first]
    originals = {c.key: c for c in consumed}
    for record in again:
        original = originals[record.key]
        assert record.value == original.value
        assert record.partition == original.partition  # same key, same partition count
        assert list(record.headers[:-1]) == list(original.headers)
        name, value = record.headers[-1]
        assert name == HEADER_REPLAYED_FROM
        assert value.decode().startswith(f"{topics.dlq}:")
    assert {r.key for r in again} == {b"inquiry-1", b"inquiry-2"}
    second = await run(env, "dlq", "replay", "--reason", "bad-framing", "--yes")
    assert second.out == "nothing to replay\n"
    assert second.err.count("replayed before") == 2
    shown = {
        row["key"]: row["replayed"] for row in (await run(env, "dlq", "show", "--json")).json()
    }
    assert shown == {"inquiry-1": True, "inquiry-2": True, "inquiry-3": False}


async def test_replay_by_id_asks_first_unless_yes(
    settings: ExchangeSettings, create_topics: CreateTopics
) -> None:
    """`--offset ID` replays that one dead letter; without --yes a 'no' changes nothing."""
    await _plant(settings, create_topics)
    env = cli_env(settings)
    rows = (await run(env, "dlq", "show", "--json")).json()
    target = next(row["id"] for row in rows if row["key"] == "inquiry-3")
    declined = await run(env, "dlq", "replay", "--offset", target, stdin="n\n")
    assert declined.code == 1
    assert "replay 1 dead letter(s)?" in declined.out
    accepted = await run(env, "dlq", "replay", "--offset", target, stdin="y\n")
    assert accepted.code == 0, accepted.err
    assert f"replayed {target} (processing-error)" in accepted.out
    shown = {row["id"]: row["replayed"] for row in (await run(env, "dlq", "show", "--json")).json()}
    assert [i for i, done in shown.items() if done] == [target]


async def _expire(settings: ExchangeSettings, record: Any) -> None:
    """Delete the source partition's records up to and including ``record``, as retention would."""
    from aiokafka import TopicPartition
    from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        tp = TopicPartition(record.topic, record.partition)
        await admin.delete_records({tp: RecordsToDelete(record.offset + 1)})
    finally:
        await admin.close()


async def test_replay_refuses_forged_letters_and_expired_ones_unless_unverified(
    settings: ExchangeSettings, create_topics: CreateTopics
) -> None:
    """Bytes that differ from the source record are never replayed; an expired source
    record blocks a replay unless --unverified."""
    topics = Topics.for_settings(settings)
    consumed = await _plant(settings, create_topics)
    genuine = next(r for r in consumed if r.key == b"inquiry-3")
    forged = dead_letter_record(genuine, RuntimeError("boom"), component="worker")
    await _produce(settings, topics.dlq, [(b"inquiry-3", b"planted bytes", forged.headers)])
    await _expire(settings, next(r for r in consumed if r.key == b"inquiry-1"))
    env = cli_env(settings)
    refused = await run(env, "dlq", "replay", "--reason", "processing-error", "--yes", "--json")
    assert refused.code == 0, refused.err
    assert len(refused.json()["replayed"]) == 1  # the genuine inquiry-3 only
    assert refused.err.count("its bytes differ from its source record") == 1
    framing = await run(env, "dlq", "replay", "--reason", "bad-framing", "--yes", "--json")
    assert len(framing.json()["replayed"]) == 1  # inquiry-2; inquiry-1's source expired
    assert "has expired (--unverified to replay it anyway)" in framing.err
    forced = await run(
        env, "dlq", "replay", "--reason", "bad-framing", "--unverified", "--yes", "--json"
    )
    assert len(forced.json()["replayed"]) == 1
    replayed = _replays(await _read_all(settings, topics.out("TAX"), 3, replays=True))
    assert sorted(r.key for r in replayed) == [b"inquiry-1", b"inquiry-2", b"inquiry-3"]
    assert {r.key: r.value for r in replayed} == {c.key: c.value for c in consumed}
