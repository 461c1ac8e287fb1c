"""The engine's figures on ``/metrics``: counters from its stats, consumer lag per partition.

The engine keeps plain counters (:class:`~agents.EngineStats`); a :class:`EngineMonitor` task
copies their increase into :class:`~exchange._metrics.EngineMetrics` every ``interval``
seconds, and every few rounds samples the consumer lag of each input partition this worker
owns: the partition's last stable offset (what a ``read_committed`` reader can reach) minus
the group's committed offset. Both come from the broker through clients of the monitor's own,
so the engine's consumer is never touched from outside.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import structlog
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from agents._engine import Engine, EngineStats
from exchange._metrics import EngineMetrics

__all__ = ["EngineMonitor"]

log = structlog.get_logger("exchange.worker")


class EngineMonitor:
    """Publishes an engine's counters and consumer lag until cancelled."""

    def __init__(
        self,
        engine: Engine[Any],
        metrics: EngineMetrics,
        *,
        interval: float = 1.0,
        lag_every: int = 5,
    ) -> None:
        self._engine = engine
        self._metrics = metrics
        self._interval = interval
        self._lag_every = lag_every
        self._seen = EngineStats()
        self._lagging: set[TopicPartition] = set()

    async def run(self) -> None:
        """Publish every ``interval`` seconds; lag every ``lag_every`` rounds (until cancelled)."""
        cfg = self._engine.config
        options = {"bootstrap_servers": cfg.bootstrap_servers, **cfg.client_options}
        ends = AIOKafkaConsumer(**options, isolation_level="read_committed")
        admin = AIOKafkaAdminClient(**options)
        try:
            await ends.start()
            await admin.start()
            rounds = 0
            while True:
                await asyncio.sleep(self._interval)
                self.publish_stats()
                rounds += 1
                if rounds % self._lag_every == 0:
                    await self._sample_lag(ends, admin)
        except KafkaError as exc:  # figures lost, the worker goes on
            log.warning("engine figures unavailable", error=repr(exc))
        finally:
            with contextlib.suppress(Exception):
                await admin.close()
            await ends.stop()

    def publish_stats(self) -> None:
        """Add what the engine counted since the last call to the counters."""
        stats, seen, m = self._engine.stats, self._seen, self._metrics
        m.batches.inc(stats.transactions - seen.transactions)
        m.records.inc(stats.records_in - seen.records_in)
        m.aborts.inc(stats.aborts - seen.aborts)
        seen.transactions, seen.records_in = stats.transactions, stats.records_in
        seen.aborts = stats.aborts

    async def _sample_lag(self, ends: Any, admin: Any) -> None:
        owned = sorted(self._engine.assignment)
        try:
            lag = await _lag(ends, admin, self._engine.config.application_id, owned)
        except KafkaError as exc:  # a figure missed, not a reason to stop the worker
            log.warning("consumer lag not sampled", error=repr(exc))
            return
        gauge = self._metrics.lag
        for tp in self._lagging - lag.keys():
            # Zero first: in multiprocess mode remove() leaves the last value in this
            # process's file, and a partition that moved would be counted twice.
            gauge.labels(tp.topic, str(tp.partition)).set(0)
            with contextlib.suppress(KeyError):
                gauge.remove(tp.topic, str(tp.partition))
        for tp, behind in lag.items():
            gauge.labels(tp.topic, str(tp.partition)).set(behind)
        self._lagging = set(lag)


async def _lag(
    ends: Any, admin: Any, group: str, owned: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """Records between each partition's committed offset and its last stable offset."""
    if not owned:
        return {}
    end_offsets = await ends.end_offsets(owned)
    committed = await admin.list_consumer_group_offsets(group, partitions=owned)
    lag = {}
    for tp in owned:
        meta = committed.get(tp)
        start = meta.offset if meta is not None and meta.offset >= 0 else 0
        lag[tp] = max(0, end_offsets[tp] - start)
    return lag
