"""The bus around a connector under test: its topics and a real ``exchange worker`` process."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from exchange._admin import TopicAdmin, apply_plan, read_plan, settle
from exchange._catalog import load_catalog
from exchange._kafka import client_options, resolve_bootstrap
from exchange._settings import ExchangeSettings
from exchange._topology import TopicKind, TopologyConfig, desired_topics

__all__ = ["bus_env", "create_topics", "records_per_id", "running_worker"]

#: Python start-up, catalog load and group join on two busy cores.
WORKER_START_TIMEOUT = 90.0


async def create_topics(settings: ExchangeSettings, agencies: Sequence[str]) -> None:
    """Create the agencies' topics and the bus-wide ones, as ``exchange topics apply`` would."""
    catalog = load_catalog(settings.catalog_path, settings.schemas_path)
    config = TopologyConfig(prefix=settings.topic_prefix, partitions=settings.partitions)
    specs = [
        spec
        for spec in desired_topics(catalog, config)
        if spec.agency in agencies or (spec.agency is None and spec.kind != TopicKind.COMPLIANCE)
    ]
    async with TopicAdmin.for_settings(settings) as admin:
        await apply_plan(admin, await read_plan(admin, specs, settings.topic_prefix))
        await settle(admin, specs, settings.topic_prefix)


async def records_per_id(
    settings: ExchangeSettings, topic: str, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """How many committed records ``topic`` holds for each inquiry id (records are keyed by
    inquiry id), read from the start until a poll returns nothing."""
    from aiokafka import AIOKafkaConsumer

    options: dict[str, Any] = {"bootstrap_servers": resolve_bootstrap(settings)}
    options.update(client_options(settings))
    consumer = AIOKafkaConsumer(
        topic,
        **options,
        group_id=None,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
    )
    wanted = {str(i).encode(): i for i in ids}
    counts = dict.fromkeys(ids, 0)
    await consumer.start()
    try:
        while batches := await consumer.getmany(timeout_ms=1500):
            for records in batches.values():
                for record in records:
                    if record.key in wanted:
                        counts[wanted[record.key]] += 1
    finally:
        await consumer.stop()
    return counts


def bus_env(settings: ExchangeSettings, **extra: str) -> dict[str, str]:
    """This process's environment with ``settings`` (and ``extra``) for a child ``exchange``
    command: the broker, topic prefix, partitions, catalog, schemas and state folder."""
    return {
        **os.environ,
        "EXCHANGE_KAFKA_BOOTSTRAP": resolve_bootstrap(settings),
        "EXCHANGE_TOPIC_PREFIX": settings.topic_prefix,
        "EXCHANGE_PARTITIONS": str(settings.partitions),
        "EXCHANGE_CATALOG_PATH": str(settings.catalog_path),
        "EXCHANGE_SCHEMAS_PATH": str(settings.schemas_path),
        "EXCHANGE_STATE_DIR": str(settings.state_dir),
        "EXCHANGE_LOG_FORMAT": "json",
        **extra,
    }


@contextlib.contextmanager
def running_worker(
    settings: ExchangeSettings, *, log_path: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """``exchange worker`` for ``settings``; yields once it owns every partition. Its log
    goes to ``log_path`` when given (for failure messages), else to a temporary file."""
    env = bus_env(settings, EXCHANGE_LOG_LEVEL="INFO")
    command = [sys.executable, "-c", "from exchange.cli import main; main()", "worker"]
    # Opened here, closed by the ``with`` right below.
    opened = log_path.open("w+b") if log_path is not None else tempfile.TemporaryFile()  # noqa: SIM115
    with opened as log:
        # The command is this interpreter and a fixed module: no untrusted input.
        popen = subprocess.Popen(  # noqa: S603
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        owned: set[int] = set()
        ready = threading.Event()
        reader = threading.Thread(
            target=_follow, args=(popen, log, owned, settings.partitions, ready), daemon=True
        )
        reader.start()
        try:
            deadline = time.monotonic() + WORKER_START_TIMEOUT
            while not ready.wait(0.2):
                if popen.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace")[-4000:]
                    raise RuntimeError(f"the exchange worker did not start:\n{tail}")
            yield popen
        finally:
            if popen.poll() is None:
                popen.terminate()
                try:
                    popen.wait(30)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.wait(10)
            reader.join(10)
            if popen.stderr is not None:
                popen.stderr.close()


def _follow(
    popen: subprocess.Popen[bytes],
    log: IO[bytes],
    owned: set[int],
    partitions: int,
    ready: threading.Event,
) -> None:
    """Keep the worker's log and note its partitions until it owns them all."""
    assert popen.stderr is not None
    for raw in popen.stderr:
        log.write(raw)
        log.flush()
        with contextlib.suppress(ValueError):
            event = json.loads(raw)
            if isinstance(event, dict) and event.get("event") == "partition assigned":
                owned.add(int(event["partition"]))
                if len(owned) >= partitions:
                    ready.set()
