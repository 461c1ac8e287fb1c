"""The conformance checks every provider connector passes against its real legacy counterpart.

:class:`ConnectorHarness` puts the connector on a real bus: the agencies' topics, a real
``exchange worker`` process (routing, policy, correlation, timeouts) and the connector's own
runtime (:class:`~connectors._runtime.ProviderRuntime`) in this event loop, plus an
:class:`~exchange.ExchangeClient` for the requester. Then:

- :func:`check_answers` — a known record is ``ANSWERED``/``FOUND`` with the expected fields;
  an unknown one ``NOT_FOUND``; a refused call ``FAILED`` with its error code.
- :func:`check_outage` — the legacy system is killed while inquiries arrive: the circuit
  opens, intake pauses (inquiries sent afterwards stay in Kafka: the provider group's lag
  covers them), inquiries whose deadline passes during the outage end ``TIMED_OUT``; the
  system comes back: the circuit closes, intake resumes, every other inquiry is ``ANSWERED``,
  each inquiry has exactly one outcome on the requester's replies topic, and the lag drains.

Both return figures (seconds, counts) for reports.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from prometheus_client import CollectorRegistry

from connectors._breaker import CircuitState
from connectors._runtime import ProviderRuntime
from connectors._sdk import ProviderConnector
from connectors.testkit._bus import create_topics, records_per_id, running_worker
from exchange._client import ExchangeClient
from exchange._kafka import client_options, resolve_bootstrap
from exchange._outcome import InquirySpec, Outcome, OutcomeKind
from exchange._settings import ExchangeSettings
from exchange._topology import Topics

__all__ = ["ConformanceCase", "ConnectorHarness", "Legacy", "check_answers", "check_outage"]


class Legacy(Protocol):
    """The legacy counterpart: something the kit can take down and bring back."""

    def start(self) -> None: ...
    def kill(self) -> None: ...


@dataclass(frozen=True)
class ConformanceCase:
    """What the kit needs to know about a connector under test."""

    connector: ProviderConnector[Any, Any]
    legacy: Legacy
    service: str
    #: A request payload the legacy system answers FOUND, and fields expected in the answer.
    found: dict[str, Any]
    expect: dict[str, Any] = field(default_factory=dict)
    #: A request payload answered NOT_FOUND (None: not checked).
    not_found: dict[str, Any] | None = None
    #: A request payload the legacy system refuses, and the error code expected (FAILED).
    refused: dict[str, Any] | None = None
    refused_code: str | None = None
    requester: str = "TAX"
    subsystem: str | None = "registration"
    purpose: str = "tax-registration"
    #: Deadlines of the outage check: short ones pass during the outage, long ones do not.
    short_deadline: float = 3.0
    long_deadline: float = 20.0


class ConnectorHarness:
    """The connector on a real bus (see the module docstring); ``async with`` it."""

    def __init__(self, case: ConformanceCase, settings: ExchangeSettings) -> None:
        self.case = case
        self.settings = settings
        self.registry = CollectorRegistry()
        self.runtime = ProviderRuntime(case.connector, settings, registry=self.registry)
        config = case.connector.config
        topics = Topics.for_settings(settings)
        self.in_topic = topics.in_(config.agency)
        self.replies_topic = topics.replies(case.requester)
        self.group_id = config.group_id or topics.provider_group(config.agency)
        self.client = ExchangeClient(
            agency=case.requester, subsystem=case.subsystem, settings=settings
        )
        self.outcomes: dict[uuid.UUID, Outcome] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._worker: Any = None

    async def __aenter__(self) -> ConnectorHarness:
        agencies = sorted({self.case.connector.config.agency, self.case.requester})
        await create_topics(self.settings, agencies)
        self._worker = running_worker(self.settings)
        self._worker.__enter__()
        try:
            await self.client.start()
        except BaseException:
            self._worker.__exit__(None, None, None)
            raise
        self._tasks.append(asyncio.create_task(self.runtime.run(), name="connector"))
        self._tasks.append(asyncio.create_task(self._collect(), name="outcomes"))
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.runtime.stop()
        collector, runner = self._tasks[1], self._tasks[0]
        collector.cancel()
        await asyncio.gather(collector, return_exceptions=True)
        await self.client.close()
        try:
            async with asyncio.timeout(30):
                await runner
        finally:
            self._worker.__exit__(None, None, None)

    async def _collect(self) -> None:
        async for outcome in self.client.outcomes():
            self.outcomes[outcome.inquiry_id] = outcome

    async def send(self, payload: dict[str, Any], *, deadline_in: float) -> uuid.UUID:
        """Send one inquiry (fire and forget); its outcome lands in :attr:`outcomes`."""
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=deadline_in)
        spec = InquirySpec(self.case.service, payload, self.case.purpose, deadline=deadline)
        return await self.client.send(
            spec.service, spec.payload, purpose=spec.purpose, deadline=spec.deadline
        )

    async def ask(self, payload: dict[str, Any], *, deadline_in: float = 20.0) -> Outcome:
        """Send one inquiry and wait for its outcome."""
        inquiry_id = await self.send(payload, deadline_in=deadline_in)
        return (await self.wait_outcomes([inquiry_id], within=deadline_in + 15))[0]

    async def wait_outcomes(self, ids: list[uuid.UUID], *, within: float) -> list[Outcome]:
        """The outcomes of ``ids``, in order; AssertionError if one is missing in time."""
        await _until(lambda: all(i in self.outcomes for i in ids), within, "outcomes")
        return [self.outcomes[i] for i in ids]

    async def wait_circuit(self, state: CircuitState, *, within: float = 15.0) -> float:
        """Seconds until the circuit is in ``state``."""
        started = time.monotonic()
        await _until(lambda: self.runtime.guard.state is state, within, f"circuit {state.name}")
        return time.monotonic() - started

    async def lag(self) -> int:
        """Records of ``in.<agency>`` after the provider group's committed offsets.

        Counted by reading them (``read_committed``), not as end minus committed offset: the
        worker writes ``in`` in transactions, and each commit marker takes an offset too.
        """
        from aiokafka import AIOKafkaConsumer, TopicPartition
        from aiokafka.admin import AIOKafkaAdminClient

        options = {"bootstrap_servers": resolve_bootstrap(self.settings)}
        options.update(client_options(self.settings))
        admin = AIOKafkaAdminClient(**options)
        consumer = AIOKafkaConsumer(
            **options, group_id=None, isolation_level="read_committed", enable_auto_commit=False
        )
        await admin.start()
        await consumer.start()
        try:
            parts = [TopicPartition(self.in_topic, p) for p in range(self.settings.partitions)]
            committed = await admin.list_consumer_group_offsets(self.group_id, partitions=parts)
            consumer.assign(parts)
            for tp in parts:
                meta = committed.get(tp)
                consumer.seek(tp, meta.offset if meta is not None and meta.offset >= 0 else 0)
            return await _count_to_end(consumer)
        finally:
            await consumer.stop()
            await admin.close()

    async def outcomes_on_replies(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
        """How many outcome records each inquiry has on the requester's replies topic."""
        return await records_per_id(self.settings, self.replies_topic, ids)


