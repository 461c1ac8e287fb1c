"""Requester and provider SDKs on the real broker, through a real ``exchange worker``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _worker_proc import bus_settings, create_bus_topics
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from samples import PERSON, verdict
from sdk_bus import real_bus

from exchange import (
    Answer,
    CodecError,
    ExchangeClient,
    ExchangeSettings,
    Inquiry,
    InquiryRejectedError,
    InquirySpec,
    OutcomeKind,
    Provider,
)
from exchange._desk_reader import partitions_of
from exchange._kafka import client_options
from exchange._topology import Topics
from exchange._wire import HEADER_REPLY_TO

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
AGENCIES = ["TAX", "NOCR", "POST"]
VERIFY = "nocr.person.verify.v1"
PURPOSE = "tax-registration"


@pytest.fixture
async def bus(settings: ExchangeSettings) -> AsyncIterator[ExchangeSettings]:
    """Settings of a bus with its topics and one real worker owning every partition."""
    async with real_bus(settings, AGENCIES) as configured:
        yield configured


async def _records_in(settings: ExchangeSettings, topic: str) -> int:
    """How many records a topic holds (sum of its partitions' end offsets)."""
    partitions = await partitions_of(settings, topic)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap, **client_options(settings)
    )
    await consumer.start()
    try:
        ends = await consumer.end_offsets([TopicPartition(topic, p) for p in partitions])
    finally:
        await consumer.stop()
    return sum(ends.values())


async def test_one_inquiry_is_answered(bus: ExchangeSettings) -> None:
    """A requester's inquiry reaches the provider's handler and comes back ANSWERED/FOUND."""
    provider = Provider(agency="NOCR", settings=bus)
    seen: list[Inquiry] = []

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        seen.append(inquiry)
        return Answer.found(verdict(inquiry.payload["national_id"]))

    async with (
        provider,
        ExchangeClient.connect(agency="TAX", subsystem="registration", settings=bus) as client,
    ):
        outcome = await client.inquire(
            VERIFY, PERSON, purpose="tax-registration", timeout=20.0, case_reference="C-1"
        )
    assert outcome.kind is OutcomeKind.ANSWERED, outcome
    assert outcome.status == "FOUND"
    assert outcome.payload is not None
    assert outcome.payload["national_id_status"] == "VALID"
    assert outcome.answered_by == "AUTOMATIC"
    assert [i.case_reference for i in seen] == ["C-1"]
    assert seen[0].requester == "TAX"
    assert seen[0].payload["birth_date"] == dt.date(1990, 3, 21)


@pytest.fixture
async def nocr(bus: ExchangeSettings) -> AsyncIterator[Provider]:
    """A running NOCR provider that echoes the national id it was asked about."""
    provider = Provider(agency="NOCR", settings=bus, concurrency=64)

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        return Answer.found(verdict(inquiry.payload["national_id"]))

    async with provider:
        yield provider


@pytest.fixture
async def tax(bus: ExchangeSettings) -> AsyncIterator[ExchangeClient]:
    async with ExchangeClient.connect(
        agency="TAX", subsystem="registration", settings=bus
    ) as client:
        yield client


async def test_many_inquiries_in_flight_each_get_their_own_outcome(
    nocr: Provider, tax: ExchangeClient
) -> None:
    """200 concurrent inquiries from one client each end ANSWERED with their own answer."""
    ids = [f"{n:010d}" for n in range(200)]
    outcomes = await asyncio.gather(
        *(
            tax.inquire(
                VERIFY, {**PERSON, "national_id": i}, purpose="tax-registration", timeout=60
            )
            for i in ids
        )
    )
    assert [o.kind for o in outcomes] == [OutcomeKind.ANSWERED] * 200
    assert [o.payload["national_id"] for o in outcomes if o.payload] == ids
    assert len({o.inquiry_id for o in outcomes}) == 200
    assert tax.in_flight == 0


async def test_invalid_payload_raises_before_anything_is_sent(
    tax: ExchangeClient, bus: ExchangeSettings
) -> None:
    """A payload that misses required fields raises InquiryRejectedError; nothing is sent."""
    with pytest.raises(InquiryRejectedError) as caught:
        await tax.inquire(VERIFY, {"national_id": "1"}, purpose="tax-registration")
    assert caught.value.reason == "INVALID_PAYLOAD"
    await asyncio.sleep(0.5)
    assert await _records_in(bus, f"{bus.topic_prefix}.out.TAX") == 0


