"""Every call to the legacy system goes through a :class:`LegacyGuard`: retries and circuit.

- Retries: a :class:`~exchange.RetriableError` is retried with exponential backoff and jitter
  (tenacity's ``wait_exponential`` plus ``wait_random``) up to ``retry.attempts`` calls made
  while the circuit was closed; a :class:`~exchange.PermanentError` is raised at once.
- Circuit (:mod:`connectors._breaker`): while it is open no call is made; callers wait (their
  inquiry's deadline bounds the wait, see the provider's timeout) and :meth:`run_probes` calls
  ``check()`` with growing pauses. ``on_change`` hears every state change: the runtime pauses
  intake on OPEN and resumes it when the circuit leaves OPEN.
- Metrics: ``exchange_connector_calls{result=ok|retried|failed}``, the circuit gauge and
  ``exchange_connector_up``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type
from tenacity.wait import wait_exponential, wait_random

from connectors._breaker import CircuitBreaker, CircuitState
from connectors._config import CircuitSettings, RetrySettings
from exchange._errors import PermanentError, RetriableError
from exchange._metrics import ConnectorMetrics

__all__ = ["LegacyGuard"]

T = TypeVar("T")
log = structlog.get_logger("exchange.connector")


class LegacyGuard:
    """Retries and the circuit breaker around one connector's legacy calls."""

    def __init__(
        self,
        name: str,
        *,
        retry: RetrySettings,
        circuit: CircuitSettings,
        check: Callable[[], Awaitable[None]],
        metrics: ConnectorMetrics,
        on_change: Callable[[CircuitState], None] = lambda state: None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self._retry = retry
        self._check = check
        self._metrics = metrics
        self._on_change = on_change
        self._clock = clock
        self.breaker = CircuitBreaker(
            circuit.failure_threshold, circuit.probe_interval, circuit.max_probe_interval
        )
        self._check_timeout = circuit.check_timeout
        self._changed = asyncio.Event()
        self._reported = CircuitState.CLOSED
        metrics.circuit.labels(name).set(CircuitState.CLOSED)
        metrics.up.labels(name).set(1)

    @property
    def state(self) -> CircuitState:
        """The circuit's state now."""
        return self.breaker.state

    # --- calls ---------------------------------------------------------------------------------

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """``await fn()`` under retries and the circuit (see the module docstring)."""
        counted = [0]  # calls that failed while the circuit was closed

        def spent(state: RetryCallState) -> bool:
            return counted[0] >= self._retry.attempts

        retrying = AsyncRetrying(
            retry=retry_if_exception_type(RetriableError),
            stop=spent,
            wait=wait_exponential(
                multiplier=self._retry.initial_backoff, max=self._retry.max_backoff
            )
            + wait_random(0, self._retry.jitter),
            before_sleep=self._retrying,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await self._once(fn, counted)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    async def _once(self, fn: Callable[[], Awaitable[T]], counted: list[int]) -> T:
        await self._admitted()
        try:
            result = await fn()
        except RetriableError:
            if self.breaker.state is CircuitState.CLOSED:
                counted[0] += 1
            self._moved(self.breaker.record_failure(self._clock()))
            if counted[0] >= self._retry.attempts:
                self._metrics.calls.labels(self.name, "failed").inc()
            raise
        except PermanentError:
            self._metrics.calls.labels(self.name, "failed").inc()
            self._moved(self.breaker.record_success())
            raise
        except BaseException:  # cancelled at the deadline, or a bug in the mapping: no verdict
            self.breaker.release()
            self._notify()
            raise
        self._metrics.calls.labels(self.name, "ok").inc()
        self._moved(self.breaker.record_success())
        return result

    def _retrying(self, state: RetryCallState) -> None:
        self._metrics.calls.labels(self.name, "retried").inc()

    async def _admitted(self) -> None:
        """Wait until the circuit lets a call through (CLOSED, or the HALF_OPEN trial)."""
        while not self.breaker.try_acquire():
            await self._changed.wait()

    # --- probing -------------------------------------------------------------------------------

    async def start(self) -> None:
        """Call ``check()`` once; if it fails, start with the circuit OPEN (intake paused)."""
        if not await self._probe():
            self._moved(self.breaker.trip(self._clock()))

    async def run_probes(self) -> None:
        """Forever: while the circuit is OPEN, probe with ``check()`` when a probe is due."""
        while True:
            if self.breaker.state is not CircuitState.OPEN:
                await self._changed.wait()
                continue
            wait = self.breaker.next_probe - self._clock()
            if wait > 0:
                await self._sleep_or_change(wait)
                continue
            ok = await self._probe()
            self._moved(self.breaker.record_probe(ok, self._clock()))

    async def _sleep_or_change(self, seconds: float) -> None:
        try:
            async with asyncio.timeout(seconds):
                await self._changed.wait()
        except TimeoutError:
            return

    async def _probe(self) -> bool:
        try:
            async with asyncio.timeout(self._check_timeout):
                await self._check()
        except Exception as exc:
            log.info("legacy system check failed", connector=self.name, error=str(exc))
            self._metrics.up.labels(self.name).set(0)
            return False
        self._metrics.up.labels(self.name).set(1)
        return True

    # --- state changes -------------------------------------------------------------------------

    def _moved(self, state: CircuitState) -> None:
        if state is not self._reported:
            self._reported = state
            event = "circuit " + state.name.lower().replace("_", "-")
            level = log.warning if state is CircuitState.OPEN else log.info
            level(event, connector=self.name)
            self._metrics.circuit.labels(self.name).set(state)
            self._metrics.up.labels(self.name).set(0 if state is CircuitState.OPEN else 1)
            self._on_change(state)
        self._notify()

    def _notify(self) -> None:
        """Wake every waiter (admission, probes): they re-read the breaker."""
        self._changed.set()
        self._changed = asyncio.Event()
