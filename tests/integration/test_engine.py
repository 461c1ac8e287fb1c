"""The stream engine on the real broker: exactly once across SIGKILL, rebalances, ticks, fencing.

Run as a script (``python test_engine.py BOOTSTRAP APP IN OUT CHANGELOG``) it is the worker that
the SIGKILL test starts and kills.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from agents import Engine, EngineConfig, InputRecord, OutputRecord, PartitionState
from exchange._errors import FencedError, ProcessorError

if TYPE_CHECKING:
    from conftest import CreateTopics, Unique

pytestmark = pytest.mark.integration

PARTITIONS = 4


class IntCodec:
    """State values are counts, stored as decimal text."""

    def encode(self, value: int, /) -> bytes:
        return str(value).encode()

    def decode(self, data: bytes, /) -> int:
        return int(data)


class Counting:
    """One output per input (its value), and a per-key count in state."""

    def __init__(self, out_topic: str, fail_on: bytes | None = None) -> None:
        self.out_topic = out_topic
        self.fail_on = fail_on
        self.restored: dict[int, dict[str, int]] = {}  # the state each assignment handed over
        self.revoked: list[int] = []

    def on_assigned(self, state: PartitionState[int]) -> None:
        self.restored[state.partition] = dict(state)

    def on_revoked(self, partition: int) -> None:
        self.revoked.append(partition)

    def process(
        self, records: Sequence[InputRecord], state: PartitionState[int]
    ) -> Iterable[OutputRecord]:
        out = []
        for record in records:
            if record.value == self.fail_on:
                raise ValueError("poisoned record")
            assert record.key is not None
            key = record.key.decode()
            state[key] = state.get(key, 0) + 1
            out.append(OutputRecord(self.out_topic, record.key, record.value))
        return out

    def on_tick(self, now_ms: int, state: PartitionState[int]) -> Iterable[OutputRecord]:
        return ()


class Deadlines:
    """Each input sets a deadline; a tick past it emits one expiry output and drops the key."""

    def __init__(self, out_topic: str, delay_ms: int) -> None:
        self.out_topic = out_topic
        self.delay_ms = delay_ms

    def on_assigned(self, state: PartitionState[int]) -> None:
        pass

    def on_revoked(self, partition: int) -> None:
        pass

    def process(
        self, records: Sequence[InputRecord], state: PartitionState[int]
    ) -> Iterable[OutputRecord]:
        for record in records:
            assert record.key is not None
            state[record.key.decode()] = record.timestamp + self.delay_ms
        return ()

    def on_tick(self, now_ms: int, state: PartitionState[int]) -> Iterable[OutputRecord]:
        due = [key for key, deadline in state.items() if deadline <= now_ms]
        for key in due:
            del state[key]
        return [OutputRecord(self.out_topic, key.encode(), b"expired") for key in due]


class SlowDeadlines(Deadlines):
    """Deadlines whose batches take a while: records always wait when a transaction ends."""

    def process(
        self, records: Sequence[InputRecord], state: PartitionState[int]
    ) -> Iterable[OutputRecord]:
        time.sleep(0.02)
        return super().process(records, state)


def _config(bootstrap: str, app: str, inputs: str, changelog: str, **extra: Any) -> EngineConfig:
    options: dict[str, Any] = {
        "poll_interval": 0.05,
        "tick_interval": 0.2,
        "session_timeout": 6.0,
        "topics": (inputs,),
    }
    options.update(extra)
    return EngineConfig(
        bootstrap_servers=bootstrap, application_id=app, changelog_topic=changelog, **options
    )


async def _produce(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    await producer.start()
    try:
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _read_committed(bootstrap: str, topic: str) -> list[Any]:
    """Every committed record of ``topic``, read to its end offsets."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, isolation_level="read_committed", enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        records: list[Any] = []
        async with asyncio.timeout(30):
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
        return records
    finally:
        await consumer.stop()


