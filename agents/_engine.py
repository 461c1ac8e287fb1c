"""A lean, batched, transactional stream-processing engine on aiokafka.

The engine moves bytes; a :class:`Processor` decides. It knows nothing of inquiries.

Unit of work
    A *partition number* p. Every input topic has partition p holding the same keys
    (producers hash the same key with the same default partitioner onto topics with the same
    partition count), the :class:`~agents._assignor.CopartitionedAssignor` gives partition p of
    every input topic to one group member, and the state of those keys lives in memory in a
    :class:`~agents._state_store.PartitionState` backed by partition p of a compacted changelog
    topic. Input topics are a fixed list or a regex (``topic_pattern``), so a new
    ``out.<agency>`` topic joins without a restart.

One Kafka transaction per partition per batch
    ``getmany`` returns up to ``batch_max_records`` records; for each partition number p in it
    the processor turns p's records into output records and state writes, and p's producer
    sends the outputs, the changelog records of every state key touched and the consumed
    offsets (``send_offsets_to_transaction``) and commits, all in one transaction. The
    partitions of a batch commit concurrently, each on its own producer; outputs are queued
    with aiokafka's batch API (one record batch per topic partition, no per-record await or
    future). Consumers read at
    ``read_committed`` with auto-commit off, so outputs, state and progress become visible
    together or not at all. If a transaction fails, the engine aborts it, puts p's in-memory
    state back (an undo log equal to the changelog's committed records) and rewinds p's inputs
    to the last committed offsets; retriable Kafka errors are retried that way
    (``max_retries`` times in a row), anything else stops the engine loudly.

Timers
    Every ``tick_interval`` seconds, even on a quiet topic, ``Processor.on_tick`` runs for each
    owned partition on wall-clock time; its outputs and state writes commit in a transaction of
    that partition's producer, like a batch without offsets.

Fencing: one transactional id per partition number
    aiokafka 0.14 sends ``TxnOffsetCommit`` v0, without the consumer group's generation and
    member id, so the broker cannot fence a zombie by group membership (KIP-447). The engine
    therefore uses the older model Kafka Streams used before KIP-447: the transactional id
    ``<transactional_id_prefix>-<p>`` belongs to partition number p, not to a worker. A new
    owner of p starts p's producer (``InitProducerId``) **before** it reads p's committed
    offsets and changelog: that bumps the producer epoch, aborts the previous owner's open
    transaction and fences it, so a zombie can neither commit late outputs nor move p's
    offsets, and the new owner never reads a half-written state. A fenced engine raises
    :class:`~exchange.FencedError` and stops. The cost is one producer per owned partition.

Partitioning of outputs
    An :class:`OutputRecord` without a partition goes where the default (murmur2) partitioner
    puts its key, the same rule every producer of the bus uses, so an output keyed by the same
    key lands on partition p of a topic with the same partition count. A processor may set
    ``partition`` explicitly (e.g. the input's partition). Changelog records always go to
    partition p.

Rebalances
    aiokafka rebalances eagerly: every partition is revoked, then the new set assigned. The
    revocation waits for the batch in flight to commit (a lock), closes the producers and parks
    the states; on assignment, a parked state is kept only if its changelog partition has not
    moved since this engine last wrote it, otherwise it is restored from the changelog. A batch
    fetched across a rebalance is dropped (its partitions were rewound to the committed
    offsets). aiokafka swallows listener exceptions; the engine records them and raises them
    from :meth:`Engine.run`.

Errors
    ``Processor.process`` should handle a bad record itself (e.g. emit it to a dead-letter
    topic). If it raises, its batch is rolled back and :meth:`Engine.run` raises
    :class:`~exchange.ProcessorError`: a worker exits non-zero, it never runs half-alive.
    :meth:`Engine.stop` finishes the batch in flight, commits it and returns within about
    ``poll_interval`` seconds.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, ProducerFenced
from aiokafka.partitioner import murmur2

from agents._assignor import CopartitionedAssignor
from agents._state_store import BytesCodec, PartitionState, StateCodec, restore_partitions
from exchange._errors import BrokerError, ConfigError, ExchangeError, FencedError, ProcessorError

__all__ = [
    "Engine",
    "EngineConfig",
    "EngineStats",
    "InputRecord",
    "OutputRecord",
    "Processor",
    "default_partition",
]

V = TypeVar("V")
_log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One consumed record, as the processor sees it."""

    topic: str
    partition: int
    offset: int
    timestamp: int  # milliseconds since the epoch
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One record to produce; ``partition=None`` means the default partitioner by key."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    partition: int | None = None


