"""One demo run: bring the bus up, send the workload, wait for every outcome, summarise.

::

    stack up ─▶ observer at the topics' ends ─▶ clients + broken client + desk clerk
      ─▶ workload (rate- or window-limited, live progress) ─▶ drain: every outcome, audit
         record and dead letter in, or the drain timeout ─▶ catch up to the last stable
         offsets ─▶ summary ─▶ (--keep-running: wait for Ctrl-C) ─▶ everything stopped

The workload is open loop when ``rate`` is set (send times fixed in advance), otherwise as
fast as the bus takes it with at most ``in_flight`` inquiries waiting. Each inquiry's deadline
on the bus is ``deadline`` seconds after it is sent, short enough that the stuck share times
out within the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from exchange._catalog import load_catalog
from exchange._catalog_model import Catalog
from exchange._codec import Codec, SchemaStore
from exchange._errors import ConfigError
from exchange._settings import ExchangeSettings
from exchange._topology import Topics
from exchange.demo._agencies import SERVICES, DemoAgencies
from exchange.demo._clerk import Clerk
from exchange.demo._data import build_registers
from exchange.demo._observer import Observer
from exchange.demo._requesters import Requesters
from exchange.demo._stack import Stack
from exchange.demo._summary import summarize
from exchange.demo._tally import Tally
from exchange.demo._workload import Workload, plan_workload

__all__ = ["DemoOptions", "DemoUI", "run_demo"]

#: After the last send: how long the last inquiries may take to settle, past their deadline.
DRAIN_GRACE = 15.0


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """How ``exchange demo`` runs."""

    inquiries: int = 10_000
    #: Inquiries per second (open loop); None: as fast as the bus takes them.
    rate: float | None = None
    #: The most inquiries waiting for an outcome at once, when ``rate`` is None.
    in_flight: int = 500
    #: Each inquiry's deadline on the bus, seconds after sending.
    deadline: float = 3.0
    keep_running: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.inquiries < 1:
            raise ConfigError("--inquiries must be at least 1")
        if self.rate is not None and self.rate <= 0:
            raise ConfigError("--rate must be positive")
        if self.in_flight < 1:
            raise ConfigError("--in-flight must be at least 1")


class DemoUI(Protocol):
    """Where the run reports: notes, the live progress, and the wait of ``--keep-running``."""

    def note(self, message: str) -> None:
        """One line about what is happening."""

    def progress(self, tally: Tally, total: int) -> contextlib.AbstractAsyncContextManager[None]:
        """Show the workload's progress while the block runs."""

    def summary(self, summary: dict[str, Any]) -> None:
        """Show the summary of the run."""

    async def explore(self, summary: dict[str, Any], stack: Stack) -> None:
        """With ``--keep-running``: say how to explore, return when the user stops the demo."""


def _catalog(settings: ExchangeSettings) -> Catalog:
    if not settings.catalog_path.is_dir():
        raise ConfigError(
            f"catalog folder {settings.catalog_path} not found: run the demo from the "
            "repository's root or set EXCHANGE_CATALOG_PATH (and EXCHANGE_SCHEMAS_PATH)"
        )
    return load_catalog(settings.catalog_path, settings.schemas_path)


async def run_demo(settings: ExchangeSettings, options: DemoOptions, ui: DemoUI) -> dict[str, Any]:
    """Run the demo end to end; the summary document (see :mod:`exchange.demo._summary`)."""
    catalog = _catalog(settings)
    registers = build_registers()
    workload = plan_workload(catalog, registers, options.inquiries, seed=options.seed)
    stack = Stack(settings, catalog, ui.note)
    try:
        settings = await stack.up()
        summary = await _measure(settings, catalog, workload, options, stack, ui, registers)
        if options.keep_running:
            stack.start_evaluation()
            summary["metrics"] = dict(stack.metrics)
        ui.summary(summary)
        if options.keep_running:
            await ui.explore(summary, stack)
        return summary
    finally:
        ui.note("stopping")
        await asyncio.to_thread(stack.down)


