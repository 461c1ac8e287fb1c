"""One partition's Kafka transaction: outputs, changelog records and offsets, then commit.

The requests of a transaction go one after the other on the transaction coordinator's
connection (aiokafka's sender keeps one in flight), and each is a round trip to the broker,
so their order sets the commit's latency::

    AddPartitionsToTxn ─▶ Produce (acks=all)                      ─┐
                       └▶ AddOffsetsToTxn ─▶ TxnOffsetCommit       ─┴▶ EndTxn

The produce requests travel on the partition leaders' connections, so the offsets are added
while the outputs are being acknowledged. Every produced batch is awaited before
``commit_transaction``: aiokafka's commit waits for the batches to settle but then commits
even if one of them failed, which would lose that batch's records.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

from aiokafka import TopicPartition
from aiokafka.partitioner import murmur2

from agents._engine_types import OutputRecord

__all__ = [
    "Row",
    "Sent",
    "begin",
    "default_partition",
    "fatal_cause",
    "route",
    "settle",
    "stop_producer",
    "transact",
]

_log = logging.getLogger("agents._engine")

Row = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]
#: Per topic partition: each record batch's future (its metadata) and record count.
Sent = dict[tuple[str, int], list[tuple[asyncio.Future[Any], int]]]


async def transact(
    producer: Any,
    rows: Mapping[tuple[str, int], list[Row]],
    offsets: Mapping[TopicPartition, int],
    group_id: str,
) -> Sent:
    """Produce ``rows`` and commit ``offsets`` for ``group_id`` in the transaction the caller
    began, and commit it; raises whatever failed (the caller then aborts)."""
    sent = {where: await _send_rows(producer, where, batch) for where, batch in rows.items()}
    produced = settle(future for batches in sent.values() for future, _ in batches)
    if offsets:
        await settle((produced, producer.send_offsets_to_transaction(offsets, group_id)))
    else:
        await produced
    await producer.commit_transaction()
    return sent


async def begin(producer: Any) -> None:
    """``producer.begin_transaction()``, without its turn of the event loop once the producer
    has its id (always, after start): aiokafka's awaits the id through ``asyncio.shield``,
    which schedules a task even when the id is there, so each transaction waited for whatever
    else the loop was running (measured under load: 17-34 ms at the median)."""
    txn = producer._txn_manager  # private: the same steps as aiokafka's begin_transaction
    if txn is None or txn.transactional_id is None or not txn.has_pid():
        await producer.begin_transaction()
        return
    txn.begin_transaction()


async def route(producer: Any, outputs: list[OutputRecord]) -> dict[tuple[str, int], list[Row]]:
    """Group outputs by topic partition; records without one go where the key hashes to.

    The rule is aiokafka's and the Java client's default partitioner (murmur2 of the key bytes,
    random for a null key), so the engine and every producer of the bus agree on placement.
    """
    # Only records without a partition need the count (the bus gives every output one).
    unplaced = {o.topic for o in outputs if o.partition is None}
    counts = {topic: len(await producer.partitions_for(topic)) for topic in unplaced}
    rows: dict[tuple[str, int], list[Row]] = {}
    for o in outputs:
        partition = o.partition
        if partition is None:
            partition = default_partition(o.key, counts[o.topic])
        rows.setdefault((o.topic, partition), []).append((o.key, o.value, list(o.headers)))
    return rows


async def _send_rows(
    producer: Any, where: tuple[str, int], rows: list[Row]
) -> list[tuple[asyncio.Future[Any], int]]:
    """Queue ``rows`` as few record batches as fit; each batch's future and record count.

    aiokafka's batch API skips the per-record coroutine, future and partitioner call of
    ``send()``; at thousands of records per second that is most of the producing cost.
    """
    topic, partition = where
    sent = []
    batch, count = producer.create_batch(), 0
    for key, value, headers in rows:
        if batch.append(timestamp=None, key=key, value=value, headers=headers) is None:
            sent.append((await producer.send_batch(batch, topic, partition=partition), count))
            batch, count = producer.create_batch(), 0
            # An empty batch takes any record, however large.
            batch.append(timestamp=None, key=key, value=value, headers=headers)
        count += 1
    if count:
        sent.append((await producer.send_batch(batch, topic, partition=partition), count))
    return sent


async def settle(awaitables: Iterable[Awaitable[Any]]) -> None:
    """Await all; raise the first failure once every one has settled (no error left unread)."""
    for result in await asyncio.gather(*awaitables, return_exceptions=True):
        if isinstance(result, BaseException):
            raise result


def default_partition(key: bytes | None, partitions: int) -> int:
    """The partition the default (murmur2) partitioner gives ``key`` among ``partitions``."""
    if key is None:
        return random.randrange(partitions)  # noqa: S311  # spreading load, not security
    hashed: int = murmur2(key)
    return (hashed & 0x7FFFFFFF) % partitions


def fatal_cause(producer: Any) -> BaseException | None:
    """The error that left ``producer`` unusable (e.g. fenced), if any.

    aiokafka records it only in its private transaction manager; reading it also marks the
    waiter's exception as retrieved, so asyncio does not log it as lost.
    """
    txn = producer._txn_manager  # private: aiokafka has no public accessor for it
    if not txn.is_fatal_error():
        return None
    _consume_drain_errors(producer)
    waiter = txn.wait_for_transaction_end()
    if waiter.done() and not waiter.cancelled():
        cause: BaseException | None = waiter.exception()
        return cause
    return None


def _consume_drain_errors(producer: Any) -> None:
    """Mark the failed batches' drain-waiter errors as seen.

    When aiokafka's sender dies (fenced) it fails every queued batch, including a private
    "drained" future nobody awaits; left unread, each is logged from the garbage collector,
    where Python 3.11 may format it in the middle of another ``ast.parse`` and crash it.
    """
    accumulator = getattr(producer, "_message_accumulator", None)
    queues = [*getattr(accumulator, "_batches", {}).values()]
    queues.append(getattr(accumulator, "_pending_batches", ()))
    for batch in (batch for queue in queues for batch in queue):
        waiter = getattr(batch, "_drain_waiter", None)
        if waiter is not None and waiter.done() and not waiter.cancelled():
            waiter.exception()


async def stop_producer(producer: Any, partition: int) -> None:
    """Close partition ``partition``'s producer; a failure is logged, never raised."""
    try:
        await producer.stop()
    except Exception:  # closing after a failure: report, keep closing the others
        _log.warning("producer of partition %d did not stop cleanly", partition, exc_info=True)
