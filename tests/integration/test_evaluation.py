"""The evaluation processor on the real broker, run as ``exchange evaluation run``.

Its published figures, its web view and ``exchange report compliance --json`` all equal a
direct count over the audit records written; a crashed agent ends the process with exit 1;
SIGTERM ends it within seconds; a SIGKILL and restart count no record twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from typing import IO, TYPE_CHECKING, Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from exchange import ExchangeSettings
from exchange._codec import Codec, SchemaStore
from exchange._compliance import (
    EMPTY,
    Figures,
    Granularity,
    WindowKey,
    fold_all,
    merge,
)
from exchange._compliance_report import iso, report_rows, rows_to_json
from exchange._compliance_samples import sample_audit_record
from exchange._compliance_source import read_compliance
from exchange._kafka import client_options, resolve_bootstrap
from exchange._topology import Topics
from exchange._wire import AUDIT_RECORD, HEADER_DLQ_REASON, header_value

if TYPE_CHECKING:
    from conftest import CreateTopics

pytestmark = pytest.mark.integration

PARTITIONS = 3
HOUR = 3_600_000
#: Start-up (join, assignment, changelog recovery) on two busy cores, plus processing.
PUBLISH_TIMEOUT = 60.0
STOP_WITHIN = 10.0
#: The watchdog's stall time in these tests: a processor that stalls fails its test quickly,
#: and one that is merely idle (caught up, or a partition ending in a transaction marker)
#: must not trip it.
STALL = 20.0
#: agents.evaluation.EXIT_STALLED (importing it here would load faust into the test process).
EXIT_STALLED = 3


def _codec() -> Codec:
    return Codec(SchemaStore.from_directory("schemas/envelope"))


def _records(count: int, seed: int) -> list[dict[str, Any]]:
    """Audit records of the last five hours: every outcome and anomaly, two providers."""
    rnd = random.Random(seed)
    now = round(time.time() * 1000)
    records = []
    for _ in range(count):
        event = rnd.choice(["SETTLED"] * 8 + ["LATE_RESPONSE", "DUPLICATE_REQUEST"])
        records.append(
            sample_audit_record(
                event=event,
                kind=rnd.choice(["ANSWERED", "ANSWERED", "FAILED", "TIMED_OUT", "REJECTED"]),
                recorded_at_ms=now - rnd.randint(0, 5 * HOUR),
                latency_ms=rnd.randint(5, 120_000),
                deadline_in_ms=rnd.choice([1_000, 60_000]),
                provider=rnd.choice(["NOCR", "COMPANIES"]),
                service=rnd.choice(["nocr.person.verify", "companies.company.standing"]),
                requester=rnd.choice(["TAX", "POLICE", "BANK-MELLI"]),
                answered_by=rnd.choice(["AUTOMATIC", "MANUAL"]),
            )
        )
    return records


def _connection(settings: ExchangeSettings) -> dict[str, Any]:
    return {"bootstrap_servers": resolve_bootstrap(settings), **client_options(settings)}


async def _write(settings: ExchangeSettings, values: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(**_connection(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        for key, value in values:
            await producer.send(f"{settings.topic_prefix}.audit", value, key=key)
        await producer.flush()
    finally:
        await producer.stop()


async def _write_aborted(settings: ExchangeSettings, values: list[tuple[bytes, bytes]]) -> None:
    """Write records in a transaction that is then aborted: not part of the audit trail."""
    producer = AIOKafkaProducer(
        **_connection(settings), transactional_id=f"{settings.topic_prefix}-aborted"
    )
    await producer.start()
    try:
        await producer.begin_transaction()
        for key, value in values:
            await producer.send(f"{settings.topic_prefix}.audit", value, key=key)
        await producer.abort_transaction()
    finally:
        await producer.stop()


def _encoded(records: list[dict[str, Any]]) -> list[tuple[bytes, bytes]]:
    codec = _codec()
    return [(r["inquiry_id"].encode(), codec.encode(AUDIT_RECORD, r)) for r in records]


async def _last_offsets(settings: ExchangeSettings) -> dict[int, int | None]:
    """Per audit partition, the offset of its last committed record (None: none).

    Not the end offset minus one: a transaction's commit or abort marker takes an offset
    too, and the broker may write an aborted batch's markers after records written later,
    so the last offset of a partition can be a marker no reader ever sees.
    """
    topic = f"{settings.topic_prefix}.audit"
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    consumer = AIOKafkaConsumer(**_connection(settings), isolation_level="read_committed")
    await consumer.start()
    try:
        consumer.assign(tps)
        async with asyncio.timeout(30):
            # Every transaction decided (markers written): the committed end is the log end.
            while (await consumer.end_offsets(tps)) != await _log_ends(settings, tps):  # noqa: ASYNC110 - polls the broker
                await asyncio.sleep(0.2)
        ends = await consumer.end_offsets(tps)
        await consumer.seek_to_beginning(*tps)
        last: dict[int, int | None] = dict.fromkeys(range(PARTITIONS))
        async with asyncio.timeout(30):
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                for tp, batch in (await consumer.getmany(timeout_ms=200)).items():
                    last[tp.partition] = batch[-1].offset
    finally:
        await consumer.stop()
    return last


async def _log_ends(settings: ExchangeSettings, tps: list[TopicPartition]) -> dict[Any, int]:
    consumer = AIOKafkaConsumer(**_connection(settings))
    await consumer.start()
    try:
        ends: dict[Any, int] = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return ends


async def _published(
    settings: ExchangeSettings, proc: asyncio.subprocess.Process
) -> dict[WindowKey, Figures]:
    """Wait until the processor published every audit record; its partials, merged."""
    last = await _last_offsets(settings)
    async with _failing_with_log(proc, PUBLISH_TIMEOUT):
        while True:
            assert proc.returncode is None, "the processor exited"
            state = await read_compliance(settings)
            done = all(
                offset is None
                or (p in state.coverage and state.coverage[p].through_offset >= offset)
                for p, offset in last.items()
            )
            if done:
                break
            await asyncio.sleep(0.5)
    merged: dict[WindowKey, Figures] = {}
    for (window, _partition), partial in state.partials.items():
        merged[window] = merge(merged.get(window, EMPTY), partial.figures)
    return merged


@contextlib.asynccontextmanager
async def _failing_with_log(proc: asyncio.subprocess.Process, within: float) -> AsyncIterator[None]:
    """A time limit; on failure the processor's log goes into the message."""
    try:
        async with asyncio.timeout(within):
            yield
    except (TimeoutError, AssertionError) as exc:
        raise AssertionError(f"{exc!r}; processor log:\n{_log_of(proc)[-6000:]}") from exc


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _env(settings: ExchangeSettings) -> dict[str, str]:
    return {
        **os.environ,
        "EXCHANGE_KAFKA_BOOTSTRAP": resolve_bootstrap(settings),
        "EXCHANGE_TOPIC_PREFIX": settings.topic_prefix,
        "EXCHANGE_STATE_DIR": str(settings.state_dir),
        "EXCHANGE_LOG_FORMAT": "json",
        "EXCHANGE_EVALUATION_STALL": str(STALL),
    }


