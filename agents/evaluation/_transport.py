"""A faust transport whose consumer reads only committed records.

The stream workers write ``<prefix>.audit`` inside Kafka transactions (one per batch), so a
batch aborted by a crash leaves records that a ``read_uncommitted`` consumer would count,
then counts again when the batch is redone. faust-streaming 0.15.3 reads committed records
only under its own ``processing_guarantee="exactly_once"`` (which also makes every producer
transactional); this transport changes nothing but the consumer's isolation level.
"""

from __future__ import annotations

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


class _ReadCommittedConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> Any:
        return _ReadCommittedThread(self, loop=self.loop, beacon=self.beacon)


class ReadCommittedTransport(faust_aiokafka.Transport):
    """faust's aiokafka transport with a ``read_committed`` consumer."""

    Consumer = _ReadCommittedConsumer
