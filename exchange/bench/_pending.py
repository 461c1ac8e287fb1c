"""Worker memory with many inquiries pending: ``pending_100k_rss_mb``.

A real ``exchange worker`` and a provider that takes inquiries and never answers them; the
requester (the client SDK, in the runner's process) sends ``count`` inquiries with a one-day
deadline (``tax.clearance.status.v1``, answered by a person in real life), so every one of them
stays pending in the worker: its state table, the changelog's in-memory copy and the timers.
Once the worker's group has committed the offset of the last of them (it has processed them
all), the worker's resident memory is read from outside (psutil), after a first inquiry that
tells the worker is up and gives the idle baseline.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from contextlib import AsyncExitStack, suppress
from pathlib import Path
from typing import Any

import psutil
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from exchange._client import ExchangeClient
from exchange._errors import BenchmarkError
from exchange._topology import Topics
from exchange.bench._bus_env import apply_topics, bus_settings, remove_topics, worker_process
from exchange.bench._bus_provider import SILENT_PROVIDER, SILENT_SERVICE
from exchange.bench._rawkafka import client_options
from exchange.bench._runner import _Child as Child
from exchange.bench._runner import _start as start_process
from exchange.bench._runner import _stop as stop_process
from exchange.bench._scenario import ScenarioEnv, python_process

#: Inquiries pending in a full run (the figure's name says how many).
PENDING = 100_000
REQUESTER = "COMPANIES"
SUBSYSTEM = "registration"
PURPOSE = "company-dissolution"
AGENCIES = (REQUESTER, SILENT_PROVIDER)
PAYLOAD = {"taxpayer_kind": "COMPANY", "taxpayer_id": "10101234567", "up_to_year": None}
#: How long the worker may take to start, or to process what was sent, s.
_START_S = 40.0
_MB = 1024 * 1024


async def measure_pending(env: ScenarioEnv, count: int) -> dict[str, Any]:
    """Run the measurement with ``count`` pending inquiries; its figures as JSON values."""
    await apply_topics(env, AGENCIES)
    try:
        with tempfile.TemporaryDirectory(prefix=f"{env.run_id}-") as tmp:
            return await _measure(env, count, Path(tmp))
    finally:
        await remove_topics(env, AGENCIES)


async def _measure(env: ScenarioEnv, count: int, workdir: Path) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        worker = await start_process(worker_process(env), workdir)
        stack.push_async_callback(stop_process, worker)
        provider = await start_process(
            python_process("provider", "exchange.bench._bus_provider:silent_provider", env),
            workdir,
        )
        stack.push_async_callback(stop_process, provider)
        settings = bus_settings(env)
        client = await stack.enter_async_context(
            ExchangeClient.connect(agency=REQUESTER, subsystem=SUBSYSTEM, settings=settings)
        )
        progress = _Progress(env)
        await stack.enter_async_context(progress)
        await _send(client, 1)
        await progress.wait_processed(1, worker, _START_S)
        baseline = _rss(worker.proc.pid)
        began = time.monotonic()
        await _send(client, count - 1)
        sent_s = time.monotonic() - began
        await progress.wait_processed(count, worker, _START_S + count / 100)
        processed_s = time.monotonic() - began
        await asyncio.sleep(1.0)  # a tick or two: timers armed, the changelog flushed
        rss = _rss(worker.proc.pid)
        peak = _peak(worker.proc.pid)
        return {
            "pending_100k_rss_mb": round(rss / _MB, 1) if count >= PENDING else None,
            "pending": {
                "count": count,
                "rss_mb": round(rss / _MB, 1),
                "idle_rss_mb": round(baseline / _MB, 1),
                "peak_rss_mb": None if peak is None else round(peak / _MB, 1),
                "bytes_per_inquiry": round((rss - baseline) / max(count - 1, 1)),
                "send_s": round(sent_s, 1),
                "processed_s": round(processed_s, 1),
            },
        }


async def _send(client: ExchangeClient, count: int) -> None:
    """Send ``count`` inquiries (default deadline: a day) without waiting for outcomes."""
    for _ in range(count):
        await client.send(SILENT_SERVICE, PAYLOAD, purpose=PURPOSE)


class _Progress:
    """How far the worker's group has committed on the requester's ``out`` topic."""

    def __init__(self, env: ScenarioEnv) -> None:
        topics = Topics(env.run_id)
        self._topic = topics.out(REQUESTER)
        self._group = topics.worker_group
        self._partitions = env.partitions
        self._admin = AIOKafkaAdminClient(**client_options(env))
        self._consumer = AIOKafkaConsumer(**client_options(env), enable_auto_commit=False)

    async def __aenter__(self) -> _Progress:
        await self._admin.start()
        await self._consumer.start()
        return self

    async def __aexit__(self, *_: object) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def wait_processed(self, count: int, worker: Child, limit_s: float) -> None:
        """Wait until the group committed ``count`` records (everything sent so far)."""
        tps = [TopicPartition(self._topic, p) for p in range(self._partitions)]
        deadline = time.monotonic() + limit_s
        while time.monotonic() < deadline:
            if worker.proc.returncode is not None:
                raise BenchmarkError(f"the worker exited:\n{worker.tail()}")
            ends = await self._consumer.end_offsets(tps)
            committed = await self._admin.list_consumer_group_offsets(self._group)
            done = sum(committed[tp].offset for tp in tps if tp in committed)
            if sum(ends.values()) >= count and done >= sum(ends.values()):
                return
            await asyncio.sleep(0.5)
        raise BenchmarkError(f"the worker did not process {count} inquiries in {limit_s:.0f} s")


def _rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def _peak(pid: int) -> int | None:
    with suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return None
