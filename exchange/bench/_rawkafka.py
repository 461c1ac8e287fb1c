"""Plain aiokafka building blocks shared by the reference scenarios (direct and relay).

No codec, no policy, no state: records are moved as bytes and routed by header. Every client
uses ``acks="all"``, as the bus does, so the references pay the same durability cost per write.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError

from exchange._errors import BrokerError
from exchange._kafka import client_options as kafka_options
from exchange._settings import ExchangeSettings
from exchange.bench._scenario import ScenarioEnv

Headers = list[tuple[str, bytes]]
#: Where a record goes: destination topic, headers and value; ``None`` drops it.
Route = Callable[[Any], tuple[str, Headers, bytes] | None]

H_TYPE = "exchange-type"
H_INQUIRY = "exchange-inquiry-id"
H_REPLY_TO = "exchange-reply-to"
#: The benchmark's own routing shortcut: the destination agency, so the relay needs no state.
H_FROM = "bench-from"
H_TO = "bench-to"

_BATCH_BYTES = 256 * 1024
#: aiokafka keeps one long-poll fetch in flight per broker, leaving out the partitions whose
#: records were still buffered when it was sent; records arriving on those wait until that
#: poll returns. A short poll bounds the wait (the default, 500 ms, costs several ms at p50).
FETCH_MAX_WAIT_MS = 20
_MAX_RECORDS = 2000


def header(headers: Sequence[tuple[str, bytes]], name: str) -> bytes | None:
    """The first value of header ``name`` (a linear scan: records carry a handful)."""
    for key, value in headers:
        if key == name:
            return value
    return None


def reply_headers(headers: Sequence[tuple[str, bytes]]) -> Headers:
    """A response's headers from its request's: type ``response``, ``from`` and ``to`` swapped."""
    swap = {H_TYPE: (H_TYPE, b"response")}
    if (sender := header(headers, H_FROM)) is not None:
        swap[H_TO] = (H_TO, sender)
    if (receiver := header(headers, H_TO)) is not None:
        swap[H_FROM] = (H_FROM, receiver)
    return [swap.get(key, (key, value)) for key, value in headers]


def payload(size: int) -> bytes:
    """A payload of ``size`` bytes that does not compress to nothing (compression is off)."""
    return (uuid.uuid4().bytes * (size // 16 + 1))[:size]


def client_options(env: ScenarioEnv) -> dict[str, Any]:
    """Connection options for every client of a scenario: the security settings come from
    the process's own ``EXCHANGE_*`` environment, so no secret travels on a command line."""
    return {"bootstrap_servers": env.bootstrap, **kafka_options(ExchangeSettings())}


def producer(env: ScenarioEnv) -> AIOKafkaProducer:
    """A producer tuned for batches: large batch builder, ``acks="all"``."""
    return AIOKafkaProducer(acks="all", max_batch_size=_BATCH_BYTES, **client_options(env))


def consumer(env: ScenarioEnv, role: str, *topics: str) -> AIOKafkaConsumer:
    """A consumer in the group ``<run_id>.<role>`` reading ``topics`` from their start."""
    return AIOKafkaConsumer(
        *topics,
        group_id=f"{env.run_id}.{role}",
        auto_offset_reset="earliest",
        fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
        **client_options(env),
    )


async def create_topics(env: ScenarioEnv, names: Sequence[str]) -> None:
    """Create ``names`` with ``env.partitions`` partitions each (single-node: replication 1)."""
    admin = AIOKafkaAdminClient(**client_options(env))
    try:
        await admin.start()
        topics = [NewTopic(n, num_partitions=env.partitions, replication_factor=1) for n in names]
        await admin.create_topics(topics)
        await _wait_for_leaders(admin, names)
    except (KafkaError, TimeoutError) as exc:
        raise BrokerError(f"cannot create benchmark topics at {env.bootstrap}: {exc}") from exc
    finally:
        await admin.close()


async def _wait_for_leaders(admin: AIOKafkaAdminClient, names: Sequence[str]) -> None:
    """Creation returns before every partition has a leader; writing earlier only earns
    retries and warnings, so wait until the broker describes each partition with one."""
    async with asyncio.timeout(30):
        while True:
            described = await admin.describe_topics(list(names))
            if all(
                t["error_code"] == 0
                and t["partitions"]
                and all(p["leader"] >= 0 for p in t["partitions"])
                for t in described
            ):
                return
            await asyncio.sleep(0.1)


async def delete_topics(env: ScenarioEnv, names: Sequence[str]) -> None:
    """Delete ``names``; failures are ignored (the names are unique to the run)."""
    admin = AIOKafkaAdminClient(**client_options(env))
    try:
        await admin.start()
        await admin.delete_topics(list(names))
    except KafkaError:
        pass
    finally:
        await admin.close()