async def _measure(  # noqa: PLR0917 - one call site; the run's parts, named
    settings: ExchangeSettings,
    catalog: Catalog,
    workload: Workload,
    options: DemoOptions,
    stack: Stack,
    ui: DemoUI,
    registers: Any,
) -> dict[str, Any]:
    codec = Codec(
        SchemaStore.from_directory(settings.schemas_path),
        max_record_bytes=settings.max_record_bytes,
    )
    tally = Tally()
    agencies = sorted({planned.agency for planned in workload.inquiries})
    observer = Observer(settings, agencies, codec, tally)
    requesters = Requesters(settings, catalog, codec, tally, deadline=options.deadline)
    clerk = Clerk(settings, catalog, codec, DemoAgencies(registers))
    await observer.start()
    clerk_task: asyncio.Task[None] | None = None
    try:
        await requesters.start(workload.requesters)
        clerk_task = asyncio.create_task(clerk.run(), name="demo-clerk")
        checks = _Checks(stack, observer, clerk_task)
        async with ui.progress(tally, len(workload.inquiries)):
            await _send_all(workload, options, requesters, tally, checks)
            await _drain(tally, options, checks)
        await observer.catch_up()
    finally:
        if clerk_task is not None:
            clerk_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await clerk_task
        await requesters.close()
        await observer.close()
    providers = {s: found.provider for s in SERVICES if (found := catalog.service(s))}
    extra = {
        "metrics": dict(stack.metrics),
        "bootstrap": settings.kafka_bootstrap,
        "topic_prefix": settings.topic_prefix,
        "audit_topic": Topics.for_settings(settings).audit,
        "manual_answers_by_clerk": clerk.answered,
        "logs": str(stack.logs),
    }
    return summarize(tally, providers=providers, extra=extra)


class _Checks:
    """Fails the run early when a part of it died, instead of waiting out the drain."""

    def __init__(self, stack: Stack, observer: Observer, clerk: asyncio.Task[None]) -> None:
        self._stack = stack
        self._observer = observer
        self._clerk = clerk

    def __call__(self) -> None:
        self._stack.check()
        self._observer.check()
        if self._clerk.done() and not self._clerk.cancelled():
            self._clerk.result()


async def _send_all(
    workload: Workload,
    options: DemoOptions,
    requesters: Requesters,
    tally: Tally,
    checks: Callable[[], None],
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    garbage_every = len(workload.inquiries) // workload.garbage if workload.garbage else 0
    rng = random.Random(options.seed)  # noqa: S311  # which topic gets garbage, not security
    for index, planned in enumerate(workload.inquiries):
        if options.rate is not None:
            await _sleep_until(loop, started + index / options.rate)
        else:
            await _wait_for_room(tally, options.in_flight)
        if index % 500 == 0:
            checks()
        await requesters.send(planned)
        if garbage_every and index % garbage_every == garbage_every - 1:
            await requesters.garbage(rng.choice(workload.inquiries).agency)


async def _sleep_until(loop: asyncio.AbstractEventLoop, when: float) -> None:
    delay = when - loop.time()
    if delay > 0.002:  # below timer resolution: send now, the schedule stays the reference
        await asyncio.sleep(delay)


async def _wait_for_room(tally: Tally, window: int) -> None:
    # The observer's task settles inquiries; polling a counter is cheaper than an event each.
    while len(tally.sent) - tally.settled >= window:  # noqa: ASYNC110
        await asyncio.sleep(0.005)


async def _drain(tally: Tally, options: DemoOptions, checks: Callable[[], None]) -> None:
    """Wait until every outcome, audit record and dead letter arrived, or the drain time."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + options.deadline + DRAIN_GRACE
    while not tally.complete() and loop.time() < give_up:
        checks()
        await asyncio.sleep(0.1)


async def run_until_stopped(main: Callable[[], Awaitable[None]]) -> None:
    """Run ``main``; the first Ctrl-C or SIGTERM cancels it (its ``finally`` clean up)."""
    import signal

    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(main())
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await task
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
