"""Read whole topics without a consumer group: every partition, from the end or the start.

What ``exchange tail`` and the demo's observer do: assign every partition of some topics to a
``read_committed`` consumer (no group, so nothing is committed and no other reader is
disturbed), position it at the end (or the beginning), and wait until the positions are
resolved, so that nothing written afterwards can be missed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from exchange._admin import TopicAdmin
from exchange._errors import BrokerError
from exchange._kafka import error_for_code, kafka_options
from exchange._settings import ExchangeSettings

__all__ = ["assign_all", "group_free_consumer", "partitions_of", "read_to_end"]


def group_free_consumer(settings: ExchangeSettings, **options: Any) -> Any:
    """An unstarted ``read_committed`` consumer in no group, committing nothing."""
    from aiokafka import AIOKafkaConsumer

    return AIOKafkaConsumer(
        **kafka_options(settings),
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        **options,
    )


async def assign_all(
    settings: ExchangeSettings, consumer: Any, topics: Sequence[str], *, from_beginning: bool
) -> list[Any]:
    """Assign every partition of ``topics`` to the started ``consumer`` and position it.

    :class:`BrokerError` if a topic does not exist, :class:`AuthorizationError` if the
    principal may not see it.
    """
    from aiokafka import TopicPartition

    described = await _describe(settings, topics, only_existing=False)
    for topic in described:  # 29: the principal may not see it, which is not "missing"
        if topic["error_code"] == 29:
            raise error_for_code(29, topic["topic"], f"cannot read {topic['topic']}")
    found = {t["topic"]: t for t in described if t["error_code"] == 0 and t["partitions"]}
    missing = [topic for topic in topics if topic not in found]
    if missing:
        raise BrokerError(f"topic {', '.join(missing)} does not exist", retriable=False)
    assigned = [
        TopicPartition(topic, p["partition"])
        for topic in topics
        for p in sorted(found[topic]["partitions"], key=lambda p: p["partition"])
    ]
    consumer.assign(assigned)
    if from_beginning:
        await consumer.seek_to_beginning(*assigned)
    else:
        await consumer.seek_to_end(*assigned)
    for tp in assigned:
        await consumer.position(tp)
    return assigned


async def partitions_of(settings: ExchangeSettings, topic: str) -> list[int]:
    """The topic's partition numbers, sorted; empty if it does not exist."""
    described = await _describe(settings, [topic], only_existing=True)
    return sorted(p["partition"] for t in described for p in t["partitions"])


async def _describe(
    settings: ExchangeSettings, topics: Sequence[str], *, only_existing: bool
) -> list[dict[str, Any]]:
    """The broker's metadata of ``topics`` (``only_existing``: of those that exist; the
    others are left out rather than described, which could create them)."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka_options(settings))
    try:
        await admin.start()
        if only_existing:
            existing = set(await admin.list_topics())
            topics = [topic for topic in topics if topic in existing]
            if not topics:
                return []
        described: list[dict[str, Any]] = await admin.describe_topics(list(topics))
        return described
    finally:
        await admin.close()


async def read_to_end(
    settings: ExchangeSettings, topic: str, on_records: Callable[[list[Any]], None]
) -> dict[int, int]:
    """Hand every committed record of *topic*, from its start up to its end offsets at the
    start of the read, to *on_records* (a partition's records in order); return each
    partition's first offset (above 0: older records were deleted by retention).

    A :class:`BrokerError` if the topic does not exist, cannot be read, or yields nothing for
    four request timeouts before its end.
    """
    from aiokafka import TopicPartition
    from aiokafka.errors import KafkaError

    async with TopicAdmin.for_settings(settings) as admin:
        count, _replicas = (await admin.partition_counts([topic])).get(topic, (0, 0))
    if not count:
        raise BrokerError(f"{topic} does not exist: run `exchange topics apply`", retriable=False)
    consumer = group_free_consumer(
        settings,
        auto_offset_reset="earliest",
        request_timeout_ms=round(settings.request_timeout * 1000),
    )
    partitions = [TopicPartition(topic, n) for n in range(count)]
    try:
        await consumer.start()
        consumer.assign(partitions)
        starts = await consumer.beginning_offsets(partitions)
        for tp, start in starts.items():  # explicit: no race with a pending offset reset
            consumer.seek(tp, start)
        ends = await consumer.end_offsets(partitions)
        await _drain(consumer, ends, on_records, settings.request_timeout * 4)
    except KafkaError as exc:
        raise BrokerError(f"cannot read {topic}: {exc}") from exc
    finally:
        await consumer.stop()
    return {tp.partition: start for tp, start in starts.items()}


async def _drain(
    consumer: Any, ends: dict[Any, int], on_records: Callable[[list[Any]], None], patience: float
) -> None:
    loop = asyncio.get_running_loop()
    quiet_until = loop.time() + patience
    while pending := [tp for tp, end in ends.items() if await consumer.position(tp) < end]:
        batch = await consumer.getmany(*pending, timeout_ms=200, max_records=10_000)
        for records in batch.values():
            on_records(records)
        if batch:
            quiet_until = loop.time() + patience
        elif loop.time() > quiet_until:
            topic = pending[0].topic
            raise BrokerError(f"reading {topic} stalled before its end offsets")
