"""Durable outcomes on the real broker: an outcome that arrives while its requester is down
is read after the restart, and an acknowledged one is not read again."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
from samples import PERSON
from sdk_bus import real_bus

from exchange import Answer, ExchangeClient, ExchangeSettings, Inquiry, InquirySpec, Provider
from exchange._outcome import OutcomeKind

pytestmark = pytest.mark.integration

VERIFY = "nocr.person.verify.v1"
VERDICT = {
    "national_id": "0012345678",
    "national_id_status": "VALID",
    "birth_date_match": True,
    "first_name_match": "EXACT",
    "last_name_match": "EXACT",
    "alive": True,
    "verified_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
}


async def test_an_outcome_arriving_while_down_is_taken_after_the_restart(
    settings: ExchangeSettings,
) -> None:
    """Sent, requester stopped, answered meanwhile: the restarted durable reader hands the
    outcome to the resend at once; once acknowledged, a third run does not see it again."""
    async with real_bus(settings, ["TAX", "NOCR"]) as bus:
        spec = InquirySpec(VERIFY, PERSON, "tax-registration", inquiry_id=uuid.uuid4())
        async with ExchangeClient.connect(
            agency="TAX", subsystem="registration", settings=bus, durable="d1"
        ) as first:
            waiting = asyncio.ensure_future(first.inquire_many([spec]))
            await asyncio.sleep(0.5)  # sent; nobody answers yet
        with pytest.raises(Exception, match="closed"):
            await waiting

        provider = Provider(agency="NOCR", settings=bus)
        answered = asyncio.Event()

        @provider.handles(VERIFY)
        async def verify(inquiry: Inquiry) -> Answer:
            if inquiry.id == spec.inquiry_id:
                answered.set()
            return Answer.found(VERDICT)

        serving = asyncio.create_task(provider.run())
        try:
            await asyncio.wait_for(answered.wait(), 60)
            await asyncio.sleep(1.0)  # the outcome reaches replies.TAX
        finally:
            await provider.stop()
            await serving

        async with ExchangeClient.connect(
            agency="TAX", subsystem="registration", settings=bus, durable="d1"
        ) as second:
            started = asyncio.get_running_loop().time()
            outcome = (await second.inquire_many([spec], timeout=30))[0]
            assert outcome.kind is OutcomeKind.ANSWERED
            assert outcome.status == "FOUND"
            assert asyncio.get_running_loop().time() - started < 10
            assert spec.inquiry_id is not None
            second.acknowledge(spec.inquiry_id)
            await asyncio.sleep(1.5)  # one reader round commits

        async with ExchangeClient.connect(
            agency="TAX", subsystem="registration", settings=bus, durable="d1"
        ) as third:
            again = (await third.inquire_many([spec], timeout=3))[0]
            assert again.kind is OutcomeKind.TIMED_OUT
            assert again.local  # not re-read: the resend is a duplicate the bus drops
