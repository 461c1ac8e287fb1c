"""Throughput of the hot path alone: records per second through one ``exchange worker``.

Method: the running worker is paused (SIGSTOP, well within the group's session timeout)
while N requests are written to ``out.TAX``, then resumed; phase 1 lasts from the resume to
the timestamp of the last request it routed to ``in.NOCR``. Then the same with N responses
on ``out.NOCR``; phase 2 lasts from the resume to the last of the N outcomes (each with an
audit record). No client, provider or reader runs during either phase, so the figure is the
worker's alone: decode, routing and policy (payload schema check included), correlation,
state changelog, Avro outcome and audit, one transaction per partition batch.

``EXCHANGE_WORKER_BENCH_INQUIRIES`` sets N (default 2,000 in the suite),
``EXCHANGE_WORKER_BENCH_PARTITIONS`` the partition count (default 2); run with ``-s`` to see
the figures.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
import urllib.request
from pathlib import Path

import pytest
from _worker_proc import BusTap, Raw, Records, bus_settings, create_bus_topics, running_worker
from aiokafka import AIOKafkaProducer

from exchange import ExchangeSettings
from exchange._topology import Topics

pytestmark = pytest.mark.integration

#: Far below the measured figures: catches a per-record await or transaction, not noise.
FLOOR = 300
#: The verify service allows 30 s; the whole run must fit in it.
DEADLINE = 29.0


async def test_hot_path_throughput(settings: ExchangeSettings) -> None:
    """One worker routes and settles thousands of inquiries per second on the real broker."""
    count = int(os.environ.get("EXCHANGE_WORKER_BENCH_INQUIRIES", "2000"))
    partitions = int(os.environ.get("EXCHANGE_WORKER_BENCH_PARTITIONS", "2"))
    bus = bus_settings(settings, partitions=partitions)
    topics = Topics.for_settings(bus)
    await create_bus_topics(bus, ["TAX", "NOCR"])
    records = Records(bus)
    requests = [records.request(deadline=DEADLINE) for _ in range(count)]
    responses = [records.response(raw.inquiry_id) for raw in requests]
    with running_worker(bus, args=["--metrics-port", "0"]) as worker:
        url = worker.wait_for(lambda e: e.get("event") == "serving metrics")["url"]
        out = topics.out
        route_start, route_cpu = await _drain(worker.pid, url, bus, out("TAX"), requests, count)
        settle_start, settle_cpu = await _drain(
            worker.pid, url, bus, out("NOCR"), responses, 2 * count
        )
    async with BusTap(bus, [topics.in_("NOCR"), topics.replies("TAX")]) as tap:
        await _read(tap, topics.in_("NOCR"), count)
        await _read(tap, topics.replies("TAX"), count)
        route = _last(tap, topics.in_("NOCR")) - route_start
        settle = _last(tap, topics.replies("TAX")) - settle_start
        kinds = {records.outcome(r.value)["kind"] for r in tap.records[topics.replies("TAX")]}
    assert kinds == {"ANSWERED"}
    cpu = route_cpu + settle_cpu
    figures = {
        "inquiries": count,
        "partitions": partitions,
        "route_records_per_s": round(count / route),
        "settle_records_per_s": round(count / settle),
        "records_per_s": round(2 * count / (route + settle)),
        "inquiries_per_s": round(count / (route + settle)),
        "worker_cpu_ms_per_inquiry": round(cpu / count * 1000, 3),
        "worker_cpu_share": round(cpu / (route + settle), 2),
    }
    print(f"worker hot path: {figures}")
    assert figures["inquiries_per_s"] > FLOOR, figures


async def _drain(
    pid: int, url: str, settings: ExchangeSettings, topic: str, raws: list[Raw], total: int
) -> tuple[float, float]:
    """Pause the worker, load ``raws``, resume it: when it resumed, and the CPU it used
    until its input counter reached ``total``."""
    os.kill(pid, signal.SIGSTOP)
    try:
        await _load(settings, topic, raws)
        started, cpu = time.time(), _cpu_seconds(pid)
    finally:
        os.kill(pid, signal.SIGCONT)
    await _processed(url, total)
    return started, _cpu_seconds(pid) - cpu


async def _load(settings: ExchangeSettings, topic: str, raws: list[Raw]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        max_batch_size=256 * 1024,
    )
    await producer.start()
    try:
        sent = [await producer.send(topic, r.value, key=r.key, headers=r.headers) for r in raws]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def _processed(url: str, records: int) -> None:
    """Wait until the worker committed ``records`` input records (its own counter)."""
    pattern = re.compile(r"^exchange_engine_records_total ([0-9.e+]+)$", re.MULTILINE)
    async with asyncio.timeout(120):
        while True:
            text = await asyncio.to_thread(_scrape, url)
            found = pattern.search(text)
            if found and float(found.group(1)) >= records:
                return
            await asyncio.sleep(0.2)


async def _read(tap: BusTap, topic: str, count: int) -> None:
    async with asyncio.timeout(60):
        while True:
            if len(tap.records[topic]) >= count:
                return
            await asyncio.sleep(0.2)


def _last(tap: BusTap, topic: str) -> float:
    """When the worker wrote the topic's last record (its timestamp), in epoch seconds."""
    last: int = max(record.timestamp for record in tap.records[topic])
    return last / 1000


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(os.sysconf("SC_CLK_TCK"))
    return (int(fields[11]) + int(fields[12])) / ticks


def _scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        body: bytes = response.read()
    return body.decode()