class Processor(Protocol[V]):
    """What the engine runs: plain synchronous callables, called one at a time.

    ``process`` and ``on_tick`` must not block; they read and write ``state`` and return the
    records to produce. A record the processor cannot handle is its own business (route it to a
    dead-letter topic as an output); an exception escaping them rolls the batch back and stops
    the engine with :class:`~exchange.ProcessorError`.
    """

    def on_assigned(self, state: PartitionState[V]) -> None:
        """Partition ``state.partition`` is now owned; ``state`` holds its restored keys."""
        ...

    def on_revoked(self, partition: int) -> None:
        """Partition ``partition`` is no longer owned; its state is gone."""
        ...

    def process(
        self, records: Sequence[InputRecord], state: PartitionState[V]
    ) -> Iterable[OutputRecord]:
        """Turn a batch of one partition number's records into outputs, writing ``state``."""
        ...

    def on_tick(self, now_ms: int, state: PartitionState[V]) -> Iterable[OutputRecord]:
        """Wall-clock timer for one owned partition (fire deadlines, expire old keys)."""
        ...


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """How the engine connects and batches; durations in seconds."""

    bootstrap_servers: str
    application_id: str  # the consumer group; also the default transactional id prefix
    changelog_topic: str
    topics: tuple[str, ...] = ()
    topic_pattern: str | None = None  # regex; new matching topics join on the next refresh
    transactional_id_prefix: str | None = None
    batch_max_records: int = 1000
    poll_interval: float = 0.1  # longest wait for records before ticks and stop are checked
    # Longest a fetch waits at the broker. aiokafka keeps one fetch in flight per broker and
    # leaves out partitions that still hold buffered records, so records arriving on those
    # wait for the fetch in flight: its wait bounds the hop's added latency (default 0.5 s).
    fetch_max_wait: float = 0.1
    tick_interval: float = 1.0
    linger: float = 0.005
    max_batch_bytes: int = 512 * 1024  # per partition; a batch of outputs fits in one request
    transaction_timeout: float = 60.0
    session_timeout: float = 10.0
    topic_refresh_interval: float = 30.0
    restore_timeout: float = 120.0
    max_retries: int = 5  # failed transactions in a row before the engine gives up
    auto_offset_reset: Literal["earliest", "latest"] = "earliest"
    client_options: Mapping[str, Any] = field(default_factory=dict)  # security, passed to all

    def __post_init__(self) -> None:
        if bool(self.topics) == bool(self.topic_pattern):
            raise ConfigError("give the engine either topics or topic_pattern, not both")

    @property
    def transactional_prefix(self) -> str:
        """The prefix of every partition's transactional id."""
        return self.transactional_id_prefix or self.application_id


@dataclass(slots=True)
class EngineStats:
    """Counters since start, for logs, metrics and benchmarks."""

    records_in: int = 0
    records_out: int = 0
    state_writes: int = 0
    transactions: int = 0
    aborts: int = 0
    restores: int = 0