async def _eventually(check: Callable[[], Awaitable[bool]], within: float = 60.0) -> None:
    """Poll ``check`` until it holds; fail the test after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not await check():  # noqa: ASYNC110  # polls the broker: no event to wait on
            await asyncio.sleep(0.2)


async def _committed_count(bootstrap: str, topic: str) -> int:
    return len(await _read_committed(bootstrap, topic))


async def _restored_counts(
    bootstrap: str, app: str, inputs: str, changelog: str, out: str
) -> dict[str, int]:
    """Start a fresh engine of ``app`` and return the state it restores from the changelog."""
    processor = Counting(out)
    engine = Engine(_config(bootstrap, app, inputs, changelog), processor, IntCodec())
    task = asyncio.create_task(engine.run())
    try:
        await _eventually(lambda: _true(len(engine.assigned_partitions) == PARTITIONS))
    finally:
        engine.stop()
        await task
    return {key: n for part in processor.restored.values() for key, n in part.items()}


async def _true(value: bool) -> bool:
    return value


@pytest.fixture
def names(unique: Unique) -> dict[str, str]:
    return {kind: unique(kind) for kind in ("app", "in", "in2", "out", "state")}


@pytest.fixture
async def topics(create_topics: CreateTopics, names: dict[str, str]) -> dict[str, str]:
    await create_topics(names["in"], names["in2"], names["out"], partitions=PARTITIONS)
    await create_topics(names["state"], partitions=PARTITIONS, config={"cleanup.policy": "compact"})
    return names


async def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    """A worker killed with SIGKILL and restarted leaves each output once and exact counts."""
    n, keys = 1500, 30
    inputs = [(f"key-{i % keys}".encode(), f"{i}".encode()) for i in range(n)]
    await _produce(kafka_bootstrap, topics["in"], inputs)
    args = [kafka_bootstrap, topics["app"], topics["in"], topics["out"], topics["state"]]
    worker = subprocess.Popen([sys.executable, __file__, *args])  # noqa: ASYNC220  # killed below
    try:
        await _eventually(lambda: _at_least(kafka_bootstrap, topics["out"], n // 4))
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=10)  # already dead: returns at once
    assert await _committed_count(kafka_bootstrap, topics["out"]) < n  # killed mid-stream

    processor = Counting(topics["out"])
    config = _config(kafka_bootstrap, topics["app"], topics["in"], topics["state"])
    engine = Engine(config, processor, IntCodec())
    task = asyncio.create_task(engine.run())
    try:
        await _eventually(lambda: _at_least(kafka_bootstrap, topics["out"], n))
    finally:
        engine.stop()
        await task

    values = Counter(r.value for r in await _read_committed(kafka_bootstrap, topics["out"]))
    assert len(values) == n
    assert set(values.values()) == {1}
    restored = await _restored_counts(
        kafka_bootstrap, topics["app"], topics["in"], topics["state"], topics["out"]
    )
    assert restored == {f"key-{k}": n // keys for k in range(keys)}


async def _at_least(bootstrap: str, topic: str, count: int) -> bool:
    return await _committed_count(bootstrap, topic) >= count


async def test_two_engines_share_copartitioned_partitions_and_hand_state_over(
    kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    """Two members own disjoint partition numbers of both topics; stopping one moves its state."""
    config = _config(
        kafka_bootstrap,
        topics["app"],
        "",
        topics["state"],
        topics=(),
        topic_pattern=f"({topics['in']}|{topics['in2']})$",
    )
    first, second = Counting(topics["out"]), Counting(topics["out"])
    engine_a = Engine(config, first, IntCodec())
    engine_b = Engine(config, second, IntCodec())
    task_a = asyncio.create_task(engine_a.run())
    task_b = asyncio.create_task(engine_b.run())
    try:
        await _eventually(
            lambda: _true(
                len(engine_a.assigned_partitions) == len(engine_b.assigned_partitions) == 2
                and len(engine_a.assignment) == len(engine_b.assignment) == 4
            )
        )
        for engine in (engine_a, engine_b):
            per_topic = {
                topic: {tp.partition for tp in engine.assignment if tp.topic == topic}
                for topic in (topics["in"], topics["in2"])
            }
            assert per_topic[topics["in"]] == per_topic[topics["in2"]] == engine.assigned_partitions
        batch = [(f"k{i % 16}".encode(), f"a{i}".encode()) for i in range(400)]
        await _produce(kafka_bootstrap, topics["in"], batch)
        await _produce(kafka_bootstrap, topics["in2"], batch)
        await _eventually(lambda: _at_least(kafka_bootstrap, topics["out"], 800))

        restores_before = engine_b.stats.restores
        engine_a.stop()
        await task_a
        await _eventually(lambda: _true(len(engine_b.assigned_partitions) == PARTITIONS))
        # Only the two partitions that moved are read from the changelog; b keeps its own.
        assert engine_b.stats.restores - restores_before == 2
        assert set(second.restored) == set(range(PARTITIONS))
        handed_over = {k: n for part in second.restored.values() for k, n in part.items()}
        assert handed_over == {f"k{i}": 50 for i in range(16)}

        await _produce(kafka_bootstrap, topics["in"], batch)
        await _eventually(lambda: _at_least(kafka_bootstrap, topics["out"], 1200))
    finally:
        for engine, task in ((engine_a, task_a), (engine_b, task_b)):
            engine.stop()
            await task
    values = Counter(r.value for r in await _read_committed(kafka_bootstrap, topics["out"]))
    assert sum(values.values()) == 1200
    restored = await _restored_counts(
        kafka_bootstrap, topics["app"], topics["in"], topics["state"], topics["out"]
    )
    assert restored == {f"k{i}": 75 for i in range(16)}


async def test_ticks_emit_outputs_on_a_quiet_topic(
    kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    """Wall-clock ticks fire deadlines although no record arrives after the first ones."""
    config = _config(kafka_bootstrap, topics["app"], topics["in"], topics["state"])
    engine = Engine(config, Deadlines(topics["out"], delay_ms=1000), IntCodec())
    task = asyncio.create_task(engine.run())
    try:
        await _produce(kafka_bootstrap, topics["in"], [(f"t{i}".encode(), b"") for i in range(5)])
        started = time.monotonic()
        await _eventually(lambda: _at_least(kafka_bootstrap, topics["out"], 5), within=30)
        assert time.monotonic() - started >= 0.5  # fired by the deadline, not by the input
    finally:
        engine.stop()
        await task
    expired = await _read_committed(kafka_bootstrap, topics["out"])
    assert sorted(r.key for r in expired) == [f"t{i}".encode() for i in range(5)]
    restored = await _restored_counts(
        kafka_bootstrap, topics["app"], topics["in"], topics["state"], topics["out"]
    )
    assert restored == {}


async def test_ticks_fire_while_every_partition_stays_busy(
    kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    """Deadlines fire on time although records keep arriving on every partition."""
    config = _config(
        kafka_bootstrap, topics["app"], topics["in"], topics["state"], fetch_max_wait=0.01
    )
    engine = Engine(config, SlowDeadlines(topics["out"], delay_ms=1000), IntCodec())
    task = asyncio.create_task(engine.run())
    producer = AIOKafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    await producer.start()

    async def keep_busy() -> None:
        # Keys refreshed all the time never expire; they keep every partition busy.
        while True:
            for partition in range(PARTITIONS):
                key = f"busy-{partition}".encode()
                await producer.send(topics["in"], b"", key=key, partition=partition)
            await asyncio.sleep(0.005)

    busy = asyncio.create_task(keep_busy())
    try:
        await _produce(kafka_bootstrap, topics["in"], [(f"t{i}".encode(), b"") for i in range(5)])
        await _eventually(lambda: _at_least(kafka_bootstrap, topics["out"], 5), within=20)
        assert not busy.done()  # still sending: the deadlines fired under load
    finally:
        busy.cancel()
        await asyncio.gather(busy, return_exceptions=True)
        await producer.stop()
        engine.stop()
        await task
    expired = await _read_committed(kafka_bootstrap, topics["out"])
    assert sorted(r.key for r in expired) == [f"t{i}".encode() for i in range(5)]


async def test_processor_exception_stops_the_engine_and_commits_nothing(
    kafka_bootstrap: str, topics: dict[str, str]
) -> None:
    """A processor that raises makes run() raise ProcessorError; its batch never commits."""
    await _produce(kafka_bootstrap, topics["in"], [(b"k", b"ok"), (b"k", b"poison")])
    config = _config(kafka_bootstrap, topics["app"], topics["in"], topics["state"])
    engine = Engine(config, Counting(topics["out"], fail_on=b"poison"), IntCodec())
    with pytest.raises(ProcessorError):
        async with asyncio.timeout(60):
            await engine.run()
    assert await _committed_count(kafka_bootstrap, topics["out"]) == 0
    assert (
        await _restored_counts(
            kafka_bootstrap, topics["app"], topics["in2"], topics["state"], topics["out"]
        )
        == {}
    )


async def test_a_fenced_engine_stops_loudly(kafka_bootstrap: str, topics: dict[str, str]) -> None:
    """When a newer producer takes a partition's transactional id, the old engine raises."""
    config = _config(kafka_bootstrap, topics["app"], topics["in"], topics["state"])
    engine = Engine(config, Counting(topics["out"]), IntCodec())
    task = asyncio.create_task(engine.run())
    await _eventually(lambda: _true(len(engine.assigned_partitions) == PARTITIONS))
    usurper = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap, transactional_id=f"{topics['app']}-0"
    )
    await usurper.start()
    try:
        await _produce(kafka_bootstrap, topics["in"], [(f"k{i}".encode(), b"v") for i in range(40)])
        with pytest.raises(FencedError):
            async with asyncio.timeout(60):
                await task
    finally:
        await usurper.stop()
        engine.stop()
        with contextlib.suppress(FencedError):
            await task


