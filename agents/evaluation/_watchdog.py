"""The runner's watchdog: observe the evaluation processor; :mod:`exchange._evaluation_stall`
decides whether it is stalled.

Every few seconds it notes what faust says about itself (read in :func:`_faust_view`, the one
place that touches faust's internals: recovery finished, rebalancing, changelog offsets read,
the audit partitions assigned), the next offset per held audit partition (the higher of the
group's committed offset, asked of the broker, and the last offset the agent processed, plus
one), the end of each of those partitions (``read_committed``: the last stable offset) and
the records published. A lag left only by transaction markers (a partition whose log ends
with a commit or abort marker) is no lag: before it reports a stall, the watchdog reads the
lagging partitions from their next offset and drops those that hold no committed record.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping

import structlog
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from agents.evaluation._app import EvaluationApp
from exchange._errors import ProcessorStalledError
from exchange._evaluation_stall import Observation, Stall, Watch, stalled, watch
from exchange._kafka import kafka_options
from exchange._settings import ExchangeSettings
from exchange._topic_reader import group_free_consumer

__all__ = ["run_watchdog"]

log = structlog.get_logger("exchange.evaluation")


def _faust_view(evaluation: EvaluationApp) -> tuple[bool, int, set[int]]:
    """(ready, changelog records read by recovery, audit partitions assigned), from faust."""
    app = evaluation.app
    recovery = app.tables.recovery
    ready = bool(recovery.completed.is_set() and not app.rebalancing)
    recovered = sum(recovery.active_offsets.values()) + sum(recovery.standby_offsets.values())
    audit = evaluation.topology.audit
    held = {tp.partition for tp in app.consumer.assignment() if tp.topic == audit}
    return ready, int(recovered), held


class _Probe:
    """The watchdog's own Kafka clients: committed offsets, ends, and marker checks."""

    def __init__(self, settings: ExchangeSettings, evaluation: EvaluationApp) -> None:
        self.topic = evaluation.topology.audit
        self.group = str(evaluation.app.conf.id)
        self.admin = AIOKafkaAdminClient(**kafka_options(settings))
        self.consumer = group_free_consumer(settings, fetch_max_wait_ms=200)

    started = False

    async def start(self) -> None:
        await self.admin.start()
        await self.consumer.start()
        self.started = True

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.consumer.stop()
        with contextlib.suppress(Exception):
            await self.admin.close()

    def _tps(self, partitions: set[int]) -> list[TopicPartition]:
        return [TopicPartition(self.topic, p) for p in sorted(partitions)]

    async def committed(self, partitions: set[int]) -> dict[int, int]:
        offsets = await self.admin.list_consumer_group_offsets(
            self.group, partitions=self._tps(partitions)
        )
        return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}

    async def ends(self, partitions: set[int]) -> dict[int, int]:
        ends = await self.consumer.end_offsets(self._tps(partitions))
        return {tp.partition: int(offset) for tp, offset in ends.items()}

    async def data_ends(self, done: Mapping[int, int], ends: Mapping[int, int]) -> dict[int, int]:
        """``ends``, where a partition with no committed record in ``[done, end)`` ends at done."""
        lagging = {p for p, end in ends.items() if end > done.get(p, 0)}
        tps = self._tps(lagging)
        self.consumer.assign(tps)
        for tp in tps:
            self.consumer.seek(tp, done.get(tp.partition, 0))
        found: set[int] = set()
        for _ in range(5):
            for tp, records in (await self.consumer.getmany(*tps, timeout_ms=300)).items():
                if any(r.offset < ends[tp.partition] for r in records):
                    found.add(tp.partition)
        return {
            p: end if p in found or p not in lagging else done.get(p, 0) for p, end in ends.items()
        }


async def _observe(evaluation: EvaluationApp, probe: _Probe) -> Observation:
    ready, recovered, held = _faust_view(evaluation)
    at = time.monotonic()
    committed = await probe.committed(held) if held else {}
    ends = await probe.ends(held) if held else {}
    through = evaluation.publisher.through
    done = {
        p: max(committed.get(p, 0), through[p] + 1 if p in through else 0) for p in sorted(held)
    }
    return Observation(at, ready, recovered, done, ends, evaluation.publisher.published)


async def _confirm(
    probe: _Probe, previous: Watch | None, seen: Observation, after: float
) -> tuple[Watch, Stall | None]:
    """The new state and its stall, unless the lag it reports is only transaction markers."""
    state = watch(previous, seen)
    stall = stalled(state, after)
    if stall is None or not stall.lags:
        return state, stall
    corrected = watch(previous, seen.with_ends(await probe.data_ends(seen.done, seen.ends)))
    return corrected, stalled(corrected, after)


async def run_watchdog(
    evaluation: EvaluationApp, settings: ExchangeSettings, stall_after: float
) -> None:
    """Observe until the processor stalls; then record the failure and return."""
    interval = max(0.5, min(5.0, stall_after / 4))
    probe: _Probe | None = None
    state: Watch | None = None
    try:
        while True:
            await asyncio.sleep(interval)
            try:
                async with asyncio.timeout(max(settings.request_timeout, interval)):
                    if probe is None:
                        probe = _Probe(settings, evaluation)
                        await probe.start()
                    seen = await _observe(evaluation, probe)
                    state, stall = await _confirm(probe, state, seen, stall_after)
            except (TimeoutError, Exception) as exc:
                # The broker may be away for a while: no observation is no verdict. The
                # clients are made anew next time (one that failed to start is unusable).
                log.warning("evaluation watchdog could not observe", error=repr(exc))
                if probe is not None and not probe.started:
                    await probe.close()
                    probe = None
                continue
            if stall is not None:
                _report(evaluation, stall)
                return
    finally:
        if probe is not None:
            await probe.close()


def _report(evaluation: EvaluationApp, stall: Stall) -> None:
    log.error(
        "evaluation processor stalled; stopping so that it is restarted",
        reason=stall.describe(),
        lags={str(p): lag for p, lag in stall.lags.items()},
        recovering=stall.recovering,
        idle_seconds=round(stall.idle, 1),
    )
    evaluation.fail(ProcessorStalledError(stall.describe(), lags=stall.lags))
