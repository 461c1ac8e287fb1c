"""Load generation: closed-loop saturation and open-loop fixed-rate load.

Closed loop: ``concurrency`` callers each ask, wait for the reply, and ask again; the number of
replies per second at enough concurrency is the saturation throughput.

Open loop: inquiries are sent on a fixed schedule whatever the replies do, and each latency is
measured from the inquiry's *scheduled* send time, not from when it was actually sent. A
generator that measures from the actual send time stops sending while the system stalls and so
never records the queueing the stall caused ("coordinated omission", Gil Tene); scheduling
ahead and charging lateness to the system keeps that queueing in the figures.

The system under test is anything with an ``ask()`` coroutine (:class:`Requester`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from exchange._errors import BenchmarkError
from exchange.bench._stats import LatencySummary, summarize

Clock = Callable[[], float]


class Requester(Protocol):
    """The requester side of a scenario, as the load generator sees it."""

    async def ask(self) -> None:
        """Send one inquiry and return once its reply has arrived."""


@dataclass(frozen=True, slots=True)
class ClosedLoopResult:
    """Saturation phase: replies completed inside the window, per second."""

    concurrency: int
    seconds: float
    completed: int
    errors: int
    throughput_per_s: float
    latency: LatencySummary


@dataclass(frozen=True, slots=True)
class OpenLoopResult:
    """One offered load: latency from scheduled send time to reply."""

    offered_per_s: float
    seconds: float
    sent: int
    errors: int
    achieved_per_s: float
    latency: LatencySummary


def send_times(rate: float, duration: float) -> list[float]:
    """Evenly spaced send offsets (seconds from start): ``rate`` per second for ``duration``."""
    if rate <= 0 or duration <= 0:
        raise ValueError(f"rate and duration must be positive, got {rate} and {duration}")
    return [i / rate for i in range(round(rate * duration))]


class _Recorder:
    """Collects one phase's latencies, completion times and errors."""

    def __init__(self, requester: Requester, clock: Clock) -> None:
        self.requester = requester
        self.clock = clock
        self.latencies: list[float] = []
        self.done_at: list[float] = []
        self.errors = 0

    async def one(self, started: float) -> None:
        """Ask once; charge the latency from ``started`` (the scheduled time in open loop)."""
        try:
            await self.requester.ask()
        except asyncio.CancelledError:
            raise
        except Exception:  # any failure of the system under test counts as one error
            self.errors += 1
            return
        now = self.clock()
        self.latencies.append(now - started)
        self.done_at.append(now)


async def _drain(tasks: set[asyncio.Task[None]], limit_s: float) -> int:
    """Wait up to ``limit_s`` for ``tasks``; cancel the rest and return how many there were."""
    if not tasks:
        return 0
    _, pending = await asyncio.wait(tasks, timeout=limit_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return len(pending)


async def closed_loop(
    requester: Requester,
    *,
    concurrency: int,
    duration: float,
    drain_timeout: float = 10.0,
    clock: Clock = time.monotonic,
) -> ClosedLoopResult:
    """Keep ``concurrency`` inquiries in flight for ``duration`` seconds."""
    rec = _Recorder(requester, clock)
    start = clock()
    end = start + duration

    async def caller() -> None:
        while clock() < end:
            errors_before = rec.errors
            await rec.one(clock())
            if rec.errors > errors_before:
                await asyncio.sleep(0.01)  # a failing system must not turn this into a busy loop

    tasks = {asyncio.create_task(caller()) for _ in range(concurrency)}
    await asyncio.sleep(duration)
    incomplete = await _drain(tasks, drain_timeout)
    in_window = [t for t in rec.done_at if t <= end]
    return ClosedLoopResult(
        concurrency=concurrency,
        seconds=duration,
        completed=len(in_window),
        errors=rec.errors,
        throughput_per_s=round(len(in_window) / duration, 1),
        latency=summarize(rec.latencies, incomplete=incomplete),
    )


async def open_loop(
    requester: Requester,
    *,
    rate: float,
    duration: float,
    drain_timeout: float = 10.0,
    clock: Clock = time.monotonic,
) -> OpenLoopResult:
    """Send at ``rate`` per second for ``duration`` seconds on a fixed schedule."""
    rec = _Recorder(requester, clock)
    offsets = send_times(rate, duration)
    tasks: set[asyncio.Task[None]] = set()
    start = clock()
    i = 0
    while i < len(offsets):
        now = clock()
        # Everything already due goes out now, each keeping its own scheduled time: if the
        # loop fell behind, the lateness counts against the system, as it should.
        while i < len(offsets) and start + offsets[i] <= now:
            tasks.add(asyncio.create_task(rec.one(start + offsets[i])))
            i += 1
        if i < len(offsets):
            await asyncio.sleep(max(0.0, start + offsets[i] - clock()))
    incomplete = await _drain(tasks, drain_timeout)
    span = (max(rec.done_at) - start) if rec.done_at else 0.0
    return OpenLoopResult(
        offered_per_s=rate,
        seconds=duration,
        sent=len(offsets),
        errors=rec.errors,
        achieved_per_s=round(len(rec.done_at) / span, 1) if span > 0 else 0.0,
        latency=summarize(rec.latencies, incomplete=incomplete),
    )


async def wait_ready(requester: Requester, *, limit_s: float, attempt_s: float = 2.0) -> float:
    """Ask until one inquiry makes the round trip; return the seconds it took to get there.

    Scenario processes join consumer groups at their own pace; the first completed round trip
    is the one readiness signal that holds for every scenario.
    """
    start = time.monotonic()
    while time.monotonic() - start < limit_s:
        try:
            await asyncio.wait_for(requester.ask(), timeout=attempt_s)
        except TimeoutError:
            continue
        return time.monotonic() - start
    raise BenchmarkError(
        f"no reply within {limit_s:.0f} s: the scenario's processes never answered"
    )
