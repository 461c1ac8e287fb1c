"""The demo's own reader of what the bus delivered: replies, audit and dead letters.

It reads every partition of the requesters' ``replies`` topics, of ``audit`` and of ``dlq``
(no consumer group, ``read_committed``, as a client does), from the ends they had before the
workload started, and feeds each record to the :class:`~exchange.demo._tally.Tally`. Counting
on the topics themselves, rather than trusting what the clients' futures saw, is what lets
the summary say that no outcome was delivered twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import Any

from exchange._codec import Codec
from exchange._errors import BrokerError
from exchange._settings import ExchangeSettings
from exchange._topic_reader import assign_all, group_free_consumer
from exchange._topology import Topics
from exchange._wire import AUDIT_RECORD, HEADER_DLQ_REASON, INQUIRY_OUTCOME, header_value
from exchange.demo._tally import Reply, Tally

__all__ = ["Observer"]


class Observer:
    """Feeds a tally from the replies topics of ``agencies``, the audit and the DLQ."""

    def __init__(
        self, settings: ExchangeSettings, agencies: Iterable[str], codec: Codec, tally: Tally
    ) -> None:
        topics = Topics.for_settings(settings)
        self._settings = settings
        self._replies = {topics.replies(agency) for agency in agencies}
        self._audit = topics.audit
        self._dlq = topics.dlq
        self._codec = codec
        self._outcome = codec.store.get(INQUIRY_OUTCOME)
        self._audit_schema = codec.store.get(AUDIT_RECORD)
        self._tally = tally
        self._consumer: Any = None
        self._assigned: list[Any] = []
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Assign every partition at its current end; return once positions are fixed."""
        from aiokafka.errors import KafkaError

        self._consumer = group_free_consumer(self._settings, fetch_max_wait_ms=100)
        topics = sorted({*self._replies, self._audit, self._dlq})
        try:
            await self._consumer.start()
            self._assigned = await assign_all(
                self._settings, self._consumer, topics, from_beginning=False
            )
        except KafkaError as exc:
            await self.close()
            raise BrokerError(f"cannot read the bus's topics: {exc}") from exc
        except BaseException:  # cancelled while starting: do not leave the consumer open
            await self.close()
            raise
        self._reader = asyncio.create_task(self._read(), name="demo-observer")

    async def _read(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=500, max_records=5000)
            self._take(batches)

    def _take(self, batches: dict[Any, list[Any]]) -> None:
        now = time.monotonic()
        for tp, records in batches.items():
            if tp.topic in self._replies:
                for record in records:
                    self._reply(record, now)
            elif tp.topic == self._audit:
                for record in records:
                    self._audited(record)
            else:
                for record in records:
                    reason = header_value(record.headers, HEADER_DLQ_REASON)
                    self._tally.record_dead_letter(reason.decode() if reason else "unknown")

    def _reply(self, record: Any, now: float) -> None:
        outcome = self._codec.decode(record.value, reader=self._outcome)
        error = outcome["error"]
        reply = Reply(
            kind=outcome["kind"],
            status=outcome["status"],
            reject_reason=outcome["reject_reason"],
            error_code=None if error is None else error["code"],
            answered_by=outcome["answered_by"],
            at=now,
        )
        self._tally.record_reply(str(outcome["inquiry_id"]), reply)

    def _audited(self, record: Any) -> None:
        audit = self._codec.decode(record.value, reader=self._audit_schema)
        self._tally.record_audit(str(audit["inquiry_id"]), audit["event"], audit["kind"])

    async def catch_up(self, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - a bound, not a deadline of the bus
        """Read every record committed so far (up to the last stable offsets) before returning."""
        ends = await self._consumer.end_offsets(self._assigned)
        async with asyncio.timeout(timeout):
            for tp, end in ends.items():
                # The reader task moves the positions; this only watches them.
                while await self._consumer.position(tp) < end:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Stop reading and disconnect."""
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def check(self) -> None:
        """Raise what stopped the reader, if it stopped."""
        if self._reader is not None and self._reader.done() and not self._reader.cancelled():
            exc = self._reader.exception()
            if exc is not None:
                raise BrokerError(f"the demo's observer stopped: {exc}") from exc
