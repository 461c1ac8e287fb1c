"""The desk reader on the real broker: an open reader keeps up with the topic across reads."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from aiokafka import AIOKafkaProducer

from exchange import ExchangeSettings
from exchange._desk_reader import DeskReader
from exchange._kafka import kafka_options
from exchange._topology import DESK_CONFIG, Topics

if TYPE_CHECKING:
    from conftest import CreateTopics

pytestmark = pytest.mark.integration


async def _write(
    settings: ExchangeSettings, topic: str, *records: tuple[bytes, bytes | None]
) -> None:
    producer = AIOKafkaProducer(**kafka_options(settings), acks="all")
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def test_an_open_reader_sees_each_write_made_before_its_read(
    settings: ExchangeSettings, create_topics: CreateTopics
) -> None:
    """Open across writes and tombstones, the reader reads what a fresh one-off read reads."""
    topic = Topics.for_settings(settings).desk("NOCR")
    async with DeskReader(settings, topic) as reader:
        assert await reader.read() == {}  # no topic yet
        await create_topics(topic, partitions=2, config=dict(DESK_CONFIG))
        await _write(settings, topic, (b"a", b"1"), (b"b", b"2"), (b"c", b"3"))
        assert await reader.read() == {b"a": b"1", b"b": b"2", b"c": b"3"}
        await _write(settings, topic, (b"a", None), (b"b", b"2 again"))
        kept = await reader.read()
        assert await reader.read() == kept
    once = await DeskReader(settings, topic).read()
    assert kept == once == {b"b": b"2 again", b"c": b"3"}
    by_key = await DeskReader(settings, topic).read(only_key=b"c")
    assert by_key[b"c"] == b"3"
    assert set(by_key) <= set(once)
