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

One Kafka transaction per partition per batch, partitions pipelined
    The fetch loop hands each fetched record to its partition number's buffer
    (:mod:`agents._engine_task`). Each partition number p runs its own sequence of
    transactions: as soon as p's previous one has committed, the processor turns everything
    buffered for p into output records and state writes, and p's producer sends the outputs,
    the changelog records of every state key touched and the consumed offsets and commits,
    all in one transaction (:mod:`agents._engine_txn`). So p's records keep their order and
    are committed once, p never waits for another partition's commit, and the records that
    arrive while p commits are p's next batch. The loop stops fetching while
    ``batch_max_records`` records wait. Outputs are queued
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
    revocation waits for each partition's transaction in flight, drops the records still
    buffered (they are fetched again from the committed offsets), closes the producers and parks
    the states; on assignment, a parked state is kept only if its changelog partition has not
    moved since this engine last wrote it, otherwise it is restored from the changelog. The
    assigned partitions stay paused until they are positioned at their committed offsets.
    aiokafka swallows listener exceptions; the engine records them and raises them from
    :meth:`Engine.run`.

Errors
    ``Processor.process`` should handle a bad record itself (e.g. emit it to a dead-letter
    topic). If it raises, its batch is rolled back and :meth:`Engine.run` raises
    :class:`~exchange.ProcessorError`: a worker exits non-zero, it never runs half-alive.
    :meth:`Engine.stop` lets each partition finish the transaction in flight and returns
    within about ``poll_interval`` seconds after they committed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Generic, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError, ProducerFenced

