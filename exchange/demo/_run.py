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
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from exchange._catalog import load_catalog
from exchange._catalog_model import Catalog
from exchange._codec import Codec, SchemaStore
from exchange._errors import BrokerError, ConfigError
from exchange._settings import ExchangeSettings
from exchange._topology import Topics
from exchange.demo._agencies import SERVICES, DemoAgencies
from exchange.demo._clerk import Clerk
from exchange.demo._data import Registers, build_registers
from exchange.demo._observer import Observer
from exchange.demo._requesters import Requesters
from exchange.demo._stack import Stack
from exchange.demo._summary import summarize
from exchange.demo._tally import Tally
from exchange.demo._workload import Workload, plan_workload

__all__ = ["DemoOptions", "DemoUI", "run_demo"]

#: After the last send: how long the last inquiries may take to settle, past their deadline.
DRAIN_GRACE = 15.0
#: With the window full, how long without any inquiry settling before the run gives up.
STALL_TIMEOUT = 60.0
#: The longest one clean-up step (closing clients, the observer) may take.
CLEANUP_TIMEOUT = 20.0


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


async def run_demo(
    settings: ExchangeSettings,
    options: DemoOptions,
    ui: DemoUI,
    *,
    stop: asyncio.Event | None = None,
) -> dict[str, Any]:
    """Run the demo end to end; the summary document (see :mod:`exchange.demo._summary`).

    ``stop`` set (by a signal handler) ends the run like a cancellation, even if a library
    swallowed the cancellation itself: every wait of the run looks at it.
    """
    catalog = _catalog(settings)
    registers = build_registers()
    workload = plan_workload(catalog, registers, options.inquiries, seed=options.seed)
    stack = Stack(settings, catalog, ui.note)
    try:
        settings = await stack.up()
        parts = _Parts(settings, catalog, workload, options, stack, ui, stop or asyncio.Event())
        summary = await _measure(parts, registers)
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


@dataclass(frozen=True, slots=True)
class _Parts:
    """What one measured run works with."""

    settings: ExchangeSettings
    catalog: Catalog
    workload: Workload
    options: DemoOptions
    stack: Stack
    ui: DemoUI
    stop: asyncio.Event


async def _measure(parts: _Parts, registers: Registers) -> dict[str, Any]:
    settings, catalog, workload = parts.settings, parts.catalog, parts.workload
    codec = Codec(
        SchemaStore.from_directory(settings.schemas_path),
        max_record_bytes=settings.max_record_bytes,
    )
    tally = Tally()
    agencies = sorted({planned.agency for planned in workload.inquiries})
    observer = Observer(settings, agencies, codec, tally)
    requesters = Requesters(settings, catalog, codec, tally, deadline=parts.options.deadline)
    clerk = Clerk(settings, catalog, codec, DemoAgencies(registers))
    clerk_task: asyncio.Task[None] | None = None
    try:
        await observer.start()
        await requesters.start(workload.requesters)
        clerk_task = asyncio.create_task(clerk.run(), name="demo-clerk")
        checks = _Checks(parts.stack, observer, clerk_task, parts.stop)
        async with parts.ui.progress(tally, len(workload.inquiries)):
            await _send_all(workload, parts.options, requesters, tally, checks)
            await _drain(tally, parts.options, checks)
        await observer.catch_up()
    finally:
        if clerk_task is not None:
            clerk_task.cancel()
            await _bounded(_finished(clerk_task), "the desk clerk", parts.ui)
        await _bounded(requesters.close(), "the requesters' clients", parts.ui)
        await _bounded(observer.close(), "the observer", parts.ui)
    providers = {s: found.provider for s in SERVICES if (found := catalog.service(s))}
    extra = {
        "metrics": dict(parts.stack.metrics),
        "bootstrap": settings.kafka_bootstrap,
        "topic_prefix": settings.topic_prefix,
        "audit_topic": Topics.for_settings(settings).audit,
        "manual_answers_by_clerk": clerk.answered,
        "logs": str(parts.stack.logs),
    }
    return summarize(tally, providers=providers, extra=extra)


async def _finished(task: asyncio.Task[None]) -> None:
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _bounded(step: Coroutine[Any, Any, None], what: str, ui: DemoUI) -> None:
    """Run a clean-up step, but never wait on it for ever: the children must still stop."""
    task = asyncio.ensure_future(step)
    done, _pending = await asyncio.wait({task}, timeout=CLEANUP_TIMEOUT)
    if not done:
        task.cancel()
        ui.note(f"{what} did not close within {CLEANUP_TIMEOUT:.0f} s; going on")
    elif not task.cancelled() and task.exception() is not None:
        ui.note(f"{what} failed to close: {task.exception()}")


class _Checks:
    """Fails the run early when a part of it died, and ends it when a stop was asked for."""

    def __init__(
        self, stack: Stack, observer: Observer, clerk: asyncio.Task[None], stop: asyncio.Event
    ) -> None:
        self._stack = stack
        self._observer = observer
        self._clerk = clerk
        self._stop = stop

    def __call__(self) -> None:
        if self._stop.is_set():
            raise asyncio.CancelledError
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
        checks()
        if options.rate is not None:
            await _sleep_until(loop, started + index / options.rate)
        else:
            await _wait_for_room(tally, options.in_flight, checks)
        await requesters.send(planned)
        if garbage_every and index % garbage_every == garbage_every - 1:
            await requesters.garbage(rng.choice(workload.inquiries).agency)


async def _sleep_until(loop: asyncio.AbstractEventLoop, when: float) -> None:
    delay = when - loop.time()
    if delay > 0.002:  # below timer resolution: send now, the schedule stays the reference
        await asyncio.sleep(delay)


async def _wait_for_room(tally: Tally, window: int, checks: Callable[[], None]) -> None:
    """Wait until fewer than ``window`` inquiries wait for an outcome; raise when none has
    settled for :data:`STALL_TIMEOUT` seconds (the bus stopped answering)."""
    loop = asyncio.get_running_loop()
    settled, since = tally.settled, loop.time()
    # The observer's task settles inquiries; polling a counter is cheaper than an event each.
    while len(tally.sent) - tally.settled >= window:
        checks()
        if tally.settled != settled:
            settled, since = tally.settled, loop.time()
        elif loop.time() - since > STALL_TIMEOUT:
            raise BrokerError(
                f"no inquiry settled for {STALL_TIMEOUT:.0f} s; see the logs in <state dir>/demo",
                retriable=False,
            )
        await asyncio.sleep(0.005)


async def _drain(tally: Tally, options: DemoOptions, checks: Callable[[], None]) -> None:
    """Wait until every outcome, audit record and dead letter arrived, or the drain time."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + options.deadline + DRAIN_GRACE
    while not tally.complete() and loop.time() < give_up:
        checks()
        await asyncio.sleep(0.1)


async def run_until_stopped(main: Callable[[asyncio.Event], Awaitable[None]]) -> None:
    """Run ``main(stop)``; Ctrl-C or SIGTERM sets ``stop`` and cancels it (its ``finally``
    blocks clean up)."""
    import signal

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    task = asyncio.ensure_future(main(stop))

    def on_signal() -> None:
        stop.set()
        task.cancel()

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal)
    try:
        await task
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
