"""Runs a connector: lifecycle, circuit-driven pausing, health, metrics and log context.

:func:`run_connector` (what ``exchange connector run`` calls) builds the runtime for the
connector's role and runs it until SIGTERM/SIGINT::

    start() → check() (failing: circuit OPEN, intake paused) → intake … → stop: drain, close()

**Provider connectors** (:class:`ProviderRuntime`) ride on :class:`exchange.Provider`, so
they inherit its guarantees: at-least-once with gap-free offset commits, bounded concurrency
(``concurrency``), handled once per ``inquiry_id`` (an LRU; duplicates on ``in`` never reach
the legacy system twice in one process), requests past their deadline skipped, a call still
running at the deadline cancelled without a response (the bus settles ``TIMED_OUT``), and
undecodable records dead-lettered. On top the runtime adds, per legacy call:

- retries with exponential backoff and jitter for :class:`~exchange.RetriableError`;
- the circuit breaker: on OPEN the provider **pauses** its consumer (no fetches from
  ``in.<agency>``; records stay in Kafka, the group's lag grows, memory does not), calls in
  progress wait for recovery until their deadline; ``check()`` probes; on HALF_OPEN intake
  resumes and one trial call decides;
- a :class:`~exchange.PermanentError` answers ``ERROR`` with its ``code``; retries spent or a
  template that cannot render (``MappingError``) dead-letter the request (original bytes,
  reason ``handler-error``) and answer ``ERROR`` (``LEGACY_UNAVAILABLE`` or ``HANDLER_ERROR``);
- structlog context ``connector``, ``inquiry_id``, ``service`` on every log line.

**Requester sources** (:class:`RequesterRuntime`) poll the source for events while the
circuit is not open, send each as an inquiry with its stable id (never two in flight with one
id, at most ``concurrency`` at once), wait for its outcome and ``deliver`` it, retrying a
failed delivery until it succeeds or the runtime stops (the source polls it again later).
Outcomes are read durably (``ExchangeClient(durable=<connector name>)``) and acknowledged
after ``deliver``: one that arrives while the connector is down is read after the restart
and handed to the resend of its event (see :mod:`exchange._durable`); run one process per
connector name.

Nothing ends silently (:mod:`connectors._runtime_errors`): an exception from ``poll``,
``answer`` or ``deliver`` that is neither retriable nor permanent is logged with the
connector's name and the inquiry id, counted in ``exchange_connector_unexpected_errors_total``
and retried with backoff like a :class:`~exchange.RetriableError` (the circuit breaker counts
it); an event whose exchange with the bus fails is retried with backoff in its own task; the
probing task is restarted if it fails. ``/health`` says ``degraded`` while the circuit is not
closed or outcomes wait for a delivery that keeps failing (``failing``, their number).

Both serve ``/health`` and ``/metrics`` when ``health.port`` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from prometheus_client import CollectorRegistry

from connectors._breaker import CircuitState
from connectors._config import ProviderConfig, RequesterConfig
from connectors._guard import LegacyGuard
from connectors._health import HealthServer
from connectors._runtime_errors import (
    ANSWER,
    DELIVER,
    EXCHANGE,
    POLL,
    PROBES,
    count_unexpected,
    retriable_unless_planned,
    supervise,
)
from connectors._sdk import Connector, ProviderConnector, RequesterSource, SourceEvent
from exchange._answer import Answer, Inquiry
from exchange._catalog import Catalog, load_catalog
from exchange._client import ExchangeClient
from exchange._errors import (
    ConfigError,
    InquiryRejectedError,
    PermanentError,
    RetriableError,
)
from exchange._metrics import ConnectorMetrics
from exchange._outcome import Outcome, OutcomeKind
from exchange._provider import Handler, Provider
from exchange._settings import ExchangeSettings

__all__ = ["ProviderRuntime", "RequesterRuntime", "Runtime", "run_connector", "runtime_for"]

log = structlog.get_logger("exchange.connector")


class Runtime:
    """What both runtimes share: the guard, health endpoint, stop event and log context."""

    def __init__(
        self,
        connector: Connector[Any],
        settings: ExchangeSettings,
        *,
        registry: CollectorRegistry | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        self.connector = connector
        self.config = connector.config
        self.name = connector.config.name
        self.settings = settings
        self.registry = registry if registry is not None else CollectorRegistry()
        self.catalog = catalog or load_catalog(settings.catalog_path, settings.schemas_path)
        connector.bind(self.catalog)
        self.metrics = ConnectorMetrics(self.registry)
        self._stopping = asyncio.Event()
        self._health = HealthServer(self.registry, self.status, host=self.config.health.host)
        self.guard = LegacyGuard(
            self.name,
            retry=self.config.retry,
            circuit=self.config.circuit,
            check=connector.check,
            metrics=self.metrics,
            on_change=self._circuit_moved,
        )

    @property
    def health_port(self) -> int | None:
        """The port ``/health`` and ``/metrics`` are served on, once running."""
        return self._health.port

    def status(self) -> dict[str, Any]:
        """What ``/health`` shows."""
        state = self.guard.state
        return {
            "connector": self.name,
            "kind": self.config.kind,
            "circuit": state.name.lower(),
            "paused": state is CircuitState.OPEN,
            "healthy": state is not CircuitState.OPEN and not self._stopping.is_set(),
            "degraded": state is not CircuitState.CLOSED,
        }

    def stop(self) -> None:
        """Ask the runtime to stop: drain what is in progress, commit, close (idempotent)."""
        self._stopping.set()

    async def run(self) -> None:
        """Run until :meth:`stop`; raise if Kafka fails under the connector."""
        structlog.contextvars.bind_contextvars(connector=self.name)
        if self.config.health.port is not None:
            port = await self._health.start(self.config.health.port)
            log.info("health endpoint", port=port)
        try:
            await self.connector.start()
            try:
                await self.guard.start()
                probing = supervise(
                    self.guard.run_probes, metrics=self.metrics, connector=self.name, step=PROBES
                )
                probes = asyncio.create_task(probing, name=f"probes-{self.name}")
                try:
                    await self._serve()
                finally:
                    probes.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await probes
            finally:
                await self.connector.close()
        finally:
            await self._health.close()
            structlog.contextvars.unbind_contextvars("connector")
            log.info("connector stopped", connector=self.name)

    async def _serve(self) -> None:
        raise NotImplementedError

    def _circuit_moved(self, state: CircuitState) -> None:
        """Pause intake while OPEN, resume when it leaves OPEN."""

    async def _until_stopped(self, task: asyncio.Task[None]) -> None:
        """Wait for :meth:`stop` or for ``task`` to end (a failure is raised here)."""
        stopping = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
        if task.done():
            task.result()


class ProviderRuntime(Runtime):
    """A provider connector on :class:`exchange.Provider` (see the module docstring)."""

    connector: ProviderConnector[Any, Any]
    config: ProviderConfig

    def __init__(
        self,
        connector: ProviderConnector[Any, Any],
        settings: ExchangeSettings,
        *,
        registry: CollectorRegistry | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        super().__init__(connector, settings, registry=registry, catalog=catalog)
        self.provider = Provider(
            agency=self.config.agency,
            settings=settings,
            catalog=self.catalog,
            registry=self.registry,
            concurrency=self.config.concurrency,
            group_id=self.config.group_id,
            dead_letter_errors=True,
        )
        for binding in self.config.services:
            self.provider.handles(binding.service)(self._handler(binding))

    def _handler(self, binding: Any) -> Handler:
        async def handle(inquiry: Inquiry) -> Answer:
            structlog.contextvars.bind_contextvars(
                inquiry_id=str(inquiry.id), service=inquiry.service
            )
            call = retriable_unless_planned(
                lambda: self.connector.answer(inquiry, binding),
                metrics=self.metrics,
                connector=self.name,
                step=ANSWER,
                inquiry_id=str(inquiry.id),
            )
            try:
                return await self.guard.call(call)
            except PermanentError as exc:
                log.info("legacy system refused the call", code=exc.code)
                return Answer.error(exc.code, exc.message[:200])

        return handle

    def _circuit_moved(self, state: CircuitState) -> None:
        if state is CircuitState.OPEN:
            self.provider.pause()
            log.warning("intake paused: the legacy system is down")
        elif self.provider.paused:
            self.provider.resume()
            log.info("intake resumed")

    async def _serve(self) -> None:
        task = asyncio.create_task(self.provider.run(), name=f"provider-{self.name}")
        try:
            await self._until_stopped(task)
        finally:
            await self.provider.stop()
            if not task.done():
                await task


class RequesterRuntime(Runtime):
    """A requester source on :class:`exchange.ExchangeClient` (see the module docstring)."""

    connector: RequesterSource[Any]
    config: RequesterConfig

    def __init__(
        self,
        connector: RequesterSource[Any],
        settings: ExchangeSettings,
        *,
        registry: CollectorRegistry | None = None,
        catalog: Catalog | None = None,
    ) -> None:
        super().__init__(connector, settings, registry=registry, catalog=catalog)
        self.client = ExchangeClient(
            agency=self.config.agency,
            subsystem=self.config.subsystem,
            settings=settings,
            catalog=self.catalog,
            registry=self.registry,
            durable=self.name,  # outcomes survive a restart: acknowledged once delivered
        )
        self._in_flight: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._failing: set[uuid.UUID] = set()  # outcomes whose delivery keeps failing
        self._room = asyncio.Event()

    def status(self) -> dict[str, Any]:
        """What ``/health`` shows, with the outcomes waiting for a failing delivery."""
        status = super().status()
        status["failing"] = len(self._failing)
        status["degraded"] = status["degraded"] or bool(self._failing)
        return status

    async def _serve(self) -> None:
        async with self.client:
            task = asyncio.create_task(self._intake(), name=f"requester-{self.name}")
            try:
                await self._until_stopped(task)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
                await self._drain()

    async def _intake(self) -> None:
        while True:
            room = self.config.concurrency - len(self._in_flight)
            if self.guard.state is CircuitState.OPEN or room <= 0:
                await self._pause(self.config.circuit.probe_interval)
                continue
            poll = retriable_unless_planned(
                functools.partial(self.connector.poll, room),
                metrics=self.metrics,
                connector=self.name,
                step=POLL,
            )
            try:
                events = await self.guard.call(poll)
            except (RetriableError, PermanentError) as exc:
                log.warning("polling the source failed", error=exc.message)
                events = []
            started = [event for event in events if self._start(event)]
            if not started:
                await self._pause(self.config.poll_interval)

    async def _pause(self, seconds: float) -> None:
        """Sleep up to ``seconds``, waking early when an in-flight slot frees up."""
        self._room.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._room.wait()

    def _start(self, event: SourceEvent) -> bool:
        key = event.inquiry_id
        if key in self._in_flight:
            return False
        task = asyncio.create_task(self._exchange(event), name=f"event-{key}")
        self._in_flight[key] = task
        task.add_done_callback(functools.partial(self._finished, key))
        return True

    def _finished(self, key: uuid.UUID, task: asyncio.Task[None]) -> None:
        self._in_flight.pop(key, None)
        self._failing.discard(key)
        self._room.set()
        # _exchange retries everything it can; what still ends here is retrieved and shown,
        # never left for the garbage collector (the source polls the event again).
        if not task.cancelled() and (exc := task.exception()) is not None:
            count_unexpected(self.metrics, self.name, EXCHANGE, exc, inquiry_id=str(key))

    async def _exchange(self, event: SourceEvent) -> None:
        structlog.contextvars.bind_contextvars(
            inquiry_id=str(event.inquiry_id), service=event.spec.service
        )
        outcome = await self._outcome_of(event)
        await self._deliver(event, outcome)
        self.client.acknowledge(event.inquiry_id)

    async def _outcome_of(self, event: SourceEvent) -> Outcome:
        """The event's outcome from the bus; a failure (Kafka down …) is retried with backoff.

        Resending is safe: the inquiry id is stable, so the bus sees a duplicate, and the
        durable client hands the first one's outcome to the resend.
        """
        pause = self.config.retry.initial_backoff
        while True:
            try:
                return (await self.client.inquire_many([event.spec]))[0]
            except InquiryRejectedError as exc:
                return self._refused(event, exc)
            except Exception as exc:
                key = str(event.inquiry_id)
                count_unexpected(self.metrics, self.name, EXCHANGE, exc, inquiry_id=key)
            self._failing.add(event.inquiry_id)
            await asyncio.sleep(pause)
            pause = min(pause * 2, self.config.retry.max_backoff)

    def _refused(self, event: SourceEvent, exc: InquiryRejectedError) -> Outcome:
        """The client refused to send it (invalid payload, unknown service): REJECTED."""
        service = self.catalog.service(event.spec.service)
        return Outcome(
            inquiry_id=event.inquiry_id,
            kind=OutcomeKind.REJECTED,
            service=event.spec.service,
            provider=service.provider if service else "unknown",
            reject_reason=exc.reason,
            detail=exc.message[:500],
            local=True,
        )

    async def _deliver(self, event: SourceEvent, outcome: Outcome) -> None:
        attempt = self._delivery(event, outcome)
        while True:
            try:
                await self.guard.call(attempt)
            except RetriableError as exc:
                log.warning("delivering the outcome failed; retrying", error=exc.message)
                continue
            except PermanentError as exc:
                log.warning("the source refused the outcome", code=exc.code, error=exc.message)
            self._failing.discard(event.inquiry_id)
            return

    def _delivery(self, event: SourceEvent, outcome: Outcome) -> Callable[[], Awaitable[None]]:
        """One ``deliver`` call; an unexpected error becomes retriable, a failure is noted."""
        call = retriable_unless_planned(
            lambda: self.connector.deliver(event, outcome),
            metrics=self.metrics,
            connector=self.name,
            step=DELIVER,
            inquiry_id=str(event.inquiry_id),
        )

        async def attempt() -> None:
            try:
                await call()
            except RetriableError:
                self._failing.add(event.inquiry_id)
                raise

        return attempt

    async def _drain(self) -> None:
        if self._in_flight:
            _done, pending = await asyncio.wait(set(self._in_flight.values()), timeout=10.0)
            for task in pending:
                task.cancel()


def runtime_for(
    connector: Connector[Any],
    settings: ExchangeSettings,
    *,
    registry: CollectorRegistry | None = None,
    catalog: Catalog | None = None,
) -> Runtime:
    """The runtime of the connector's role."""
    if isinstance(connector, ProviderConnector):
        return ProviderRuntime(connector, settings, registry=registry, catalog=catalog)
    if isinstance(connector, RequesterSource):
        return RequesterRuntime(connector, settings, registry=registry, catalog=catalog)
    raise ConfigError(f"{type(connector).__name__} is neither a provider nor a requester")


async def run_connector(
    connector: Connector[Any],
    settings: ExchangeSettings,
    *,
    registry: CollectorRegistry | None = None,
) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully (what ``connector run`` does)."""
    runtime = runtime_for(connector, settings, registry=registry)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, runtime.stop)
    started = time.monotonic()
    try:
        log.info("connector starting", connector=runtime.name, kind=runtime.config.kind)
        await runtime.run()
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        log.info("connector ran", connector=runtime.name, seconds=round(time.monotonic() - started))