async def test_scatter_gather_marks_the_slow_provider_timed_out(
    bus: ExchangeSettings, nocr: Provider, tax: ExchangeClient
) -> None:
    """inquire_many returns the fast answer and a local TIMED_OUT for the slow provider."""
    post = Provider(agency="POST", settings=bus, drain_timeout=0.5)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=18)  # the bus waits longer than we do

    @post.handles("post.address.lookup.v1")
    async def lookup(inquiry: Inquiry) -> Answer:
        await asyncio.sleep(30)
        return Answer.not_found()

    async with post:
        started = asyncio.get_running_loop().time()
        outcomes = await tax.inquire_many(
            [
                InquirySpec(VERIFY, PERSON, PURPOSE),
                InquirySpec(
                    "post.address.lookup.v1", {"postal_code": "1234567890"}, PURPOSE, deadline=later
                ),
            ],
            timeout=6.0,
        )
        waited = asyncio.get_running_loop().time() - started
    assert [o.kind for o in outcomes] == [OutcomeKind.ANSWERED, OutcomeKind.TIMED_OUT]
    assert outcomes[1].local
    assert outcomes[1].provider == "POST"
    assert 6.0 <= waited < 8.0


async def test_send_and_outcomes_stream(nocr: Provider, tax: ExchangeClient) -> None:
    """Fire-and-forget sends deliver every outcome through outcomes()."""
    sent = {
        await tax.send(VERIFY, PERSON, purpose="tax-registration", timeout=60) for _ in range(20)
    }
    received = set()
    async with asyncio.timeout(60):
        async for outcome in tax.outcomes():
            assert outcome.kind is OutcomeKind.ANSWERED
            received.add(outcome.inquiry_id)
            if len(received) == len(sent):
                break
    assert received == sent


async def test_two_processes_of_one_agency_each_get_only_their_own_outcomes(
    bus: ExchangeSettings, nocr: Provider, kafka_bootstrap: str
) -> None:
    """Two TAX client processes asking at once each receive exactly their own outcomes."""
    script = Path(__file__).with_name("sdk_client_proc.py")
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            kafka_bootstrap,
            bus.topic_prefix,
            "40",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
            env=_with_tests_on_path(),
        )
        for _ in range(2)
    ]
    try:
        async with asyncio.timeout(120):
            for proc in procs:
                assert proc.stdout is not None
                assert "ready" in json.loads(await proc.stdout.readline())
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(b"go\n")
                await proc.stdin.drain()
            reports = [json.loads((await proc.communicate())[0]) for proc in procs]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
    assert reports[0]["instance_id"] != reports[1]["instance_id"]
    for report in reports:
        kinds = {kind for _id, kind, _local in report["outcomes"]}
        assert kinds == {"ANSWERED"}, report
        assert len(report["outcomes"]) == 40
        assert report["late"] == 0  # no outcome of the other process was taken for its own
    assert not {o[0] for o in reports[0]["outcomes"]} & {o[0] for o in reports[1]["outcomes"]}


async def test_start_given_up_on_leaves_no_kafka_client_running(settings: ExchangeSettings) -> None:
    """A start() cancelled while it waits for a missing replies topic stops both Kafka clients."""
    before = asyncio.all_tasks()
    client = ExchangeClient(agency="TAX", settings=settings)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(3):
            await client.start()
    await asyncio.sleep(0.2)  # the stopped clients' own tasks finish their cancellation
    assert {task for task in asyncio.all_tasks() - before if not task.done()} == set()


async def test_unreadable_outcome_fails_its_caller_at_once(settings: ExchangeSettings) -> None:
    """An outcome addressed to the client that it cannot decode raises CodecError for its
    inquiry instead of leaving the caller to a local TIMED_OUT."""
    configured = bus_settings(settings)
    await create_bus_topics(configured, ["TAX"])
    inquiry_id = uuid.uuid4()
    spec = InquirySpec(VERIFY, PERSON, PURPOSE, inquiry_id=inquiry_id)
    async with ExchangeClient.connect(agency="TAX", settings=configured) as client:
        asking = asyncio.ensure_future(client.inquire_many([spec], timeout=60))
        producer = AIOKafkaProducer(
            bootstrap_servers=configured.kafka_bootstrap, **client_options(configured)
        )
        await producer.start()
        try:
            await producer.send_and_wait(
                Topics.for_settings(configured).replies("TAX"),
                b"\x00not an outcome",
                key=str(inquiry_id).encode(),
                headers=[(HEADER_REPLY_TO, client.reply_to.encode())],
            )
        finally:
            await producer.stop()
        with pytest.raises(CodecError):
            async with asyncio.timeout(20):
                await asking
        assert client.in_flight == 0


def _with_tests_on_path() -> dict[str, str]:
    """This environment, with tests/ on PYTHONPATH: the script imports ``samples`` from there."""
    paths = [str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in paths if path)}