@dataclass(slots=True)
class _Task(Generic[V]):
    """Everything the engine holds for one owned partition number."""

    partition: int
    producer: Any
    state: PartitionState[V]
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    changelog_end: int | None = None  # end offset after our last changelog write, if known


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, engine: Engine[Any]) -> None:
        self._engine = engine

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._engine._guarded(self._engine._on_revoked(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._engine._guarded(self._engine._on_assigned(assigned))


class Engine(Generic[V]):
    """Run a :class:`Processor` over input topics with one transaction per partition batch."""

    def __init__(
        self,
        config: EngineConfig,
        processor: Processor[V],
        codec: StateCodec[V] | None = None,
        *,
        on_batch: Callable[[float], None] | None = None,
    ) -> None:
        """``on_batch`` is given the seconds each committed batch of input records took, from
        handing it to the processor to the commit of its transaction (a histogram's
        ``observe``)."""
        self.config = config
        self.stats = EngineStats()
        self._on_batch = on_batch
        self._processor = processor
        self._codec: StateCodec[V] = codec if codec is not None else BytesCodec()  # type: ignore[assignment]  # bytes state by default
        self._tasks: dict[int, _Task[V]] = {}
        self._parked: dict[int, _Task[V]] = {}
        self._lock = asyncio.Lock()
        self._epoch = 0
        self._failures = 0
        self._failure: BaseException | None = None
        self._stopping = asyncio.Event()
        self._consumer: Any = None
        self._restorer: Any = None
        self._changelog_partitions = 0

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def assigned_partitions(self) -> frozenset[int]:
        """The partition numbers this engine owns right now."""
        return frozenset(self._tasks)

    @property
    def assignment(self) -> frozenset[TopicPartition]:
        """The input topic partitions this engine owns right now."""
        return frozenset(tp for task in self._tasks.values() for tp in task.committed)

    async def __aenter__(self) -> Engine[V]:
        await self.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect, check the changelog topic and join the consumer group."""
        if self._consumer is not None:
            return
        cfg = self.config
        self._restorer = AIOKafkaConsumer(
            bootstrap_servers=cfg.bootstrap_servers,
            isolation_level="read_committed",
            enable_auto_commit=False,
            **cfg.client_options,
        )
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=cfg.bootstrap_servers,
            group_id=cfg.application_id,
            isolation_level="read_committed",
            enable_auto_commit=False,
            auto_offset_reset=cfg.auto_offset_reset,
            fetch_max_wait_ms=round(cfg.fetch_max_wait * 1000),
            partition_assignment_strategy=(CopartitionedAssignor,),
            session_timeout_ms=int(cfg.session_timeout * 1000),
            heartbeat_interval_ms=int(cfg.session_timeout * 1000 / 3),
            metadata_max_age_ms=int(cfg.topic_refresh_interval * 1000),
            **cfg.client_options,
        )
        try:
            await self._restorer.start()
            self._changelog_partitions = await self._count_partitions(cfg.changelog_topic)
            await self._consumer.start()
            listener = _Rebalance(self)
            if cfg.topic_pattern:
                self._consumer.subscribe(pattern=cfg.topic_pattern, listener=listener)
            else:
                self._consumer.subscribe(topics=list(cfg.topics), listener=listener)
        except KafkaError as exc:
            await self.close()
            raise BrokerError(f"cannot start the engine: {exc!r}") from exc
        except BaseException:
            await self.close()
            raise

    def stop(self) -> None:
        """Ask :meth:`run` to finish the batch in flight, commit and return (signal-safe)."""
        self._stopping.set()

    async def run(self) -> None:
        """Process until :meth:`stop`; raise if the processor or Kafka fails for good."""
        await self.start()
        try:
            await self._loop()
        finally:
            await self.close()

    async def close(self) -> None:
        """Leave the group and close every client; idempotent. An engine runs only once."""
        consumer, self._consumer = self._consumer, None
        restorer, self._restorer = self._restorer, None
        tasks = [*self._tasks.values(), *self._parked.values()]
        owned = list(self._tasks)
        self._tasks.clear()
        self._parked.clear()
        try:
            if consumer is not None:
                await consumer.stop()  # leaves the group: the others take over at once
        finally:
            await asyncio.gather(*(_stop_producer(task) for task in tasks))
            if restorer is not None:
                await restorer.stop()
            for number in owned:
                self._processor.on_revoked(number)

    # --- the loop -----------------------------------------------------------------------------

    async def _loop(self) -> None:
        cfg = self.config
        next_tick = time.monotonic() + cfg.tick_interval
        while not self._stopping.is_set():
            self._raise_failure()
            epoch = self._epoch
            wait = max(0.0, min(cfg.poll_interval, next_tick - time.monotonic()))
            try:
                batch = await self._consumer.getmany(
                    timeout_ms=int(wait * 1000), max_records=cfg.batch_max_records
                )
            except KafkaError as exc:
                raise BrokerError(f"fetch failed: {exc!r}") from exc
            async with self._lock:
                self._raise_failure()
                if batch and epoch == self._epoch:
                    await self._run_batch(batch)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + cfg.tick_interval
                    await self._run_ticks()
        self._raise_failure()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            if isinstance(self._failure, ExchangeError):
                raise self._failure
            raise BrokerError(f"rebalance failed: {self._failure!r}") from self._failure

    async def _run_batch(self, batch: Mapping[TopicPartition, list[Any]]) -> None:
        by_number: dict[int, dict[TopicPartition, list[Any]]] = {}
        for tp, records in batch.items():
            by_number.setdefault(tp.partition, {})[tp] = records
        await _settle(
            self._process(self._tasks[number], parts) for number, parts in by_number.items()
        )

    async def _run_ticks(self) -> None:
        now_ms = int(time.time() * 1000)
        await _settle(self._tick(task, now_ms) for task in self._tasks.values())

    async def _process(self, task: _Task[V], parts: dict[TopicPartition, list[Any]]) -> None:
        started = time.perf_counter()
        records = [_input(r) for batch in parts.values() for r in batch]
        offsets = {tp: batch[-1].offset + 1 for tp, batch in parts.items()}
        outputs = self._call(task, lambda: list(self._processor.process(records, task.state)))
        if await self._commit(task, outputs, offsets):
            self.stats.records_in += len(records)
            if self._on_batch is not None:
                self._on_batch(time.perf_counter() - started)

    async def _tick(self, task: _Task[V], now_ms: int) -> None:
        outputs = self._call(task, lambda: list(self._processor.on_tick(now_ms, task.state)))
        if outputs or task.state.dirty:
            await self._commit(task, outputs, {})

    def _call(self, task: _Task[V], step: Callable[[], list[OutputRecord]]) -> list[OutputRecord]:
        try:
            result = step()
        except Exception as exc:
            task.state.rollback()
            raise ProcessorError(
                f"processor failed on partition {task.partition}: {exc!r}", partition=task.partition
            ) from exc
        return result

    # --- transactions -------------------------------------------------------------------------

    async def _commit(
        self, task: _Task[V], outputs: list[OutputRecord], offsets: dict[TopicPartition, int]
    ) -> bool:
        """Produce, write state and commit offsets in one transaction; False if rolled back."""
        changes = [(key.encode(), self._encode(task, v)) for key, v in task.state.changes()]
        producer = task.producer
        changelog = (self.config.changelog_topic, task.partition)
        begun = False
        try:
            rows = await _route(producer, outputs)
            rows.setdefault(changelog, []).extend((key, value, []) for key, value in changes)
            await producer.begin_transaction()
            begun = True
            sent = {
                where: await _send_rows(producer, where, batch) for where, batch in rows.items()
            }
            await _settle(future for batches in sent.values() for future, _ in batches)
            if offsets:
                await producer.send_offsets_to_transaction(offsets, self.config.application_id)
            await producer.commit_transaction()
        except Exception as exc:  # aiokafka also raises plain exceptions (IllegalOperation)
            await self._abort(task, exc, begun=begun)
            return False
        if rows[changelog]:
            future, count = sent[changelog][-1]
            task.changelog_end = future.result().offset + count + 1  # after the commit marker
        task.state.commit()
        task.committed.update(offsets)
        self._failures = 0
        stats = self.stats
        stats.transactions += 1
        stats.records_out += len(outputs)
        stats.state_writes += len(changes)
        return True

    def _encode(self, task: _Task[V], value: V | None) -> bytes | None:
        if value is None:
            return None
        try:
            return self._codec.encode(value)
        except Exception as exc:
            task.state.rollback()
            raise ProcessorError(
                f"state codec failed on partition {task.partition}: {exc!r}",
                partition=task.partition,
            ) from exc

    async def _abort(self, task: _Task[V], exc: Exception, *, begun: bool) -> None:
        """Undo a failed transaction: abort it, roll state back, rewind the inputs."""
        self.stats.aborts += 1
        task.state.rollback()
        task.changelog_end = None  # the abort marker moved the changelog's end
        cause = _fatal_cause(task.producer) or exc
        if isinstance(cause, ProducerFenced):
            raise FencedError(f"partition {task.partition} was taken over") from cause
        if cause is not exc:
            raise BrokerError(f"producer of partition {task.partition} failed") from cause
        try:
            if begun:
                await task.producer.abort_transaction()
        except Exception as abort_exc:
            raise BrokerError(f"cannot abort on partition {task.partition}") from abort_exc
        for tp, offset in task.committed.items():
            self._consumer.seek(tp, offset)
        self._failures += 1
        retriable = isinstance(exc, TimeoutError) or (isinstance(exc, KafkaError) and exc.retriable)
        if not retriable or self._failures > self.config.max_retries:
            raise BrokerError(f"transaction failed on partition {task.partition}: {exc!r}") from exc
        _log.warning("transaction aborted on partition %d, retrying: %r", task.partition, exc)

    # --- rebalancing --------------------------------------------------------------------------

    async def _guarded(self, step: Any) -> None:
        """Run a rebalance step; keep its failure for :meth:`run`, since aiokafka drops it."""
        try:
            await step
        except Exception as exc:
            _log.exception("rebalance step failed")
            if self._failure is None:
                self._failure = exc
            self._stopping.set()

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:
            self._epoch += 1
            for number in {tp.partition for tp in revoked} & self._tasks.keys():
                task = self._tasks.pop(number)
                self._processor.on_revoked(number)
                await _stop_producer(task)
                self._parked[number] = task

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        async with self._lock:
            self._epoch += 1
            numbers = {tp.partition for tp in assigned}
            if numbers and max(numbers) >= self._changelog_partitions:
                raise ConfigError(
                    f"{self.config.changelog_topic} has {self._changelog_partitions} partitions, "
                    f"fewer than the input topics ({max(numbers) + 1})"
                )
            new = sorted(numbers - self._tasks.keys())
            producers = await asyncio.gather(*(self._start_producer(n) for n in new))
            states = await self._restore(new)
            self._parked.clear()
            for number, producer in zip(new, producers, strict=True):
                state, end = states[number]
                task = _Task(number, producer, state, changelog_end=end)
                self._tasks[number] = task
                self._processor.on_assigned(state)
            await self._seek_committed(assigned)
            self._epoch += 1
            _log.info("assigned partitions %s", sorted(numbers))

    async def _start_producer(self, number: int) -> Any:
        """Start partition ``number``'s producer: this fences its previous owner."""
        cfg = self.config
        producer = AIOKafkaProducer(
            bootstrap_servers=cfg.bootstrap_servers,
            transactional_id=f"{cfg.transactional_prefix}-{number}",
            transaction_timeout_ms=int(cfg.transaction_timeout * 1000),
            linger_ms=int(cfg.linger * 1000),
            max_batch_size=cfg.max_batch_bytes,
            **cfg.client_options,
        )
        await producer.start()
        return producer

    async def _restore(self, numbers: list[int]) -> dict[int, tuple[PartitionState[V], int]]:
        """Each partition's state: the parked one if the changelog did not move, else restored.

        Called after the partitions' producers started, so no transaction of a previous owner
        is open and the ``read_committed`` end offsets are final.
        """
        topic = self.config.changelog_topic
        ends = await self._restorer.end_offsets([TopicPartition(topic, n) for n in numbers])
        result: dict[int, tuple[PartitionState[V], int]] = {}
        stale = []
        for number in numbers:
            parked = self._parked.get(number)
            end: int = ends[TopicPartition(topic, number)]
            if parked is not None and parked.changelog_end == end:
                result[number] = (parked.state, end)
            else:
                stale.append(number)
        try:
            async with asyncio.timeout(self.config.restore_timeout):
                restored = await restore_partitions(self._restorer, topic, stale, self._codec)
        except TimeoutError as exc:
            raise BrokerError(f"{topic} not restored in {self.config.restore_timeout:g} s") from exc
        for number in stale:
            end = ends[TopicPartition(topic, number)]
            result[number] = (PartitionState(number, restored[number]), end)
        self.stats.restores += len(stale)
        return result

    async def _seek_committed(self, assigned: set[TopicPartition]) -> None:
        """Position every input at its committed offset, read after fencing."""
        ordered = sorted(assigned)
        committed = await asyncio.gather(*(self._consumer.committed(tp) for tp in ordered))
        for tp, offset in zip(ordered, committed, strict=True):
            if offset is None:
                await self._reset(tp)
            else:
                self._consumer.seek(tp, offset)
            self._tasks[tp.partition].committed[tp] = await self._consumer.position(tp)

    async def _reset(self, tp: TopicPartition) -> None:
        if self.config.auto_offset_reset == "earliest":
            await self._consumer.seek_to_beginning(tp)
        else:
            await self._consumer.seek_to_end(tp)

    async def _count_partitions(self, topic: str) -> int:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=self.config.bootstrap_servers, **self.config.client_options
        )
        await admin.start()
        try:
            described = await admin.describe_topics([topic])
        finally:
            await admin.close()
        if not described or described[0]["error_code"] != 0 or not described[0]["partitions"]:
            raise ConfigError(f"changelog topic {topic} does not exist")
        return len(described[0]["partitions"])


_Row = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


async def _route(producer: Any, outputs: list[OutputRecord]) -> dict[tuple[str, int], list[_Row]]:
    """Group outputs by topic partition; records without one go where the key hashes to.

    The rule is aiokafka's and the Java client's default partitioner (murmur2 of the key bytes,
    random for a null key), so the engine and every producer of the bus agree on placement.
    """
    # Only records without a partition need the count (the bus gives every output one).
    unplaced = {o.topic for o in outputs if o.partition is None}
    counts = {topic: len(await producer.partitions_for(topic)) for topic in unplaced}
    rows: dict[tuple[str, int], list[_Row]] = {}
    for o in outputs:
        partition = o.partition
        if partition is None:
            partition = default_partition(o.key, counts[o.topic])
        rows.setdefault((o.topic, partition), []).append((o.key, o.value, list(o.headers)))
    return rows


async def _send_rows(
    producer: Any, where: tuple[str, int], rows: list[_Row]
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


async def _settle(awaitables: Iterable[Awaitable[Any]]) -> None:
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


def _input(rec: Any) -> InputRecord:
    return InputRecord(
        rec.topic, rec.partition, rec.offset, rec.timestamp, rec.key, rec.value, tuple(rec.headers)
    )


def _fatal_cause(producer: Any) -> BaseException | None:
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


async def _stop_producer(task: _Task[Any]) -> None:
    try:
        await task.producer.stop()
    except Exception:  # closing after a failure: report, keep closing the others
        _log.warning("producer of partition %d did not stop cleanly", task.partition, exc_info=True)