class _Batches:
    """Per (topic, partition) batch builders; records keep their source partition."""

    def __init__(self, prod: AIOKafkaProducer) -> None:
        self._prod = prod
        self._open: dict[tuple[str, int], Any] = {}
        self._sent: list[asyncio.Future[Any]] = []

    async def add(
        self, topic: str, partition: int, key: bytes | None, value: bytes, hdrs: Headers
    ) -> None:
        dest = (topic, partition)
        batch = self._open.get(dest) or self._prod.create_batch()
        if batch.append(key=key, value=value, timestamp=None, headers=hdrs) is None:
            await self._send(dest, batch)
            batch = self._prod.create_batch()
            batch.append(key=key, value=value, timestamp=None, headers=hdrs)
        self._open[dest] = batch

    async def _send(self, dest: tuple[str, int], batch: Any) -> None:
        self._sent.append(await self._prod.send_batch(batch, dest[0], partition=dest[1]))

    async def flush(self) -> None:
        """Send every open batch and wait until the broker has acknowledged all of them."""
        for dest, batch in self._open.items():
            await self._send(dest, batch)
        self._open.clear()
        sent, self._sent = self._sent, []
        await asyncio.gather(*sent)


async def forward(
    cons: AIOKafkaConsumer, prod: AIOKafkaProducer, route: Route, stop: asyncio.Event
) -> None:
    """Consume in batches, route each record, produce in batches; until ``stop`` is set.

    Destination topics are co-partitioned with the source (same partition count, same keys),
    so a record keeps its partition number and no partitioner runs.
    """
    while not stop.is_set():
        polled = await cons.getmany(timeout_ms=100, max_records=_MAX_RECORDS)
        batches = _Batches(prod)
        for tp, records in polled.items():
            for rec in records:
                routed = route(rec)
                if routed is not None:
                    topic, hdrs, value = routed
                    await batches.add(topic, tp.partition, rec.key, value, hdrs)
        await batches.flush()


async def serve(
    env: ScenarioEnv, role: str, topics: Sequence[str], route: Route, stop: asyncio.Event
) -> None:
    """Run :func:`forward` from ``topics`` as consumer group ``role`` until ``stop``."""
    cons, prod = consumer(env, role, *topics), producer(env)
    await prod.start()
    await cons.start()
    try:
        await forward(cons, prod, route, stop)
    finally:
        await cons.stop()
        await prod.stop()


class RawRequester:
    """Sends each inquiry as one record and matches replies by key (the inquiry id)."""

    def __init__(self, prod: AIOKafkaProducer, topic: str, headers: Headers, value: bytes) -> None:
        self._prod = prod
        self._topic = topic
        self._headers = headers
        self._value = value
        self._waiting: dict[bytes, asyncio.Future[None]] = {}

    async def ask(self) -> None:
        """Send one request; return when the reply with the same key has arrived."""
        key = str(uuid.uuid4()).encode()
        done = asyncio.get_running_loop().create_future()
        self._waiting[key] = done
        try:
            hdrs = [(H_INQUIRY, key), *self._headers]
            delivery = await self._prod.send(self._topic, self._value, key=key, headers=hdrs)
            delivery.add_done_callback(lambda d: _fail_on_error(d, done))
            await done
        finally:
            self._waiting.pop(key, None)

    async def consume_replies(self, cons: AIOKafkaConsumer) -> None:
        """Complete the waiting ``ask()`` of every reply (runs as a task)."""
        while True:
            polled = await cons.getmany(timeout_ms=100, max_records=_MAX_RECORDS)
            for records in polled.values():
                for rec in records:
                    waiter = self._waiting.get(rec.key)
                    if waiter is not None and not waiter.done():
                        waiter.set_result(None)


def _fail_on_error(delivery: asyncio.Future[Any], done: asyncio.Future[None]) -> None:
    """A failed write fails its ``ask()`` instead of leaving it waiting forever."""
    if delivery.cancelled():
        return
    exc = delivery.exception()  # retrieved even when the reply came first, so none goes unseen
    if exc is not None and not done.done():
        done.set_exception(BrokerError(f"request not written: {exc}"))


@asynccontextmanager
async def raw_requester(
    env: ScenarioEnv, *, request_topic: str, reply_topic: str, headers: Headers
) -> AsyncIterator[RawRequester]:
    """A started :class:`RawRequester` reading ``reply_topic``; stopped on exit."""
    prod, cons = producer(env), consumer(env, "requester", reply_topic)
    await prod.start()
    await cons.start()
    requester = RawRequester(prod, request_topic, headers, payload(env.payload_bytes))
    replies = asyncio.create_task(requester.consume_replies(cons))
    try:
        yield requester
    finally:
        replies.cancel()
        await asyncio.gather(replies, return_exceptions=True)
        await cons.stop()
        await prod.stop()
