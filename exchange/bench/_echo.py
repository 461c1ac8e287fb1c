"""Scenario ``echo``: an in-memory requester and an idle helper process, no Kafka at all.

It exercises the harness itself (child processes, phase lines, CPU and RSS readings, results)
in a few seconds, so the runner has tests that need no broker. Not registered: name it as
``exchange.bench._echo:SCENARIO`` (or ``:CRASHING``, whose helper process dies at once).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from exchange.bench._loadgen import Requester
from exchange.bench._scenario import ProcessSpec, ScenarioEnv, python_process

#: Each ``ask()`` takes this long, like a round trip that costs no CPU.
ROUND_TRIP_S = 0.002


class _Echo:
    async def ask(self) -> None:
        await asyncio.sleep(ROUND_TRIP_S)


@asynccontextmanager
async def _echo() -> AsyncIterator[Requester]:
    yield _Echo()


class EchoScenario:
    """Answers every inquiry in memory after :data:`ROUND_TRIP_S`."""

    description = "in-memory echo: tests the harness, measures nothing"

    def __init__(self, *, crash: bool = False) -> None:
        self.name = "echo-crash" if crash else "echo"
        self._helper = "exchange.bench._echo:" + ("crash" if crash else "idle")

    async def prepare(self, env: ScenarioEnv) -> None:
        """Nothing to create."""

    def processes(self, env: ScenarioEnv) -> list[ProcessSpec]:
        """One helper process, so the runner has a service to start, watch and stop."""
        return [python_process("helper", self._helper, env)]

    def requester(self, env: ScenarioEnv) -> AbstractAsyncContextManager[Requester]:
        """The in-memory requester."""
        return _echo()

    async def cleanup(self, env: ScenarioEnv) -> None:
        """Nothing to remove."""


async def idle(env: ScenarioEnv, stop: asyncio.Event) -> None:
    """Wait for SIGTERM."""
    await stop.wait()


async def crash(env: ScenarioEnv, stop: asyncio.Event) -> None:
    """Die with exit code 3, as a broken service process would."""
    raise SystemExit(3)


SCENARIO = EchoScenario()
CRASHING = EchoScenario(crash=True)
