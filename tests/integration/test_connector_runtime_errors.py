"""A requester source whose ``deliver`` raises something unplanned (an ``OSError``) on the
real bus: the runtime retries it with backoff, logs and counts it, shows it in ``/health``
data, and never drops the outcome (before, the event's task ended silently)."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections import Counter
from collections.abc import AsyncIterator, Sequence

import pytest
import structlog
from prometheus_client import CollectorRegistry
from requester_bus import VERIFY, civil_registry, running, until
from samples import PERSON, verdict
from sdk_bus import real_bus

from connectors import (
    ProviderConfig,
    ProviderConnector,
    RequesterConfig,
    RequesterSource,
    ServiceBinding,
    SourceEvent,
    stable_inquiry_id,
)
from connectors._runtime import ProviderRuntime, RequesterRuntime
from exchange import (
    Answer,
    ExchangeClient,
    ExchangeSettings,
    Inquiry,
    InquirySpec,
    Outcome,
    OutcomeKind,
)

pytestmark = pytest.mark.integration


@pytest.fixture
async def bus(settings: ExchangeSettings) -> AsyncIterator[ExchangeSettings]:
    async with real_bus(settings, ["TAX", "NOCR"]) as configured:
        yield configured


class MemoryConfig(RequesterConfig):
    """The in-memory source's config (nothing to configure beyond the SDK's knobs)."""

    kind: str = "memory"


class FlakySource(RequesterSource[MemoryConfig]):
    """One legacy event; ``deliver`` raises ``OSError`` for the first ``failures`` calls
    (forever while ``failures`` is None), then keeps the outcome."""

    config_class = MemoryConfig

    def __init__(self, config: MemoryConfig, failures: int | None) -> None:
        super().__init__(config)
        self.failures = failures
        self.calls = 0
        self.written: Counter[str] = Counter()
        self.event = SourceEvent(
            InquirySpec(
                VERIFY,
                dict(PERSON),
                "tax-registration",
                deadline=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=25),
                inquiry_id=stable_inquiry_id(config.name, "case-1"),
            )
        )

    async def check(self) -> None:
        """The share answers its health check all along: only writing fails."""

    async def poll(self, limit: int) -> Sequence[SourceEvent]:
        """The one event until its outcome is kept."""
        return [] if self.written else [self.event]

    async def deliver(self, event: SourceEvent, outcome: Outcome) -> None:
        """Fail as scripted, then keep the outcome's kind."""
        self.calls += 1
        if self.failures is None or self.calls <= self.failures:
            raise OSError(5, "Input/output error")
        self.written[outcome.kind.value] += 1


def _source(failures: int | None) -> FlakySource:
    config = MemoryConfig(
        name="tax-memory",
        agency="TAX",
        subsystem="registration",
        poll_interval=0.1,
        retry={"attempts": 3, "initial_backoff": 0.05, "max_backoff": 0.2, "jitter": 0.01},
        circuit={"failure_threshold": 2, "probe_interval": 0.2, "max_probe_interval": 0.5},
    )
    return FlakySource(config, failures)


def _unexpected(runtime: RequesterRuntime, step: str) -> float:
    registry = runtime.registry
    labels = {"connector": "tax-memory", "step": step}
    return registry.get_sample_value("exchange_connector_unexpected_errors_total", labels) or 0.0


async def test_a_deliver_failing_twice_writes_the_outcome_once(bus: ExchangeSettings) -> None:
    """OSError twice, then success: the outcome is written once; both errors logged and counted."""
    source = _source(failures=2)
    with structlog.testing.capture_logs() as logs:
        async with civil_registry(bus), running(source, bus) as runtime:
            await until(lambda: bool(source.written), 30, "outcome written")
            await until(lambda: not runtime._in_flight, 10, "event finished")
            assert _unexpected(runtime, "deliver") == 2
            assert runtime.status()["failing"] == 0
    assert source.written == Counter({"ANSWERED": 1})
    assert source.calls == 3
    seen = [e for e in logs if e["event"] == "unexpected error in the connector"]
    inquiry_id = str(source.event.inquiry_id)
    assert [(e["connector"], e["step"], e["inquiry_id"]) for e in seen] == [
        ("tax-memory", "deliver", inquiry_id)
    ] * 2


async def test_a_deliver_that_always_fails_keeps_the_outcome_pending(
    bus: ExchangeSettings,
) -> None:
    """Always OSError: the event stays in flight, health says degraded; healed, it is written."""
    source = _source(failures=None)
    async with civil_registry(bus), running(source, bus) as runtime:
        await until(lambda: source.calls >= 6, 30, "deliveries retried")
        status = runtime.status()
        assert status["degraded"] is True
        assert status["failing"] == 1
        assert source.event.inquiry_id in runtime._in_flight
        assert not source.written
        assert _unexpected(runtime, "deliver") >= 6
        source.failures = source.calls  # the share is back
        await until(lambda: bool(source.written), 30, "outcome written after healing")
        await until(lambda: not runtime.status()["degraded"], 10, "health recovered")
    assert source.written == Counter({"ANSWERED": 1})


class MemoryProviderConfig(ProviderConfig):
    """The flaky provider's config."""

    kind: str = "memory-provider"


class FlakyRegistry(ProviderConnector[MemoryProviderConfig, ServiceBinding]):
    """Answers person verification; the first ``failures`` calls raise ``OSError``."""

    config_class = MemoryProviderConfig

    def __init__(self, config: MemoryProviderConfig, failures: int) -> None:
        super().__init__(config)
        self.failures = failures
        self.calls = 0

    async def check(self) -> None:
        """Always reachable."""

    async def answer(self, inquiry: Inquiry, binding: ServiceBinding) -> Answer:
        """Fail as scripted (a socket error the connector forgot to translate), then answer."""
        self.calls += 1
        if self.calls <= self.failures:
            raise ConnectionResetError(104, "Connection reset by peer")
        return Answer.found(verdict(inquiry.payload["national_id"]))


async def test_an_untranslated_oserror_in_answer_is_retried(bus: ExchangeSettings) -> None:
    """A provider call raising ConnectionResetError twice is retried: ANSWERED, not FAILED."""
    config = MemoryProviderConfig(
        name="nocr-memory",
        agency="NOCR",
        services=({"service": VERIFY},),
        retry={"attempts": 4, "initial_backoff": 0.05, "max_backoff": 0.2, "jitter": 0.01},
    )
    connector = FlakyRegistry(config, failures=2)
    runtime = ProviderRuntime(connector, bus, registry=CollectorRegistry())
    serving = asyncio.create_task(runtime.run())
    try:
        async with ExchangeClient(agency="TAX", subsystem="registration", settings=bus) as client:
            outcome = await client.inquire(
                VERIFY, dict(PERSON), purpose="tax-registration", timeout=25
            )
    finally:
        runtime.stop()
        async with asyncio.timeout(30):
            await serving
    assert outcome.kind is OutcomeKind.ANSWERED
    assert connector.calls == 3
    labels = {"connector": "nocr-memory", "step": "answer"}
    unexpected = runtime.registry.get_sample_value(
        "exchange_connector_unexpected_errors_total", labels
    )
    assert unexpected == 2