async def _count_to_end(consumer: Any) -> int:
    count = 0
    while batches := await consumer.getmany(timeout_ms=500):
        count += sum(len(records) for records in batches.values())
    return count


async def _until(condition: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {within} s")
        await asyncio.sleep(0.05)


async def check_answers(harness: ConnectorHarness) -> dict[str, float]:
    """FOUND with the expected fields, NOT_FOUND, FAILED with the refusal's code."""
    case = harness.case
    started = time.monotonic()
    outcome = await harness.ask(case.found)
    assert outcome.kind is OutcomeKind.ANSWERED, outcome
    assert outcome.status == "FOUND", outcome
    assert outcome.payload is not None
    for name, value in case.expect.items():
        assert outcome.payload.get(name) == value, (name, outcome.payload.get(name), value)
    figures = {"first_answer_s": time.monotonic() - started}
    if case.not_found is not None:
        outcome = await harness.ask(case.not_found)
        assert (outcome.kind, outcome.status) == (OutcomeKind.ANSWERED, "NOT_FOUND"), outcome
    if case.refused is not None:
        outcome = await harness.ask(case.refused)
        assert outcome.kind is OutcomeKind.FAILED, outcome
        assert outcome.error_code == case.refused_code, outcome
    started = time.monotonic()
    outcome = await harness.ask(case.found)
    figures["warm_answer_s"] = time.monotonic() - started
    return figures


async def check_outage(
    harness: ConnectorHarness, *, before: int = 4, during: int = 4
) -> dict[str, float]:
    """Legacy down → circuit opens, intake pauses, deadlines rule; back → all answered once."""
    case = harness.case
    await harness.ask(case.found)  # warm: the connector owns its partitions
    case.legacy.kill()
    killed = time.monotonic()
    short = [await harness.send(case.found, deadline_in=case.short_deadline) for _ in range(before)]
    long_ = [await harness.send(case.found, deadline_in=case.long_deadline) for _ in range(before)]
    figures = {"open_after_s": await harness.wait_circuit(CircuitState.OPEN)}
    assert harness.runtime.provider.paused, "intake must pause while the circuit is open"
    lag_before = await harness.lag()
    late = [await harness.send(case.found, deadline_in=case.long_deadline) for _ in range(during)]
    # Nothing sent while paused is answered: it all waits in Kafka. The worker routes the new
    # inquiries to in.<agency> in its own time, so wait until the provider group lags by every
    # long-deadline inquiry at least (the short ones may expire meanwhile and be committed as
    # skipped, so the lag is not lag_before + during); a provider still answering never gets there.
    lag_paused = await _lag_reaches(harness, len(long_) + during)
    figures["lag_before_pause"] = lag_before
    assert harness.runtime.provider.paused, "intake must stay paused while the system is down"
    figures["lag_while_paused"] = lag_paused
    await harness.wait_outcomes(short, within=case.short_deadline + 15)
    assert all(harness.outcomes[i].kind is OutcomeKind.TIMED_OUT for i in short), [
        harness.outcomes[i] for i in short
    ]
    case.legacy.start()
    figures["down_s"] = time.monotonic() - killed
    figures["recovered_after_s"] = await harness.wait_circuit(CircuitState.CLOSED, within=60)
    answered = await harness.wait_outcomes(long_ + late, within=case.long_deadline + 15)
    assert all(o.kind is OutcomeKind.ANSWERED and o.status == "FOUND" for o in answered), answered
    counts = await harness.outcomes_on_replies(short + long_ + late)
    assert set(counts.values()) == {1}, f"each inquiry needs exactly one outcome: {counts}"
    await _drained(harness)
    figures["inquiries"] = len(counts)
    return figures


async def _lag_reaches(harness: ConnectorHarness, want: int, within: float = 10.0) -> int:
    deadline = time.monotonic() + within
    while (lag := await harness.lag()) < want:
        if time.monotonic() > deadline:
            raise AssertionError(f"paused intake should leave {want} records waiting, found {lag}")
        await asyncio.sleep(0.3)
    return lag


async def _drained(harness: ConnectorHarness, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while (lag := await harness.lag()) > 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"the provider group still lags by {lag}")
        await asyncio.sleep(0.3)
