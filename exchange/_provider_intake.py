"""The provider's intake: ``in`` records to the responder, concurrently, committed without gaps.

Delivery: at least once. Records are handled concurrently (at most ``concurrency`` at once)
and finish out of order; an offset is committed only when every record before it in its
partition has its response acknowledged by Kafka (``acks=all``), at most every
:data:`COMMIT_INTERVAL`, and at once before partitions move away in a rebalance.

Pausing stops fetching (records already buffered are dropped by the consumer and fetched again
later; nothing piles up in memory); handlers in progress go on, and a rebalance while paused
keeps the newly assigned partitions paused.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from exchange._errors import BrokerError
from exchange._intake import OffsetTracker
from exchange._kafka import translate_kafka_error
from exchange._provider_answer import Responder

__all__ = ["COMMIT_INTERVAL", "Intake"]

log = structlog.get_logger("exchange.provider")

#: How often intake commits the offsets of answered records, s.
COMMIT_INTERVAL = 0.2


class Intake:
    """One provider's consumer loop: a task per record, a semaphore, an offset tracker."""

    def __init__(self, agency: str, responder: Responder, concurrency: int) -> None:
        self.agency = agency
        self._responder = responder
        self._concurrency = concurrency
        #: The provider's consumer while it runs (it starts and stops it).
        self.consumer: Any = None
        self.paused = False
        #: Why intake stopped on its own (Kafka failed under a record), or None.
        self.failure: BaseException | None = None
        self.stopping = asyncio.Event()
        self._tracker: OffsetTracker[Any] = OffsetTracker()
        self._slots = asyncio.Semaphore(concurrency)
        self._tasks: set[asyncio.Task[None]] = set()

    def reset(self) -> None:
        """Before a (re)start: not stopping, no failure."""
        self.stopping.clear()
        self.failure = None

    async def run(self) -> None:
        """Take records until :attr:`stopping` is set; raise if Kafka fails."""
        from aiokafka.errors import KafkaError

        consumer = self.consumer
        next_commit = 0.0
        while not self.stopping.is_set():
            try:
                batches = await consumer.getmany(timeout_ms=200, max_records=self._concurrency)
            except KafkaError as exc:
                what = f"the {self.agency} provider cannot read"
                raise translate_kafka_error(exc, what) from exc
            for tp, records in batches.items():
                for record in records:
                    await self._slots.acquire()
                    self._raise_failure()
                    self._tracker.start(tp, record.offset)
                    task = asyncio.create_task(self._take(tp, record))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            # At most every COMMIT_INTERVAL: under load each poll returns a few records, and
            # an OffsetCommit round trip per poll cost more than the answers (at least once
            # either way; a revocation or stop commits at once).
            if time.monotonic() >= next_commit:
                await self.commit()
                next_commit = time.monotonic() + COMMIT_INTERVAL
            self._raise_failure()

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109 - a grace period, then cancel
        """Let records in progress finish for ``timeout`` s, cancel the rest; commit if sound."""
        if self._tasks:
            _done, pending = await asyncio.wait(set(self._tasks), timeout=timeout)
            for task in pending:
                task.cancel()
        if self.failure is None:
            await self.commit()

    def pause(self) -> None:
        """Stop fetching (also partitions assigned later)."""
        self.paused = True
        if self.consumer is not None:
            self.consumer.pause(*self.consumer.assignment())

    def resume(self) -> None:
        """Fetch again."""
        self.paused = False
        if self.consumer is not None:
            self.consumer.resume(*self.consumer.assignment())

    def _raise_failure(self) -> None:
        if self.failure is not None:
            raise BrokerError(f"the {self.agency} provider stopped: {self.failure}") from (
                self.failure
            )

    async def commit(self) -> None:
        """Commit every offset whose records (and all before them) are answered."""
        from aiokafka.errors import KafkaError

        offsets = self._tracker.committable()
        if not offsets or self.consumer is None:
            return
        try:
            await self.consumer.commit(offsets)
        except KafkaError as exc:
            # A rebalance took the partition: its records are redelivered to the new owner.
            log.warning("offset commit failed", agency=self.agency, error=str(exc))

    async def _take(self, tp: Any, record: Any) -> None:
        try:
            await self._responder.handle(record)
            self._tracker.finish(tp, record.offset)
        except Exception as exc:  # Kafka failed under us: stop, leave the offset uncommitted
            log.exception("provider failed", agency=self.agency)
            self.failure = exc
            self.stopping.set()
        finally:
            self._slots.release()

    def listener(self) -> Any:
        """The rebalance listener: commit what is done before partitions move away, then
        forget them; keep newly assigned partitions paused while paused."""
        from aiokafka import ConsumerRebalanceListener

        intake = self

        class Revocations(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
            async def on_partitions_revoked(self, revoked: Any) -> None:
                await intake.commit()
                for tp in revoked:
                    intake._tracker.drop(tp)

            async def on_partitions_assigned(self, assigned: Any) -> None:
                if intake.paused:  # a rebalance must not un-pause intake
                    intake.consumer.pause(*assigned)

        return Revocations()
