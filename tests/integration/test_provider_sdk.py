"""Provider SDK on the real broker and worker: errors, redelivery, dead letters, manual desk."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import CollectorRegistry
from samples import PERSON, VERDICT
from sdk_bus import real_bus

from exchange import (
    Answer,
    ExchangeClient,
    ExchangeSettings,
    Inquiry,
    InquiryError,
    OutcomeKind,
    Provider,
    answer_manually,
    list_deferred,
)
from exchange._catalog import load_catalog
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import RequestEncoder
from exchange._kafka import client_options
from exchange._outcome import InquirySpec
from exchange._wire import HEADER_DLQ_REASON, header_value

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
AGENCIES = ["TAX", "NOCR"]
VERIFY = "nocr.person.verify.v1"
PURPOSE = "tax-registration"


@pytest.fixture
async def bus(settings: ExchangeSettings) -> AsyncIterator[ExchangeSettings]:
    """Settings of a bus with its topics and one real worker owning every partition."""
    async with real_bus(settings, AGENCIES) as configured:
        yield configured


@pytest.fixture
async def tax(bus: ExchangeSettings) -> AsyncIterator[ExchangeClient]:
    async with ExchangeClient.connect(
        agency="TAX", subsystem="registration", settings=bus
    ) as client:
        yield client


def _options(settings: ExchangeSettings) -> dict[str, Any]:
    return {"bootstrap_servers": settings.kafka_bootstrap, **client_options(settings)}


async def _read_all(settings: ExchangeSettings, topic: str, expect: int) -> list[Any]:
    """Read ``topic`` from the beginning until ``expect`` records came, then 1 s of quiet."""
    consumer = AIOKafkaConsumer(
        topic, **_options(settings), group_id=None, auto_offset_reset="earliest"
    )
    await consumer.start()
    records: list[Any] = []
    try:
        async with asyncio.timeout(30):
            while len(records) < expect:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    records += batch
        for batch in (await consumer.getmany(timeout_ms=1000)).values():
            records += batch
    finally:
        await consumer.stop()
    return records


async def _wait_for_desk(settings: ExchangeSettings) -> list[Inquiry]:
    """Poll the NOCR desk until something waits on it (30 s at most)."""
    for _ in range(150):
        waiting = await list_deferred(settings, "NOCR")
        if waiting:
            return waiting
        await asyncio.sleep(0.2)
    raise AssertionError("nothing reached the desk")


async def test_handler_exception_becomes_a_failed_outcome(
    bus: ExchangeSettings, tax: ExchangeClient
) -> None:
    """A handler that raises yields FAILED / HANDLER_ERROR, and the provider keeps going."""
    registry = CollectorRegistry()
    provider = Provider(agency="NOCR", settings=bus, registry=registry)

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        if inquiry.case_reference == "boom":
            raise KeyError("national_id")
        return Answer.found(VERDICT)

    async with provider:
        failed = await tax.inquire(
            VERIFY, PERSON, purpose=PURPOSE, timeout=30, case_reference="boom"
        )
        answered = await tax.inquire(VERIFY, PERSON, purpose=PURPOSE, timeout=30)
    assert failed.kind is OutcomeKind.FAILED
    assert failed.error_code == "HANDLER_ERROR"
    assert failed.error_message == "KeyError"
    assert answered.kind is OutcomeKind.ANSWERED
    labels = {"agency": "NOCR", "service": VERIFY, "mode": "automatic"}
    assert (
        registry.get_sample_value("exchange_provider_handled_total", {**labels, "result": "ERROR"})
        == 1
    )
    assert (
        registry.get_sample_value("exchange_provider_handled_total", {**labels, "result": "FOUND"})
        == 1
    )


async def test_redelivered_request_is_handled_once(bus: ExchangeSettings) -> None:
    """The same request record delivered twice reaches the handler once; one response."""
    registry = CollectorRegistry()
    provider = Provider(agency="NOCR", settings=bus, registry=registry)
    calls: list[str] = []

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        calls.append(str(inquiry.id))
        return Answer.found(VERDICT)

    catalog = load_catalog(ROOT / "catalog" / "demo", ROOT / "schemas")
    codec = Codec(SchemaStore.from_directory(ROOT / "schemas"))
    item = RequestEncoder(catalog, codec, "TAX", "registration", reply_to=None).encode(
        InquirySpec(VERIFY, PERSON, PURPOSE, deadline=dt.datetime.now(dt.UTC) + dt.timedelta(60))
    )
    producer = AIOKafkaProducer(**_options(bus))
    await producer.start()
    try:
        for _ in range(2):  # what a redelivery looks like: the same record again on in.NOCR
            await producer.send_and_wait(
                f"{bus.topic_prefix}.in.NOCR", item.value, key=item.key, headers=item.headers
            )
    finally:
        await producer.stop()
    async with provider:
        responses = await _read_all(bus, f"{bus.topic_prefix}.out.NOCR", expect=1)
    assert calls == [item.key_text]
    assert [r.key for r in responses] == [item.key]
    assert registry.get_sample_value("exchange_provider_duplicates_total", {"agency": "NOCR"}) == 1


async def test_undecodable_record_is_dead_lettered_and_the_next_is_answered(
    bus: ExchangeSettings, tax: ExchangeClient
) -> None:
    """Garbage on in.NOCR goes to the DLQ byte for byte with its reason; intake goes on."""
    provider = Provider(agency="NOCR", settings=bus)

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        return Answer.not_found()

    producer = AIOKafkaProducer(**_options(bus))
    await producer.start()
    try:
        await producer.send_and_wait(f"{bus.topic_prefix}.in.NOCR", b"not an inquiry", key=b"k-1")
    finally:
        await producer.stop()
    async with provider:
        outcome = await tax.inquire(VERIFY, PERSON, purpose=PURPOSE, timeout=30)
        dead = await _read_all(bus, f"{bus.topic_prefix}.dlq", expect=1)
    assert outcome.kind is OutcomeKind.ANSWERED
    assert outcome.status == "NOT_FOUND"
    assert [(r.key, r.value) for r in dead] == [(b"k-1", b"not an inquiry")]
    assert header_value(dead[0].headers, HEADER_DLQ_REASON) == b"bad-framing"


async def test_deferred_inquiry_is_answered_manually(
    bus: ExchangeSettings, tax: ExchangeClient
) -> None:
    """A deferred inquiry waits on the desk until a person answers it; outcome is MANUAL."""
    registry = CollectorRegistry()
    provider = Provider(agency="NOCR", settings=bus, registry=registry)

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        return Answer.defer()

    async with provider:
        asking = asyncio.create_task(
            tax.inquire(
                VERIFY,
                PERSON,
                purpose=PURPOSE,
                case_reference="desk-1",
                deadline=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=25),  # a clerk is slow
            )
        )
        waiting = await _wait_for_desk(bus)
        assert [i.case_reference for i in waiting] == ["desk-1"]
        assert waiting[0].payload["first_name"] == "Sara"
        answered = await answer_manually(bus, "NOCR", waiting[0].id, "FOUND", VERDICT)
        outcome = await asking
        assert await provider.deferred() == []
        with pytest.raises(InquiryError, match="not waiting"):
            await answer_manually(bus, "NOCR", waiting[0].id, "NOT_FOUND")
    assert answered.id == outcome.inquiry_id
    assert outcome.kind is OutcomeKind.ANSWERED
    assert outcome.answered_by == "MANUAL"
    assert outcome.payload is not None
    assert outcome.payload["last_name_match"] == "SIMILAR"
    assert (
        registry.get_sample_value(
            "exchange_provider_handled_total",
            {"agency": "NOCR", "service": VERIFY, "result": "DEFERRED", "mode": "manual"},
        )
        == 1
    )
