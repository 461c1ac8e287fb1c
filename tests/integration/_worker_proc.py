"""A real ``exchange worker`` in a subprocess, for tests that need the bus's stream workers.

::

    await create_bus_topics(settings, ["TAX", "NOCR"])
    with running_worker(settings) as worker:      # returns once it owns every partition
        ...                                       # client, provider, raw records
        worker.terminate()                        # SIGTERM; the seconds it took to exit

The worker logs JSON lines on stderr; a reader thread keeps them, so a test can wait for an
event (``wait_for``), see which partitions the worker owns (``assigned``) and print the log
when something fails. Everything is synchronous (``Popen`` and a thread), so the helper works
from sync and async tests and from fixtures of any scope.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from exchange import ExchangeSettings
from exchange._catalog import load_catalog
from exchange._kafka import client_options, resolve_bootstrap
from exchange._topology import TopicKind, TopologyConfig, desired_topics

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "catalog" / "demo"
SCHEMAS = ROOT / "schemas"
#: Python start-up, catalog load, group join and state restore on two busy cores.
START_TIMEOUT = 60.0
Event = dict[str, Any]


def bus_settings(settings: ExchangeSettings, *, partitions: int = 2) -> ExchangeSettings:
    """``settings`` with few partitions and the repository's demo catalog, absolute paths."""
    return settings.model_copy(
        update={"partitions": partitions, "catalog_path": CATALOG, "schemas_path": SCHEMAS}
    )


async def create_bus_topics(settings: ExchangeSettings, agencies: Sequence[str]) -> list[str]:
    """Create the agencies' topics and the bus-wide ones, as ``exchange topics apply`` would."""
    catalog = load_catalog(settings.catalog_path, settings.schemas_path)
    config = TopologyConfig(prefix=settings.topic_prefix, partitions=settings.partitions)
    specs = [
        spec
        for spec in desired_topics(catalog, config)
        if spec.agency in agencies or (spec.agency is None and spec.kind != TopicKind.COMPLIANCE)
    ]
    admin = AIOKafkaAdminClient(
        bootstrap_servers=resolve_bootstrap(settings), **client_options(settings)
    )
    await admin.start()
    try:
        new = [
            NewTopic(s.name, s.partitions, s.replication_factor, topic_configs=dict(s.configs))
            for s in specs
        ]
        response = await admin.create_topics(new)
        failed = [(name, code) for name, code, _ in response.topic_errors if code not in (0, 36)]
        assert not failed, f"could not create topics: {failed}"
        await _wait_for_leaders(admin, [s.name for s in specs])
    finally:
        await admin.close()
    return [s.name for s in specs]


async def _wait_for_leaders(admin: Any, names: list[str]) -> None:
    async with asyncio.timeout(30):
        while True:
            if all(_led(topic) for topic in await admin.describe_topics(names)):
                return
            await asyncio.sleep(0.1)


def _led(topic: dict[str, Any]) -> bool:
    partitions = topic["partitions"]
    led = all(p["leader"] >= 0 for p in partitions)
    return topic["error_code"] == 0 and bool(partitions) and led


class WorkerProcess:
    """One running ``exchange worker`` and what it logged."""

    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen
        self.lines: list[str] = []
        self.events: list[Event] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.popen.pid

    def _read(self) -> None:
        assert self.popen.stderr is not None
        for raw in self.popen.stderr:
            line = raw.decode("utf-8", errors="replace").rstrip()
            with self._changed:
                self.lines.append(line)
                with contextlib.suppress(ValueError):
                    event = json.loads(line)
                    if isinstance(event, dict):
                        self.events.append(event)
                self._changed.notify_all()

    def log(self, last: int = 60) -> str:
        """The last lines the worker wrote on stderr, for failure messages."""
        with self._changed:
            return "\n".join(self.lines[-last:])

    def wait_for(self, match: Callable[[Event], bool], timeout: float = START_TIMEOUT) -> Event:
        """The first logged event that matches; AssertionError with the log on timeout."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                for event in self.events[seen:]:
                    if match(event):
                        return event
                seen = len(self.events)
                left = deadline - time.monotonic()
                if left <= 0 or self.popen.poll() is not None:
                    break
                self._changed.wait(min(left, 0.2))
        raise AssertionError(f"the worker never logged the awaited event:\n{self.log()}")

    @property
    def assigned(self) -> set[int]:
        """The partition numbers the worker owns, from its assignment log lines."""
        owned: set[int] = set()
        with self._changed:
            for event in self.events:
                if event.get("event") == "partition assigned":
                    owned.add(event["partition"])
                elif event.get("event") == "partition revoked":
                    owned.discard(event["partition"])
        return owned

    def wait_assigned(self, partitions: set[int], timeout: float = START_TIMEOUT) -> None:
        """Block until the worker owns exactly ``partitions``."""
        deadline = time.monotonic() + timeout
        while self.assigned != partitions:
            if time.monotonic() > deadline or self.popen.poll() is not None:
                raise AssertionError(
                    f"worker owns {sorted(self.assigned)}, not {sorted(partitions)}:\n{self.log()}"
                )
            time.sleep(0.1)

    def terminate(self, timeout: float = 30.0) -> float:
        """SIGTERM, wait for the exit; the seconds it took."""
        started = time.monotonic()
        self.popen.send_signal(signal.SIGTERM)
        self.popen.wait(timeout)
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL: no drain, no commit, no goodbye to the group."""
        self.popen.kill()
        self.popen.wait(10)


def worker_command(*args: str) -> list[str]:
    """The command line of ``exchange worker`` with this interpreter."""
    return [sys.executable, "-c", "from exchange.cli import main; main()", "worker", *args]


@contextlib.contextmanager
def running_worker(
    settings: ExchangeSettings,
    *,
    args: Sequence[str] = (),
    owns: set[int] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[WorkerProcess]:
    """Start ``exchange worker`` with ``settings``; yield once it owns ``owns`` (default: every
    partition); kill it on the way out if the test left it running."""
    environment = {
        **os.environ,
        "EXCHANGE_KAFKA_BOOTSTRAP": resolve_bootstrap(settings),
        "EXCHANGE_TOPIC_PREFIX": settings.topic_prefix,
        "EXCHANGE_PARTITIONS": str(settings.partitions),
        "EXCHANGE_CATALOG_PATH": str(settings.catalog_path),
        "EXCHANGE_SCHEMAS_PATH": str(settings.schemas_path),
        "EXCHANGE_STATE_DIR": str(settings.state_dir),
        "EXCHANGE_LOG_FORMAT": "json",
        "EXCHANGE_LOG_LEVEL": "INFO",
        **(env or {}),
    }
    popen = subprocess.Popen(
        worker_command(*args), env=environment, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
    )
    worker = WorkerProcess(popen)
    try:
        if owns is None:
            owns = set(range(settings.partitions))
        if owns:
            worker.wait_assigned(owns)
        yield worker
    finally:
        if popen.poll() is None:
            worker.kill()
