"""The demo's child processes (``exchange worker``, ``exchange provide`` …) and their readiness.

Each child runs this interpreter's ``exchange`` command in a session of its own (Ctrl-C in the
terminal reaches only the demo, which stops the children in order) and is tied to the demo by
the Linux parent-death signal, so a demo killed hard leaves none behind. Its stdout and stderr
go to a log file under ``<state_dir>/demo/``.

A child is ready when its Kafka consumer group is ``Stable`` (its members have their
partitions); :func:`wait_for_groups` asks the group coordinator through the admin client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from exchange._errors import BrokerError
from exchange._kafka import kafka_options
from exchange._local_broker_os import parent_death_signal
from exchange._settings import ExchangeSettings

__all__ = ["Child", "child_env", "wait_for_groups", "wait_for_partitions"]

#: How long a child has to exit after SIGTERM before it is killed.
STOP_TIMEOUT = 20.0


class Child:
    """One ``exchange …`` child process of the demo."""

    def __init__(self, name: str, args: Sequence[str], env: Mapping[str, str], log: Path) -> None:
        self.name = name
        self.args = list(args)
        self.env = dict(env)
        self.log = log
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        """The process id once started."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Start it in the background (from the main thread: see the parent-death signal)."""
        self.log.parent.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-c", "from exchange.cli import main; main()", *self.args]
        with self.log.open("wb") as out:  # one run per log
            self._proc = subprocess.Popen(  # noqa: S603 - our own interpreter and command
                command,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=parent_death_signal(),  # noqa: PLW1509 - prctl only, before exec
            )

    def check(self) -> None:
        """Raise if the child has exited (with the end of its log)."""
        if self._proc is not None and self._proc.poll() is not None:
            raise BrokerError(
                f"{self.name} exited with code {self._proc.returncode}; "
                f"see {self.log}:\n{self.log_tail()}",
                retriable=False,
            )

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of its log."""
        if not self.log.is_file():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines it wrote so far (children log JSON), parsed."""
        if not self.log.is_file():
            return []
        found = []
        for line in self.log.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    found.append(json.loads(line))
        return found

    def terminate(self) -> None:
        """Ask it to stop (SIGTERM), without waiting."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM, wait, SIGKILL if it lingers; the exit code (None if never started)."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode


def child_env(settings: ExchangeSettings, bootstrap: str, **extra: str) -> dict[str, str]:
    """The environment of a child: the demo's settings, made explicit and absolute."""
    env = {
        **os.environ,
        "EXCHANGE_KAFKA_BOOTSTRAP": bootstrap,
        "EXCHANGE_TOPIC_PREFIX": settings.topic_prefix,
        "EXCHANGE_PARTITIONS": str(settings.partitions),
        "EXCHANGE_CATALOG_PATH": str(settings.catalog_path.resolve()),
        "EXCHANGE_SCHEMAS_PATH": str(settings.schemas_path.resolve()),
        "EXCHANGE_STATE_DIR": str(settings.state_dir.resolve()),
        "EXCHANGE_LOG_FORMAT": "json",
        "EXCHANGE_LOG_LEVEL": "INFO",
    }
    env.pop("EXCHANGE_METRICS_PORT", None)
    env.update(extra)
    return env


async def wait_for_groups(
    settings: ExchangeSettings,
    groups: Sequence[str],
    children: Sequence[Child],
    timeout: float,  # noqa: ASYNC109 - how long start-up may take
) -> None:
    """Return once every consumer group is ``Stable`` with members; raise if a child dies or
    the time runs out."""
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(**kafka_options(settings))
    await admin.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiting = list(groups)
        while waiting:
            for child in children:
                child.check()
            waiting = [group for group in waiting if not await _stable(admin, group)]
            if waiting and loop.time() > deadline:
                raise BrokerError(
                    f"consumer groups not ready after {timeout:.0f} s: {', '.join(waiting)}",
                    retriable=False,
                )
            if waiting:
                await asyncio.sleep(0.25)
    finally:
        await admin.close()


async def wait_for_partitions(child: Child, partitions: int, timeout: float) -> None:  # noqa: ASYNC109 - how long start-up may take
    """Return once the worker ``child`` logged that it owns ``partitions`` partitions (its
    group is stable before it has restored their state and can process)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        child.check()
        owned: set[int] = set()
        for event in child.events():
            if event.get("event") == "partition assigned":
                owned.add(event["partition"])
            elif event.get("event") == "partition revoked":
                owned.discard(event["partition"])
        if len(owned) >= partitions:
            return
        if loop.time() > deadline:
            raise BrokerError(
                f"{child.name} owns {len(owned)} of {partitions} partitions after "
                f"{timeout:.0f} s; see {child.log}",
                retriable=False,
            )
        await asyncio.sleep(0.2)


async def _stable(admin: Any, group: str) -> bool:
    from aiokafka.errors import KafkaError

    try:
        responses = await admin.describe_consumer_groups([group])
    except KafkaError:  # no coordinator yet (a fresh broker creates __consumer_offsets)
        return False
    for response in responses:
        for described in response.groups:
            # (error_code, group_id, state, protocol_type, protocol, members, ...)
            if described[1] == group:
                return described[0] == 0 and described[2] == "Stable" and bool(described[5])
    return False