async def test_a_new_topic_matching_the_pattern_joins_and_stop_is_prompt(
    kafka_bootstrap: str, create_topics: CreateTopics, topics: dict[str, str], unique: Unique
) -> None:
    """A topic created while the engine runs is consumed; stop() returns within seconds."""
    prefix = unique("agency")
    config = _config(
        kafka_bootstrap,
        topics["app"],
        "",
        topics["state"],
        topics=(),
        topic_pattern=f"{prefix}\\..*",
        topic_refresh_interval=1.0,
    )
    engine = Engine(config, Counting(topics["out"]), IntCodec())
    task = asyncio.create_task(engine.run())
    try:
        await create_topics(f"{prefix}.first", partitions=PARTITIONS)
        await _eventually(lambda: _true(len(engine.assignment) == PARTITIONS))
        await create_topics(f"{prefix}.second", partitions=PARTITIONS)
        await _produce(kafka_bootstrap, f"{prefix}.second", [(b"k", b"hello")])
        await _eventually(lambda: _at_least(kafka_bootstrap, topics["out"], 1), within=30)
        assert len(engine.assignment) == 2 * PARTITIONS
    finally:
        engine.stop()
        started = time.monotonic()
        await task
    assert time.monotonic() - started < 5


def _worker_main(argv: list[str]) -> None:
    """The SIGKILL test's worker: small batches, so the kill lands between many transactions."""
    bootstrap, app, inputs, out, changelog = argv
    config = _config(bootstrap, app, inputs, changelog, batch_max_records=20)
    asyncio.run(Engine(config, Counting(out), IntCodec()).run())


if __name__ == "__main__":
    _worker_main(sys.argv[1:])
