"""What an agency's own code looks like against the SDK; checked with mypy --strict.

Never run by the suite: ``tests/unit/test_client_typing.py`` type-checks it, so a change to
the public API that would break users' type checking fails the build.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from exchange import (
    Answer,
    ExchangeClient,
    ExchangeSettings,
    Inquiry,
    InquiryError,
    InquirySpec,
    Outcome,
    OutcomeKind,
    Provider,
    answer_manually,
    list_deferred,
)

VERIFY = "nocr.person.verify.v1"


def describe(outcome: Outcome) -> str:
    """Every kind of outcome, handled explicitly."""
    match outcome.kind:
        case OutcomeKind.ANSWERED:
            alive = outcome.payload is not None and bool(outcome.payload.get("alive"))
            return f"{outcome.status}: alive={alive}"
        case OutcomeKind.REJECTED:
            return f"rejected by the bus: {outcome.reject_reason}"
        case OutcomeKind.FAILED:
            return f"provider error {outcome.error_code}: {outcome.error_message}"
        case OutcomeKind.TIMED_OUT:
            return "timed out" + (" (stopped waiting)" if outcome.local else "")


async def ask(settings: ExchangeSettings) -> list[str]:
    """The requester side: one inquiry, then a scatter-gather."""
    payload: dict[str, Any] = {
        "national_id": "0012345678",
        "birth_date": dt.date(1990, 3, 21),
        "first_name": "Sara",
        "last_name": "Ahmadi",
    }
    async with ExchangeClient.connect(
        agency="TAX", subsystem="registration", settings=settings
    ) as client:
        try:
            one: Outcome = await client.inquire(
                VERIFY, payload, purpose="tax-registration", timeout=5.0, case_reference="T-1"
            )
        except InquiryError as exc:  # the payload did not validate: nothing was sent
            return [exc.message]
        many: list[Outcome] = await client.inquire_many(
            [
                InquirySpec(VERIFY, payload, "tax-registration"),
                InquirySpec("post.address.lookup.v1", {"postal_code": "1"}, "tax-registration"),
            ],
            timeout=3.0,
        )
        return [describe(outcome) for outcome in (one, *many)]


def build_provider(settings: ExchangeSettings) -> Provider:
    """The provider side: one automatic handler that defers the hard cases to a person."""
    provider = Provider(agency="NOCR", settings=settings, concurrency=16)

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        if inquiry.payload["national_id"].startswith("9"):
            return Answer.defer()
        if inquiry.payload["national_id"] == "0000000000":
            return Answer.not_found()
        return Answer.found(
            {
                "national_id": inquiry.payload["national_id"],
                "national_id_status": "VALID",
                "birth_date_match": True,
                "first_name_match": "EXACT",
                "last_name_match": "EXACT",
                "alive": True,
                "verified_at": dt.datetime.now(dt.UTC),
            }
        )

    return provider


async def clear_desk(settings: ExchangeSettings) -> int:
    """A clerk's script: answer every deferred inquiry as not found."""
    waiting: list[Inquiry] = await list_deferred(settings, "NOCR")
    for inquiry in waiting:
        answered: Inquiry = await answer_manually(settings, "NOCR", inquiry.id, "NOT_FOUND")
        assert answered.id == inquiry.id
    return len(waiting)


async def main() -> None:
    settings = ExchangeSettings()
    provider = build_provider(settings)
    async with provider:
        print(await ask(settings))
    print(await clear_desk(settings))


if __name__ == "__main__":
    asyncio.run(main())
