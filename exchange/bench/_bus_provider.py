"""The bus scenarios' provider processes: the provider SDK, as an agency would run it.

:func:`provider` answers every ``nocr.person.verify.v1`` inquiry at once from a small table
(the fastest legacy system there is), so the figures are the bus's and the SDK's own.
:func:`silent_provider` takes ``tax.clearance.status.v1`` inquiries and never answers them,
which keeps them pending on the bus (the memory measurement).
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from exchange._answer import Answer, Inquiry
from exchange._provider import Provider
from exchange.bench._bus_env import bus_settings
from exchange.bench._scenario import ScenarioEnv

PROVIDER = "NOCR"
SERVICE = "nocr.person.verify.v1"
SILENT_PROVIDER = "TAX"
SILENT_SERVICE = "tax.clearance.status.v1"
#: In-flight handlers of the answering provider: enough that acknowledgements of its
#: responses (``acks=all``) never hold back intake at the benchmark's loads.
CONCURRENCY = 256

_VERIFIED_AT = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
#: The register: national id -> what it holds. Anyone else is NOT_FOUND.
REGISTER: dict[str, dict[str, Any]] = {
    "0012345678": {"first_name": "Sara", "last_name": "Ahmadi", "birth_date": dt.date(1990, 3, 21)}
}


def verdict(payload: dict[str, Any]) -> Answer:
    """Compare the request with the register, as an identity register would."""
    national_id = payload["national_id"]
    held = REGISTER.get(national_id)
    if held is None:
        return Answer.not_found()
    return Answer.found(
        {
            "national_id": national_id,
            "national_id_status": "VALID",
            "birth_date_match": held["birth_date"] == payload["birth_date"],
            "first_name_match": _match(held["first_name"], payload["first_name"]),
            "last_name_match": _match(held["last_name"], payload["last_name"]),
            "alive": True,
            "verified_at": _VERIFIED_AT,
        }
    )


def _match(held: str, asked: str) -> str:
    return "EXACT" if held == asked else "DIFFERENT"


async def provider(env: ScenarioEnv, stop: asyncio.Event) -> None:
    """Answer ``nocr.person.verify.v1`` until SIGTERM."""
    nocr = Provider(agency=PROVIDER, settings=bus_settings(env), concurrency=CONCURRENCY)

    @nocr.handles(SERVICE)
    async def verify(inquiry: Inquiry) -> Answer:
        return verdict(inquiry.payload)

    await _run_until(nocr, stop)


async def silent_provider(env: ScenarioEnv, stop: asyncio.Event) -> None:
    """Take ``tax.clearance.status.v1`` inquiries and never answer (until SIGTERM)."""
    tax = Provider(agency=SILENT_PROVIDER, settings=bus_settings(env), drain_timeout=0.0)

    @tax.handles(SILENT_SERVICE)
    async def never(inquiry: Inquiry) -> Answer:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    await _run_until(tax, stop)


async def _run_until(agency: Provider, stop: asyncio.Event) -> None:
    """Run ``agency`` until ``stop`` is set; raise at once if it fails before."""
    running = asyncio.create_task(agency.run())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
    stopping.cancel()
    await agency.stop()
    await running
