"""What the requester connector tests share: a simulated provider and a running runtime."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from _worker_proc import exchange_command
from prometheus_client import CollectorRegistry
from samples import verdict

from connectors._runtime import RequesterRuntime
from connectors._sdk import RequesterSource
from connectors.testkit._bus import bus_env
from exchange import Answer, ExchangeSettings, Inquiry, Provider

VERIFY = "nocr.person.verify.v1"
#: The national id the simulated registry does not know.
UNKNOWN_PERSON = "0000000000"


@contextlib.asynccontextmanager
async def civil_registry(
    settings: ExchangeSettings, *, delay: float = 0.0
) -> AsyncIterator[Counter[str]]:
    """A simulated NOCR (the SDK's Provider) answering person verification: FOUND, or
    NOT_FOUND for :data:`UNKNOWN_PERSON`. Yields how often each inquiry id reached it."""
    provider = Provider(agency="NOCR", settings=settings)
    handled: Counter[str] = Counter()

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        handled[str(inquiry.id)] += 1
        if delay:
            await asyncio.sleep(delay)
        if inquiry.payload["national_id"] == UNKNOWN_PERSON:
            return Answer.not_found()
        return Answer.found(verdict(inquiry.payload["national_id"]))

    serving = asyncio.create_task(provider.run())
    try:
        yield handled
    finally:
        await provider.stop()
        await serving


@contextlib.asynccontextmanager
async def running(
    source: RequesterSource[Any], settings: ExchangeSettings
) -> AsyncIterator[RequesterRuntime]:
    """The source on its runtime (durable outcomes) in this loop; stopped on exit."""
    runtime = RequesterRuntime(source, settings, registry=CollectorRegistry())
    task = asyncio.create_task(runtime.run())
    try:
        yield runtime
    finally:
        runtime.stop()
        async with asyncio.timeout(30):
            await task


async def until(condition: Callable[[], bool], within: float, what: str) -> float:
    """Seconds until ``condition()`` holds; AssertionError naming ``what`` after ``within``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            raise AssertionError(f"{what}: not within {within} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started


def connector_process(bus: ExchangeSettings, config_file: Path) -> subprocess.Popen[bytes]:
    """``exchange connector run CONFIG_FILE`` on ``bus`` in a child process (output dropped)."""
    return subprocess.Popen(
        exchange_command("connector", "run", str(config_file)),
        env=bus_env(bus),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