_MAIN = "from exchange.cli import main; main()"


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-c", _MAIN, *args]


@contextlib.asynccontextmanager
async def _processor(
    settings: ExchangeSettings, port: int, *, script: str = _MAIN, stall: float = STALL
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``exchange evaluation run`` in a child process, killed if a test leaves it running.

    ``script`` is the Python code the child runs (the CLI's entry point by default). Its log
    goes to a file, not a pipe: a pipe nobody reads until the end fills up and blocks the
    processor mid-run.
    """
    args = ("evaluation", "run", "--web-port", str(port), "--publish-interval", "0.3")
    with tempfile.TemporaryFile() as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            script,
            *args,
            env={**_env(settings), "EXCHANGE_EVALUATION_STALL": str(stall)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        _LOGS[proc.pid] = log
        try:
            yield proc
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
            del _LOGS[proc.pid]


_LOGS: dict[int, IO[bytes]] = {}


def _log_of(proc: asyncio.subprocess.Process) -> str:
    """What the processor wrote on stderr so far."""
    log = _LOGS[proc.pid]
    log.seek(0)
    return log.read().decode(errors="replace")


async def _group_empty(settings: ExchangeSettings, within: float = 60.0) -> None:
    """Wait until the evaluation processor's consumer group has no members left."""
    group = Topics.for_settings(settings).evaluation_group
    admin = AIOKafkaAdminClient(bootstrap_servers=resolve_bootstrap(settings))
    await admin.start()
    try:
        async with asyncio.timeout(within):
            while True:
                (response,) = await admin.describe_consumer_groups([group])
                state = response.to_object()["groups"][0]["state"]
                if state in ("Empty", "Dead"):
                    return
                await asyncio.sleep(0.5)
    finally:
        await admin.close()


async def _stop(proc: asyncio.subprocess.Process) -> tuple[int, float, str]:
    """SIGTERM; the exit code, the seconds it took, and the process's log."""
    began = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    async with asyncio.timeout(60):
        await proc.wait()
    return proc.returncode or 0, time.monotonic() - began, _log_of(proc)


async def _web(port: int) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        response = await client.get(f"http://127.0.0.1:{port}/compliance/?granularity=hour")
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


async def _report(settings: ExchangeSettings, since_ms: int, until_ms: int) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        *_cli("report", "compliance", "--since", iso(since_ms), "--until", iso(until_ms), "--json"),
        env=_env(settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    async with asyncio.timeout(60):
        stdout, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    report: dict[str, Any] = json.loads(stdout)
    return report


async def _dead_letters(settings: ExchangeSettings) -> list[Any]:
    consumer = AIOKafkaConsumer(
        f"{settings.topic_prefix}.dlq", auto_offset_reset="earliest", **_connection(settings)
    )
    await consumer.start()
    try:
        found: list[Any] = []
        for _ in range(25):
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                found.extend(batch)
            if found:
                break
        return found
    finally:
        await consumer.stop()


def _range(records: list[dict[str, Any]]) -> tuple[int, int]:
    times = [round(r["recorded_at"].timestamp() * 1000) for r in records]
    return min(times) - min(times) % HOUR, max(times) - max(times) % HOUR + HOUR


async def test_published_figures_equal_a_direct_count(
    settings: ExchangeSettings, create_topics: CreateTopics
) -> None:
    """The processor's published windows, its web view and the report's JSON all equal a
    direct count over the committed audit records; garbage goes to the DLQ; records of an
    aborted transaction are not counted; SIGTERM stops it within seconds."""
    await create_topics(f"{settings.topic_prefix}.audit", partitions=PARTITIONS)
    records = _records(150, seed=4)
    await _write(settings, [*_encoded(records[:75]), (b"bad", b"not an avro record")])
    await _write_aborted(settings, _encoded(_records(20, seed=40)))
    await _write(settings, _encoded(records[75:]))
    direct = fold_all(records)
    port = _free_port()
    async with _processor(settings, port) as proc:
        assert await _published(settings, proc) == direct
        web = await _web(port)
        code, took, log = await _stop(proc)
    assert (code, took < STOP_WITHIN) == (0, True), log
    served = {
        (w["kind"], w["agency"], w["service"], w["start"]): Figures.from_json(w["figures"])
        for w in web["windows"]
    }
    assert served == {
        (k.dimension.kind, k.dimension.agency, k.dimension.service, iso(k.start_ms)): v
        for k, v in direct.items()
        if k.granularity is Granularity.HOUR
    }
    since, until = _range(records)
    report = await _report(settings, since, until)
    hourly = fold_all(records, [Granularity.HOUR])
    expected = rows_to_json(report_rows(hourly), since_ms=since, until_ms=until, by="total")
    assert report["rows"] == expected["rows"]
    assert report["audit_records_read"] == 0  # everything came from the compliance topic
    (letter,) = await _dead_letters(settings)
    assert letter.value == b"not an avro record"
    assert header_value(letter.headers, HEADER_DLQ_REASON) == b"bad-framing"


async def test_report_falls_back_to_the_audit_topic_without_a_processor(
    settings: ExchangeSettings, create_topics: CreateTopics
) -> None:
    """With no evaluation processor ever run, the report folds the audit topic itself."""
    await create_topics(f"{settings.topic_prefix}.audit", partitions=PARTITIONS)
    records = _records(40, seed=5)
    await _write(settings, _encoded(records))
    since, until = _range(records)
    report = await _report(settings, since, until)
    expected = rows_to_json(
        report_rows(fold_all(records, [Granularity.HOUR])),
        since_ms=since,
        until_ms=until,
        by="total",
    )
    assert report["rows"] == expected["rows"]
    assert report["audit_records_read"] == len(records)
    # A range off the hour at both ends counts exactly the records recorded inside it.
    times = sorted(round(r["recorded_at"].timestamp() * 1000) for r in records)
    since, until = times[5] - times[5] % 1000 + 1000, times[-5] - times[-5] % 1000
    inside = [r for r in records if since <= round(r["recorded_at"].timestamp() * 1000) < until]
    report = await _report(settings, since, until)
    expected = rows_to_json(
        report_rows(fold_all(inside, [Granularity.HOUR])),
        since_ms=since,
        until_ms=until,
        by="total",
    )
    assert report["rows"] == expected["rows"]
    assert (report["since"], report["until"]) == (iso(since), iso(until))


async def test_sigkill_and_restart_count_every_record_once(
    settings: ExchangeSettings, create_topics: CreateTopics
) -> None:
    """A processor killed right after publishing (offsets not yet committed) and restarted
    recovers its tables and counts no redelivered record twice."""
    await create_topics(f"{settings.topic_prefix}.audit", partitions=PARTITIONS)
    records = _records(120, seed=6)
    await _write(settings, _encoded(records[:60]))
    async with _processor(settings, _free_port()) as proc:
        assert await _published(settings, proc) == fold_all(records[:60])
        proc.kill()  # before faust's next offset commit, most likely
        await proc.wait()
    # The killed member holds its partitions until its session expires; a processor joining
    # meanwhile has been seen to stall in faust's rebalance (see docs/compliance.md), so the
    # restart comes once the group is empty, as a supervisor's restart back-off would.
    await _group_empty(settings)
    await _write(settings, _encoded(records[60:]))
    async with _processor(settings, _free_port()) as proc:
        assert await _published(settings, proc) == fold_all(records)
        code, _, log = await _stop(proc)
    assert code == 0, log


async def test_a_crashed_agent_fails_the_worker(
    settings: ExchangeSettings, create_topics: CreateTopics
) -> None:
    """An agent that raises ends the process with exit code 1 instead of idling on."""
    prefix = settings.topic_prefix
    await create_topics(f"{prefix}.audit", partitions=PARTITIONS)
    # A changelog with fewer partitions than the audit topic makes faust raise
    # PartitionsMismatch in the agent on the first table write.
    await create_topics(f"{prefix}.evaluation-hour-changelog", partitions=1)
    await _write(settings, _encoded(_records(5, seed=7)))
    async with _processor(settings, _free_port()) as proc:
        async with asyncio.timeout(PUBLISH_TIMEOUT):
            await proc.wait()
        stderr = _log_of(proc)
    assert proc.returncode == 1
    assert "PartitionsMismatch" in stderr


#: The child of the stall test: the CLI, with an agent that hangs after its first record.
_HUNG_AGENT = """
import asyncio
import agents.evaluation._app as app_module
from exchange.cli import main

handle = app_module._handle

async def hung(evaluation, dlq, message):
    if evaluation.counts["processed"]:
        await asyncio.Event().wait()
    await handle(evaluation, dlq, message)

app_module._handle = hung
main()
"""


async def test_a_stalled_processor_exits_for_its_supervisor(
    settings: ExchangeSettings, create_topics: CreateTopics
) -> None:
    """A processor holding audit partitions with records left that makes no progress for
    EXCHANGE_EVALUATION_STALL seconds logs the lagging partitions and exits with code 3.

    The stall seen after start-up and restart rebalances (faust dropping fetched records) is
    fixed and cannot be produced on demand, so the child provokes one deterministically: its
    agent hangs after the first record, holding its partitions, as a wedged agent would.
    """
    await create_topics(f"{settings.topic_prefix}.audit", partitions=PARTITIONS)
    await _write(settings, _encoded(_records(30, seed=8)))
    stall = 4.0
    async with _processor(settings, _free_port(), script=_HUNG_AGENT, stall=stall) as proc:
        began = time.monotonic()
        async with _failing_with_log(proc, PUBLISH_TIMEOUT):
            await proc.wait()
        took, log = time.monotonic() - began, _log_of(proc)
    assert proc.returncode == EXIT_STALLED, log
    assert took >= stall
    (line,) = [json.loads(x) for x in log.splitlines() if "processor stalled" in x]
    assert line["level"] == "error"
    assert sum(line["lags"].values()) == 29  # 30 records, the first one processed
