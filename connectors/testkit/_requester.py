"""The requester half of the conformance kit: the adapter a connector's tests write, and the
harness that runs the connector against a real bus.

A requester connector's tests describe its legacy side with a small adapter (any object with
these four methods; they may block, the kit calls them from a worker thread)::

    class MyLegacy:                                   # a RequesterLegacy
        def emit(self, events: Sequence[LegacyEvent]) -> None: ...   # legacy events appear
        def outcomes(self) -> Sequence[Written]: ...  # what the connector wrote back so far
        def break_(self) -> None: ...                 # the legacy side goes down …
        def heal(self) -> None: ...                   # … and comes back, data intact

Each :class:`LegacyEvent` has a ``key`` the adapter writes as the inquiry's case reference
(the scripted provider answers by it) and reads back with the outcome; a ``malformed`` one is
an event that cannot be an inquiry (a payload that is no JSON object, a bad row), which the
connector must report (an error row, an ``.errors`` file, a ``REJECTED`` outcome) with the
reason. :class:`RequesterHarness` runs, for a :class:`RequesterCase`:

- the agencies' topics and a real ``exchange worker`` process (routing, policy, timeouts);
- a :class:`~connectors.testkit._script.ScriptedProvider` answering the case's service;
- the connector itself as ``exchange connector run CONFIG`` in a child process of its own (so
  it can be SIGKILLed), with its ``/health`` endpoint on a free port to watch its circuit.

The checks are in :mod:`connectors.testkit._requester_checks`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

import httpx

from connectors.testkit._bus import bus_env, create_topics, records_per_id, running_worker
from connectors.testkit._legacy import free_port
from connectors.testkit._script import ScriptedProvider
from exchange._settings import ExchangeSettings
from exchange._topology import Topics

__all__ = ["LegacyEvent", "RequesterCase", "RequesterHarness", "RequesterLegacy", "Written"]

#: Python start-up and imports of ``exchange connector run`` on two busy cores.
CONNECTOR_START_TIMEOUT = 60.0


@dataclass(frozen=True, slots=True)
class LegacyEvent:
    """One event the adapter makes appear in the legacy system."""

    #: Unique; the inquiry's case reference, and how the adapter names what was written back.
    key: str
    purpose: str
    #: Seconds the inquiry may take once sent (the adapter sets it as its connector allows).
    deadline: float
    #: An event that cannot become an inquiry: it must be reported with a reason, not sent.
    malformed: bool = False


@dataclass(frozen=True, slots=True)
class Written:
    """What the connector wrote back to the legacy system for one event."""

    key: str
    #: ANSWERED, REJECTED, FAILED or TIMED_OUT; ERROR for an event reported as malformed
    #: (an error file or error row rather than an outcome).
    kind: str
    status: str | None = None
    #: The reject reason, error code, or why the event could not be an inquiry.
    reason: str | None = None


class RequesterLegacy(Protocol):
    """The legacy side of a requester connector, as its tests drive it (module docstring)."""

    def emit(self, events: Sequence[LegacyEvent]) -> None: ...
    def outcomes(self) -> Sequence[Written]: ...
    def break_(self) -> None: ...
    def heal(self) -> None: ...


@dataclass(frozen=True)
class RequesterCase:
    """What the kit needs to know about a requester connector under test."""

    #: The connector's config as in its YAML file (the kit adds ``health``); ``concurrency``
    #: and fast ``retry``/``circuit`` settings keep the run short.
    config: Mapping[str, Any]
    legacy: RequesterLegacy
    #: The service the adapter's events ask, and a purpose the policy allows for it.
    service: str
    purpose: str
    #: A purpose the policy does not allow: the bus answers REJECTED.
    refused_purpose: str = "kit-refused-purpose"
    #: The FOUND answer's payload (default: a placeholder payload of the response schema).
    answer: Mapping[str, Any] | None = None
    short_deadline: float = 3.0
    long_deadline: float = 25.0
    #: Beyond an inquiry's deadline: how long its outcome may take to be written back.
    settle: float = 30.0


class RequesterHarness:
    """The connector on a real bus with a scripted provider; ``async with`` it."""

    def __init__(
        self, case: RequesterCase, settings: ExchangeSettings, *, workdir: Path | None = None
    ) -> None:
        self.case = case
        self.settings = settings
        self.agency = str(case.config["agency"])
        self.provider = ScriptedProvider(settings, case.service, answer=case.answer)
        topics = Topics.for_settings(settings)
        self.in_topic = topics.in_(self.provider.agency)
        self.replies_topic = topics.replies(self.agency)
        self.health_port = free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="requester-kit-")
        self.workdir = workdir or Path(self._tmp.name)
        self.config_file = self.workdir / "connector.yaml"
        self.log_file = self.workdir / "connector.log"
        self.worker_log = self.workdir / "worker.log"
        self._run = secrets.token_hex(2)
        self._counter = 0
        self._circuit: str | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._stack = contextlib.AsyncExitStack()

    # --- lifecycle ----------------------------------------------------------------------------

    async def __aenter__(self) -> RequesterHarness:
        await create_topics(self.settings, sorted({self.agency, self.provider.agency}))
        config = {**self.case.config, "health": {"host": "127.0.0.1", "port": self.health_port}}
        self.config_file.write_text(json.dumps(config, indent=2), encoding="utf-8")
        try:
            self._stack.enter_context(running_worker(self.settings, log_path=self.worker_log))
            await self._stack.enter_async_context(self.provider)
            await self.start_connector()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            code = await self.stop_connector()
            if kind is None:
                assert code == 0, f"the connector exited {code} on SIGTERM:\n{self.log_tail()}"
        finally:
            await self._stack.aclose()
            self._tmp.cleanup()

    async def start_connector(self) -> float:
        """Start ``exchange connector run``; seconds until its ``/health`` answers."""
        started = time.monotonic()
        self._log = self.log_file.open("ab")
        # The command is this interpreter and a fixed module; the config is the test's own.
        # Popen returns at once (the child runs on its own): nothing blocks the loop.
        self._process = subprocess.Popen(  # noqa: S603, ASYNC220
            [sys.executable, "-c", "from exchange.cli import main; main()", "connector", "run",
             str(self.config_file)],
            env=bus_env(self.settings, EXCHANGE_LOG_LEVEL="INFO", PYTHONPATH=_python_path()),
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )  # fmt: skip
        while await self.health() is None:
            if self._process.poll() is not None:
                raise AssertionError(f"the connector exited at start:\n{self.log_tail()}")
            if time.monotonic() - started > CONNECTOR_START_TIMEOUT:
                raise AssertionError(f"the connector's /health never answered:\n{self.log_tail()}")
            await asyncio.sleep(0.1)
        return time.monotonic() - started

    def kill_connector(self) -> None:
        """SIGKILL: the connector is gone at once, mid-stream."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait(10)
        self._closed()

    async def stop_connector(self) -> int | None:
        """SIGTERM and wait for a graceful exit; its exit code (None if it was not running)."""
        process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        self._closed()
        return process.returncode

    def _closed(self) -> None:
        self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, chars: int = 4000) -> str:
        """The end of the connector's log (all its runs) and the worker's, for failures."""
        tails = []
        for name, path in (("connector", self.log_file), ("worker", self.worker_log)):
            text = path.read_text(errors="replace")[-chars:] if path.exists() else "(none)"
            tails.append(f"--- {name} log:\n{text}")
        return "\n".join(tails)

    # --- the legacy side ----------------------------------------------------------------------

    def keys(self, tag: str, n: int) -> list[str]:
        """``n`` fresh event keys, unique to this harness."""
        self._counter += 1
        return [f"K{self._run}-{self._counter}{tag}-{i}" for i in range(n)]

    async def emit(self, events: Sequence[LegacyEvent]) -> None:
        """The adapter makes the events appear in the legacy system."""
        await asyncio.to_thread(self.case.legacy.emit, list(events))

    async def written(self) -> dict[str, list[Written]]:
        """What the connector wrote back so far, by key."""
        found: dict[str, list[Written]] = {}
        for item in await asyncio.to_thread(self.case.legacy.outcomes):
            found.setdefault(item.key, []).append(item)
        return found

    async def wait_written(self, keys: Sequence[str], *, within: float) -> dict[str, list[Written]]:
        """What was written back for ``keys``, once every key has something."""
        deadline = time.monotonic() + within
        while True:
            found = await self.written()
            missing = [key for key in keys if key not in found]
            if not missing:
                return {key: found[key] for key in keys}
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"nothing written back within {within} s for {missing}\n{self.log_tail()}"
                )
            await asyncio.sleep(0.2)

    # --- the connector's state ----------------------------------------------------------------

    async def health(self) -> dict[str, Any] | None:
        """The connector's ``/health`` document, or None when it does not answer."""
        try:
            async with httpx.AsyncClient(timeout=2.0) as http:
                response = await http.get(f"http://127.0.0.1:{self.health_port}/health")
        except httpx.HTTPError:
            return None
        status: dict[str, Any] = response.json()
        return status

    async def wait_circuit(self, circuit: str, *, within: float = 20.0) -> float:
        """Seconds until ``/health`` reports the circuit ``closed``/``half_open``/``open``."""
        started = time.monotonic()
        await until(lambda: self._circuit == circuit, within, f"circuit {circuit}", self._watch)
        return time.monotonic() - started

    async def _watch(self) -> None:
        status = await self.health()
        self._circuit = None if status is None else str(status["circuit"])

    # --- the bus ------------------------------------------------------------------------------

    async def records_per_id(self, topic: str, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """How many committed records ``topic`` holds for each inquiry id (records are keyed
        by inquiry id)."""
        return await records_per_id(self.settings, topic, ids)


async def until(
    condition: Callable[[], bool],
    within: float,
    what: str,
    refresh: Callable[[], Any] | None = None,
) -> float:
    """Seconds until ``condition()`` holds (``await refresh()`` before each look)."""
    started = time.monotonic()
    while True:
        if refresh is not None:
            await refresh()
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > within:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.1)


def _python_path() -> str:
    """This process's import path, so the child finds the connector's package (a project's
    own, importable here through pytest's ``pythonpath``) as the tests do."""
    paths = [p for p in sys.path if p and Path(p).is_dir()]
    inherited = os.environ.get("PYTHONPATH")
    return os.pathsep.join([*paths, *([inherited] if inherited else [])])
