"""A faust transport whose consumer reads only committed records and loses none on a rebalance.

The stream workers write ``<prefix>.audit`` inside Kafka transactions (one per batch), so a
batch aborted by a crash leaves records that a ``read_uncommitted`` consumer would count,
then counts again when the batch is redone. faust-streaming 0.15.3 reads committed records
only under its own ``processing_guarantee="exactly_once"`` (which also makes every producer
transactional); this transport sets the consumer's isolation level itself.

It also works around two faults that together made the processor skip records and then wait
forever for records it had already dropped (the "stall" after a start-up or restart
rebalance):

- faust's ``Consumer._wait_next_records`` checks that its set of active partitions is not
  empty, then hands *the same set object* to the consumer thread
  (``AIOKafkaConsumerThread.getmany`` -> ``_fetch_records`` -> aiokafka's
  ``Fetcher.fetched_records(partitions)``). While the thread waits for records, the event
  loop pauses partitions in that set (``Recovery`` pauses the changelog partitions when it
  has read them; ``App._on_partitions_assigned`` pauses every partition). Once the set is
  empty, aiokafka reads it as "no filter" and hands over the records of *every* assigned
  partition, the audit partitions included; faust's ``Consumer.getmany`` then drops each
  record whose partition is not active, but aiokafka has already moved its position past
  them. Here the thread gets a copy taken when faust checked the set.
- faust recovers dropped records by seeking to the committed offsets after a rebalance
  (``Consumer.perform_seek``), but aiokafka's ``seek_to_committed`` seeks only where an
  offset greater than 0 is committed. On a new consumer group, or after a crash before the
  first commit, dropped records were never read again. Here a stream partition without a
  committed offset goes back to where ``auto_offset_reset`` starts it (the beginning), and
  one committed at 0 to offset 0. Records read twice are counted once (see
  :mod:`exchange._evaluation`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from faust.transport.drivers import aiokafka as faust_aiokafka

__all__ = ["ReadCommittedTransport"]


class _ReadCommittedThread(faust_aiokafka.AIOKafkaConsumerThread):
    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka passes this to its fetcher (and its ListOffsets requests) in start(),
        # which runs after this factory returns.
        consumer._isolation_level = "read_committed"
        return consumer

    async def getmany(
        self,
        active_partitions: Any,
        timeout: float,  # noqa: ASYNC109 - faust's signature, passed on to aiokafka
    ) -> Any:
        if active_partitions is None:  # a client-only app reads every partition
            return await super().getmany(None, timeout)
        # Copied here, in the event loop, right after faust checked it is not empty; the
        # consumer thread must never see it emptied (aiokafka: empty means every partition).
        snapshot = set(active_partitions)
        if not snapshot:
            return {}
        return await super().getmany(snapshot, timeout)

    async def seek_to_committed(self) -> Mapping[Any, int]:
        committed: Mapping[Any, int] = await self.call_thread(self._seek_to_committed_or_start)
        return committed

    async def _seek_to_committed_or_start(self) -> Mapping[Any, int]:
        consumer = self._ensure_consumer()
        committed: Mapping[Any, int] = await consumer.seek_to_committed()
        # Changelog partitions are positioned by faust's table recovery, not by commits.
        streams = [
            tp
            for tp, offset in committed.items()
            if not offset and not self.consumer._is_changelog_tp(tp)
        ]
        for tp in streams:
            if committed[tp] == 0:
                consumer.seek(tp, 0)
        unset = [tp for tp in streams if committed[tp] is None]
        if unset:
            if self.app.conf.consumer_auto_offset_reset == "latest":
                await consumer.seek_to_end(*unset)
            else:
                await consumer.seek_to_beginning(*unset)
        return committed


class _ReadCommittedConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ReadCommittedThread(self, loop=self.loop, beacon=self.beacon)


class ReadCommittedTransport(faust_aiokafka.Transport):
    """faust's aiokafka transport: ``read_committed``, and no record lost on a rebalance."""

    Consumer = _ReadCommittedConsumer
