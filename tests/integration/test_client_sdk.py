"""Requester and provider SDKs on the real broker, through the pass-through test relay."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from exchange import ExchangeSettings
from exchange._answer import Answer, Inquiry
from exchange._client import ExchangeClient
from exchange._outcome import OutcomeKind
from exchange._provider import Provider

from sdk_relay import PassThroughRelay

if TYPE_CHECKING:
    from conftest import CreateTopics

pytestmark = pytest.mark.integration

AGENCIES = ["TAX", "NOCR", "POST"]
VERIFY = "nocr.person.verify.v1"
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
