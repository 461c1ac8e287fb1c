"""Requester and provider SDKs on the real broker, through the pass-through test relay."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from sdk_relay import PassThroughRelay

from exchange import (
    Answer,
    ExchangeClient,
    ExchangeSettings,
    Inquiry,
    InquiryRejectedError,
    InquirySpec,
    OutcomeKind,
    Provider,
)

if TYPE_CHECKING:
    from conftest import CreateTopics

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
AGENCIES = ["TAX", "NOCR", "POST"]
VERIFY = "nocr.person.verify.v1"
PURPOSE = "tax-registration"
PAYLOAD = {
    "national_id": "0012345678",
    "birth_date": dt.date(1990, 3, 21),
    "first_name": "Sara",
    "last_name": "Ahmadi",
}


def verdict(national_id: str) -> dict[str, object]:
    return {
        "national_id": national_id,
        "national_id_status": "VALID",
        "birth_date_match": True,
        "first_name_match": "EXACT",
        "last_name_match": "EXACT",
        "alive": True,
        "verified_at": dt.datetime.now(dt.UTC),
    }


@pytest.fixture
async def topics(settings: ExchangeSettings, create_topics: CreateTopics) -> None:
    p = settings.topic_prefix
    names = [f"{p}.{kind}.{a}" for a in AGENCIES for kind in ("out", "in", "replies")]
    await create_topics(*names, f"{p}.dlq", partitions=3)


@pytest.fixture
async def relay(settings: ExchangeSettings, topics: None) -> AsyncIterator[PassThroughRelay]:
    async with PassThroughRelay(settings, AGENCIES) as running:
        yield running


async def test_one_inquiry_is_answered(settings: ExchangeSettings, relay: PassThroughRelay) -> None:
    """A requester's inquiry reaches the provider's handler and comes back ANSWERED/FOUND."""
    provider = Provider(agency="NOCR", settings=settings)
    seen: list[Inquiry] = []

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        seen.append(inquiry)
        return Answer.found(verdict(inquiry.payload["national_id"]))

    async with (
        provider,
        ExchangeClient.connect(agency="TAX", subsystem="registration", settings=settings) as client,
    ):
        outcome = await client.inquire(
            VERIFY, PAYLOAD, purpose="tax-registration", timeout=20.0, case_reference="C-1"
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
async def nocr(settings: ExchangeSettings, relay: PassThroughRelay) -> AsyncIterator[Provider]:
    """A running NOCR provider that echoes the national id it was asked about."""
    provider = Provider(agency="NOCR", settings=settings, concurrency=64)

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        return Answer.found(verdict(inquiry.payload["national_id"]))

    async with provider:
        yield provider


@pytest.fixture
async def tax(settings: ExchangeSettings, relay: PassThroughRelay) -> AsyncIterator[ExchangeClient]:
    async with ExchangeClient.connect(
        agency="TAX", subsystem="registration", settings=settings
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
                VERIFY, {**PAYLOAD, "national_id": i}, purpose="tax-registration", timeout=60
            )
            for i in ids
        )
    )
    assert [o.kind for o in outcomes] == [OutcomeKind.ANSWERED] * 200
    assert [o.payload["national_id"] for o in outcomes if o.payload] == ids
    assert len({o.inquiry_id for o in outcomes}) == 200
    assert tax.in_flight == 0


async def test_invalid_payload_raises_before_anything_is_sent(
    tax: ExchangeClient, relay: PassThroughRelay
) -> None:
    """A payload that misses required fields raises InquiryRejectedError; nothing is sent."""
    with pytest.raises(InquiryRejectedError) as caught:
        await tax.inquire(VERIFY, {"national_id": "1"}, purpose="tax-registration")
    assert caught.value.reason == "INVALID_PAYLOAD"
    await asyncio.sleep(0.5)
    assert relay.forwarded == 0


async def test_scatter_gather_marks_the_slow_provider_timed_out(
    settings: ExchangeSettings, nocr: Provider, tax: ExchangeClient
) -> None:
    """inquire_many returns the fast answer and a local TIMED_OUT for the slow provider."""
    post = Provider(agency="POST", settings=settings)

    @post.handles("post.address.lookup.v1")
    async def lookup(inquiry: Inquiry) -> Answer:
        await asyncio.sleep(30)
        return Answer.not_found()

    async with post:
        started = asyncio.get_running_loop().time()
        outcomes = await tax.inquire_many(
            [
                InquirySpec(VERIFY, PAYLOAD, "tax-registration"),
                InquirySpec(
                    "post.address.lookup.v1", {"postal_code": "1234567890"}, "tax-registration"
                ),
            ],
            timeout=8.0,
        )
        waited = asyncio.get_running_loop().time() - started
    assert [o.kind for o in outcomes] == [OutcomeKind.ANSWERED, OutcomeKind.TIMED_OUT]
    assert outcomes[1].local
    assert outcomes[1].provider == "POST"
    assert 8.0 <= waited < 10.0


async def test_send_and_outcomes_stream(nocr: Provider, tax: ExchangeClient) -> None:
    """Fire-and-forget sends deliver every outcome through outcomes()."""
    sent = {
        await tax.send(VERIFY, PAYLOAD, purpose="tax-registration", timeout=60) for _ in range(20)
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
    settings: ExchangeSettings, nocr: Provider, kafka_bootstrap: str
) -> None:
    """Two TAX client processes asking at once each receive exactly their own outcomes."""
    script = Path(__file__).with_name("sdk_client_proc.py")
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            kafka_bootstrap,
            settings.topic_prefix,
            "40",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
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
