"""The client's reply reader: every partition of ``<prefix>.replies.<AGENCY>``, own outcomes only.

Reply routing. Every :class:`~exchange.ExchangeClient` instance has its own ``instance_id`` (a
uuid), sent as the ``exchange-reply-to`` header of each request; the stream workers copy it onto
the outcome they write to ``<prefix>.replies.<AGENCY>``. Each instance reads **every** partition
of that topic by manual assignment (no consumer group, so instances never steal partitions from
one another and a new instance needs no rebalance), starting from the end at start-up, with
``isolation_level="read_committed"`` (outcomes are written in the workers' transactions). It
compares the header and decodes only its own outcomes; the others are skipped unread.

Cost of that choice: with *N* instances of one agency, each reply is fetched *N* times, so
broker egress on the replies topic grows with *N* (cheap for the few to few dozen instances an
agency runs; a deployment with hundreds would give each instance its own replies partition
instead). Nothing is committed, so an outcome that arrives while no instance of its sender
runs is not delivered to anyone (it stays in ``replies`` and in the audit trail); an inquiry
whose caller stopped waiting ends locally as ``TIMED_OUT`` with ``Outcome.local`` set.

Durable outcomes (``durable="NAME"``, what requester connectors use). The reply-to is the
stable ``NAME`` instead of the random instance id, and the reader keeps its offsets in the
consumer group ``<prefix>.requester.<AGENCY>.<NAME>`` (still assigning every partition
itself: no rebalance), starting where it committed. An outcome's offset is committed only
after the caller called :meth:`ExchangeClient.acknowledge` for it (it stored the outcome), so
outcomes that arrive while the process is down are read after the restart. One outcome that
nobody waits for (sent by the previous run) is parked until the same inquiry id is sent
again, which then takes it at once instead of sending: see :mod:`exchange._durable`. Run one
process per ``NAME``: two would read each other's outcomes.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import structlog

from exchange._durable import ReplyLedger
from exchange._envelopes import OutcomeDecoder, header_is
from exchange._errors import BrokerError, CodecError
from exchange._outcome import Outcome
from exchange._replies import InFlight
from exchange._wire import HEADER_REPLY_TO

__all__ = ["ReplyReader"]

log = structlog.get_logger("exchange.client")


class ReplyReader:
    """Reads one agency's replies topic and settles this client's in-flight inquiries."""

    def __init__(
        self,
        *,
        agency: str,
        topic: str,
        reply_to: str,
        decoder: OutcomeDecoder,
        in_flight: InFlight,
        ledger: ReplyLedger | None,
        group: str | None,
        durable: str | None,
    ) -> None:
        self.agency = agency
        self.durable = durable
        self.topic = topic
        self.group = group
        self._reply_to = reply_to.encode("ascii")
        self._decoder = decoder
        self._in_flight = in_flight
        self._ledger = ledger
        self.consumer: Any = None

    def create(self, options: dict[str, Any], fetch_max_wait: float) -> None:
        """Make the (unstarted) consumer; in the group only in durable mode."""
        from aiokafka import AIOKafkaConsumer

        self.consumer = AIOKafkaConsumer(
            **options,
            group_id=self.group,
            enable_auto_commit=False,
            isolation_level="read_committed",
            fetch_max_wait_ms=round(fetch_max_wait * 1000),
        )

    async def assign_at_end(self, partitions: set[int] | None) -> None:
        """Assign every replies partition and resolve its end offset *before* any send, so no
        outcome of this instance can be written before the position the reader starts at."""
        from aiokafka import TopicPartition

        if not partitions:
            raise BrokerError(f"topic {self.topic} does not exist; run `exchange topics apply`")
        assigned = [TopicPartition(self.topic, p) for p in sorted(partitions)]
        self.consumer.assign(assigned)
        for tp in assigned:
            committed = await self.consumer.committed(tp) if self.group else None
            if committed is None:
                await self.consumer.seek_to_end(tp)
            else:  # durable: from the first outcome not acknowledged by the previous run
                self.consumer.seek(tp, committed)
            position = await self.consumer.position(tp)
            if self._ledger is not None:
                self._ledger.start(tp.partition, position)
        await self.commit()

    async def stop(self) -> None:
        """Stop the consumer, if there is one."""
        if self.consumer is not None:
            await self.consumer.stop()

    async def run(self) -> None:
        """Read until cancelled; on any other failure, fail every caller and raise."""
        reply_to, in_flight, ledger = self._reply_to, self._in_flight, self._ledger
        try:
            while True:
                batches = await self.consumer.getmany(timeout_ms=1000, max_records=2000)
                if ledger is not None:
                    self._read_durably(batches, ledger)
                    await self.commit()
                    continue
                for records in batches.values():
                    for record in records:
                        if header_is(record.headers, HEADER_REPLY_TO, reply_to):
                            self._deliver(record, in_flight)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("reply reader stopped", agency=self.agency)
            in_flight.fail_all(BrokerError(f"the reply reader stopped: {exc}"))
            raise

    def _deliver(self, record: Any, in_flight: InFlight) -> None:
        outcome = self._decode(record, in_flight)
        if outcome is not None:
            in_flight.settle(str(outcome.inquiry_id), outcome)

    def _decode(self, record: Any, in_flight: InFlight) -> Outcome | None:
        """The outcome in a replies ``record`` (aiokafka's), or None if it does not decode."""
        key = record.key
        inquiry_id = key.decode("ascii", "replace") if key else None
        elapsed = in_flight.elapsed(inquiry_id) if inquiry_id else None
        try:
            return self._decoder.decode(record.value, elapsed=elapsed, headers=record.headers)
        except CodecError as exc:
            # An outcome addressed to us that we cannot read (a bug in its writer, or a schema
            # newer than this SDK): its caller gets the error now rather than a local timeout.
            log.error(  # noqa: TRY400 - no traceback: its text could quote payload values
                "undecodable outcome",
                agency=self.agency,
                inquiry_id=inquiry_id,
                error_type=type(exc).__name__,
            )
            if inquiry_id is not None:
                in_flight.fail(inquiry_id, exc)
            return None

    def _read_durably(self, batches: dict[Any, list[Any]], ledger: ReplyLedger) -> None:
        """Hold our outcomes until acknowledged; park those nobody waits for yet."""
        now = time.monotonic()
        for tp, records in batches.items():
            for record in records:
                if not header_is(record.headers, HEADER_REPLY_TO, self._reply_to):
                    ledger.seen(tp.partition, record.offset)
                    continue
                key = record.key.decode("ascii") if record.key else ""
                ledger.hold(tp.partition, record.offset, key)
                outcome = self._decode(record, self._in_flight)
                if outcome is None:
                    ledger.acknowledge(key)  # nothing to store: do not stall the commits
                elif not self._in_flight.settle(key, outcome):
                    ledger.park(key, outcome, now)  # its caller acknowledges it once stored
        for key in ledger.expire(now):
            log.info("unclaimed outcome released", agency=self.agency, inquiry_id=key)

    async def commit(self) -> None:
        """Commit what the ledger allows (durable mode only)."""
        from aiokafka import TopicPartition
        from aiokafka.errors import KafkaError

        if self._ledger is None or self.consumer is None:
            return
        offsets = self._ledger.to_commit()
        if not offsets:
            return
        try:
            await self.consumer.commit(
                {TopicPartition(self.topic, p): o for p, o in offsets.items()}
            )
        except KafkaError as exc:  # the next round tries again; a restart re-reads, no loss
            self._ledger.commit_failed(offsets)
            log.warning("reply offsets not committed", durable=self.durable, error=str(exc))