from agents._assignor import CopartitionedAssignor
from agents._engine_task import PartitionTask
from agents._engine_txn import (
    begin,
    default_partition,
    fatal_cause,
    route,
    stop_producer,
    transact,
)
from agents._engine_types import EngineConfig, EngineStats, InputRecord, OutputRecord, Processor
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
        self._tasks: dict[int, PartitionTask[V]] = {}
        self._parked: dict[int, PartitionTask[V]] = {}
        self._lock = asyncio.Lock()
        self._buffered = 0  # records buffered over all partitions
        self._committed = asyncio.Event()  # a partition's transaction ended: room to fetch
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
        """Ask :meth:`run` to finish the transactions in flight and return (signal-safe)."""
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
            await _cancel_lanes(tasks)  # only after a cancelled run; else they have ended
            if consumer is not None:
                await consumer.stop()  # leaves the group: the others take over at once
        finally:
            await asyncio.gather(*(stop_producer(t.producer, t.partition) for t in tasks))
            if restorer is not None:
                await restorer.stop()
            for number in owned:
                self._processor.on_revoked(number)

    # --- the fetch loop -----------------------------------------------------------------------

    async def _loop(self) -> None:
        cfg = self.config
        next_tick = time.monotonic() + cfg.tick_interval
        try:
            while not self._stopping.is_set():
                self._raise_failure()
                wait = max(0.0, min(cfg.poll_interval, next_tick - time.monotonic()))
                if self._buffered >= cfg.batch_max_records:
                    await self._wait_for_room(wait)
                else:
                    await self._fetch(wait, cfg.batch_max_records - self._buffered)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + cfg.tick_interval
                    self._tick_all()
        finally:
            # Each partition finishes the transaction in flight (stop, or another one failed).
            self._stopping.set()
            await asyncio.gather(*(t.lane for t in self._tasks.values() if t.lane is not None))
        self._raise_failure()

    async def _fetch(self, wait: float, room: int) -> None:
        try:
            batch = await self._consumer.getmany(timeout_ms=int(wait * 1000), max_records=room)
        except KafkaError as exc:
            raise BrokerError(f"fetch failed: {exc!r}") from exc
        if batch:
            self._dispatch(batch)

    def _dispatch(self, batch: Mapping[TopicPartition, list[Any]]) -> None:
        """Buffer fetched records by partition number and start the idle partitions' lanes.

        aiokafka hands out fetched records only if they follow the partition's position at
        that moment, and ``getmany`` returns in the same step as it takes them, so a batch
        never holds records from before a seek (a rewind, an assignment): nothing fetched is
        dropped here but the records of partitions just revoked.
        """
        touched = set()
        for tp, records in batch.items():
            task = self._tasks.get(tp.partition)
            if task is None:
                continue
            self._buffered += task.add(tp, records)
            touched.add(task)
        for task in touched:
            self._start_lane(task)

    async def _wait_for_room(self, wait: float) -> None:
        self._committed.clear()
        try:
            async with asyncio.timeout(wait):
                await self._committed.wait()
        except TimeoutError:
            pass

    def _tick_all(self) -> None:
        if self._lock.locked():  # partitions are being assigned: not all are positioned yet
            return
        for task in self._tasks.values():
            task.tick_due = True
            self._start_lane(task)

    def _raise_failure(self) -> None:
        if self._failure is not None:
            if isinstance(self._failure, ExchangeError):
                raise self._failure
            raise BrokerError(f"engine failed: {self._failure!r}") from self._failure

    def _fail(self, exc: BaseException) -> None:
        """Keep the first failure for :meth:`run` and stop every partition."""
        if self._failure is None:
            self._failure = exc
        self._stopping.set()

    # --- a partition's lane -------------------------------------------------------------------

    def _start_lane(self, task: PartitionTask[V]) -> None:
        if not task.busy and not self._stopping.is_set():
            task.lane = asyncio.create_task(self._lane(task), name=f"partition-{task.partition}")

    async def _lane(self, task: PartitionTask[V]) -> None:
        """Commit ``task``'s buffered records and due tick, one transaction after the other,
        until nothing is left, the partition is revoked or the engine stops."""
        try:
            while self._tasks.get(task.partition) is task and not self._stopping.is_set():
                # A due tick goes first: under steady load the buffer is never empty, and
                # deadlines must still fire on time.
                if task.tick_due:
                    task.tick_due = False
                    await self._tick(task, int(time.time() * 1000))
                elif task.buffered:
                    await self._space(task)
                    parts = task.take()
                    self._buffered -= sum(map(len, parts.values()))
                    await self._process(task, parts)
                else:
                    return
                self._committed.set()
        except Exception as exc:
            self._fail(exc)

    async def _space(self, task: PartitionTask[V]) -> None:
        """Wait until ``commit_interval`` has passed since the partition's last transaction
        began: under load its records gather into fewer, larger transactions."""
        delay = task.began + self.config.commit_interval - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task.began = time.monotonic()

    async def _process(
        self, task: PartitionTask[V], parts: dict[TopicPartition, list[Any]]
    ) -> None:
        started = time.perf_counter()
        records = [_input(r) for batch in parts.values() for r in batch]
        offsets = {tp: batch[-1].offset + 1 for tp, batch in parts.items()}
        outputs: list[OutputRecord] = []
        step = self.config.process_chunk
        for start in range(0, len(records), step):
            if start:
                await asyncio.sleep(0)  # a turn for the other partitions' transactions
            chunk = records[start : start + step]
            outputs += self._call(task, partial(self._run_process, chunk, task.state))
        if await self._commit(task, outputs, offsets):
            self.stats.records_in += len(records)
            if self._on_batch is not None:
                self._on_batch(time.perf_counter() - started)

    def _run_process(
        self, records: list[InputRecord], state: PartitionState[V]
    ) -> list[OutputRecord]:
        return list(self._processor.process(records, state))

    async def _tick(self, task: PartitionTask[V], now_ms: int) -> None:
        outputs = self._call(task, lambda: list(self._processor.on_tick(now_ms, task.state)))
        if outputs or task.state.dirty:
            await self._commit(task, outputs, {})

    def _call(
        self, task: PartitionTask[V], step: Callable[[], list[OutputRecord]]
    ) -> list[OutputRecord]:
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
        self,
        task: PartitionTask[V],
        outputs: list[OutputRecord],
        offsets: dict[TopicPartition, int],
    ) -> bool:
        """Produce, write state and commit offsets in one transaction; False if rolled back."""
        changes = [(key.encode(), self._encode(task, v)) for key, v in task.state.changes()]
        producer = task.producer
        changelog = (self.config.changelog_topic, task.partition)
        begun = False
        try:
            rows = await route(producer, outputs)
            rows.setdefault(changelog, []).extend((key, value, []) for key, value in changes)
            await begin(producer)
            begun = True
            sent = await transact(producer, rows, offsets, self.config.application_id)
        except Exception as exc:  # aiokafka also raises plain exceptions (IllegalOperation)
            await self._abort(task, exc, begun=begun)
            return False
        if rows[changelog]:
            future, count = sent[changelog][-1]
            task.changelog_end = future.result().offset + count + 1  # after the commit marker
        task.state.commit()
        task.committed.update(offsets)
        task.failures = 0
        stats = self.stats
        stats.transactions += 1
        stats.records_out += len(outputs)
        stats.state_writes += len(changes)
        return True

    def _encode(self, task: PartitionTask[V], value: V | None) -> bytes | None:
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

    async def _abort(self, task: PartitionTask[V], exc: Exception, *, begun: bool) -> None:
        """Undo a failed transaction: abort it, roll state back, rewind the inputs."""
        self.stats.aborts += 1
        task.state.rollback()
        task.changelog_end = None  # the abort marker moved the changelog's end
        cause = fatal_cause(task.producer) or exc
        if isinstance(cause, ProducerFenced):
            raise FencedError(f"partition {task.partition} was taken over") from cause
        if cause is not exc:
            raise BrokerError(f"producer of partition {task.partition} failed") from cause
        try:
            if begun:
                await task.producer.abort_transaction()
        except Exception as abort_exc:
            raise BrokerError(f"cannot abort on partition {task.partition}") from abort_exc
        self._buffered -= task.rewind()
        if self._tasks.get(task.partition) is task:  # a revoked partition is not ours to seek
            for tp, offset in task.committed.items():
                self._consumer.seek(tp, offset)
        task.failures += 1
        retriable = isinstance(exc, TimeoutError) or (isinstance(exc, KafkaError) and exc.retriable)
        if not retriable or task.failures > self.config.max_retries:
            raise BrokerError(f"transaction failed on partition {task.partition}: {exc!r}") from exc
        _log.warning("transaction aborted on partition %d, retrying: %r", task.partition, exc)

    # --- rebalancing --------------------------------------------------------------------------

    async def _guarded(self, step: Any) -> None:
        """Run a rebalance step; keep its failure for :meth:`run`, since aiokafka drops it."""
        try:
            await step
        except Exception as exc:
            _log.exception("rebalance step failed")
            self._fail(exc)

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        async with self._lock:
            numbers = sorted({tp.partition for tp in revoked} & self._tasks.keys())
            tasks = [self._tasks.pop(number) for number in numbers]
            # No longer in _tasks, each lane ends once its transaction in flight has ended.
            await asyncio.gather(*(t.lane for t in tasks if t.lane is not None))
            for task in tasks:
                self._buffered -= task.rewind()
                self._processor.on_revoked(task.partition)
                await stop_producer(task.producer, task.partition)
                self._parked[task.partition] = task

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        # Nothing is fetched from these partitions until they are positioned at their
        # committed offsets, read after fencing (aiokafka drops what it fetched meanwhile).
        self._consumer.pause(*assigned)
        try:
            await self._assign(assigned)
        finally:
            self._consumer.resume(*assigned)

    async def _assign(self, assigned: set[TopicPartition]) -> None:
        async with self._lock:
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
                self._tasks[number] = PartitionTask(number, producer, state, changelog_end=end)
                self._processor.on_assigned(state)
            await self._seek_committed(assigned)
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
            task = self._tasks[tp.partition]
            task.committed[tp] = task.next_offset[tp] = await self._consumer.position(tp)

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


def _input(rec: Any) -> InputRecord:
    return InputRecord(
        rec.topic, rec.partition, rec.offset, rec.timestamp, rec.key, rec.value, tuple(rec.headers)
    )


async def _cancel_lanes(tasks: list[PartitionTask[Any]]) -> None:
    lanes = [t.lane for t in tasks if t.lane is not None and not t.lane.done()]
    for lane in lanes:
        lane.cancel()
    await asyncio.gather(*lanes, return_exceptions=True)
