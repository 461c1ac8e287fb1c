"""Ed25519 signatures on the real broker with a real ``exchange worker``.

The catalog is the demo one with keys for TAX (two: a rotation in progress) and NOCR, and
``signatures: required`` on nocr.person.verify.v1.
"""

from __future__ import annotations

import base64
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from _worker_proc import CATALOG, bus_settings, create_bus_topics, running_worker
from samples import PERSON, VERDICT

from exchange import Answer, ExchangeClient, ExchangeSettings, Inquiry, OutcomeKind, Provider
from exchange._signing import Signer
from exchange._signing_keys import write_key_pair

pytestmark = pytest.mark.integration

VERIFY = "nocr.person.verify.v1"
PURPOSE = "tax-registration"
TAX_OLD, TAX_NEW, NOCR = Signer.generate("TAX"), Signer.generate("TAX"), Signer.generate("NOCR")


def _signed_catalog(folder: Path) -> Path:
    """A copy of the demo catalog with the keys and the policy above."""
    shutil.copytree(CATALOG, folder)
    keys = {"TAX": [TAX_OLD, TAX_NEW], "NOCR": [NOCR]}
    agencies = yaml.safe_load((folder / "agencies.yaml").read_text())
    for agency in agencies["agencies"]:
        signers = keys.get(agency["code"], [])
        agency["keys"] = [
            {"id": s.key_id, "public_key": base64.b64encode(s.public_key).decode()} for s in signers
        ]
    (folder / "agencies.yaml").write_text(yaml.safe_dump(agencies, sort_keys=False))
    services = yaml.safe_load((folder / "services.yaml").read_text())
    for service in services["services"]:
        if f"{service['code']}.v{service['version']}" == VERIFY:
            service["signatures"] = "required"
    (folder / "services.yaml").write_text(yaml.safe_dump(services, sort_keys=False))
    return folder


@pytest.fixture
async def bus(settings: ExchangeSettings, tmp_path: Path) -> AsyncIterator[ExchangeSettings]:
    """A bus on the signed catalog: topics and one worker owning every partition."""
    catalog = _signed_catalog(tmp_path / "catalog")
    configured = bus_settings(settings).model_copy(update={"catalog_path": catalog})
    await create_bus_topics(configured, ["TAX", "NOCR"])
    with running_worker(configured) as worker:
        try:
            yield configured
        finally:
            worker.kill()
            print(worker.log())  # shown with a failure only


def _nocr(bus: ExchangeSettings, tmp_path: Path, seen: list[Inquiry]) -> Provider:
    """NOCR's provider, its key read from EXCHANGE_SIGNING_KEY_FILE as in production."""
    private, _ = write_key_pair(NOCR, tmp_path / "keys")
    provider = Provider(
        agency="NOCR", settings=bus.model_copy(update={"signing_key_file": private})
    )

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        seen.append(inquiry)
        return Answer.found(VERDICT)

    return provider


async def _ask(bus: ExchangeSettings, signer: Signer | None) -> Any:
    async with ExchangeClient(
        agency="TAX", subsystem="registration", settings=bus, signer=signer
    ) as client:
        return await client.inquire(VERIFY, PERSON, purpose=PURPOSE, timeout=30)


async def test_signed_inquiries_are_answered_and_verified_at_the_requester(
    bus: ExchangeSettings, tmp_path: Path
) -> None:
    """Requests signed by either TAX key (rotation) are answered; the requester verifies
    NOCR's signature on each answer and keeps the proof."""
    seen: list[Inquiry] = []
    async with _nocr(bus, tmp_path, seen):
        old, new = await _ask(bus, TAX_OLD), await _ask(bus, TAX_NEW)
    for outcome in (old, new):
        assert outcome.kind is OutcomeKind.ANSWERED, outcome
        assert outcome.signed_by == NOCR.key_id
        assert outcome.proof is not None
        assert outcome.proof.signature.startswith(f"v1:{NOCR.key_id}:".encode())
    assert len(seen) == 2


async def test_unsigned_and_forged_requests_are_rejected_before_the_provider(
    bus: ExchangeSettings, tmp_path: Path
) -> None:
    """No signature, or one by a key the catalog does not list: REJECTED/BAD_SIGNATURE, and
    the provider never sees the request."""
    seen: list[Inquiry] = []
    async with _nocr(bus, tmp_path, seen):
        unsigned = await _ask(bus, None)
        forged = await _ask(bus, Signer.generate("TAX"))
        signed = await _ask(bus, TAX_OLD)  # the provider runs: a good one still gets through
    for outcome in (unsigned, forged):
        assert (outcome.kind, outcome.reject_reason) == (OutcomeKind.REJECTED, "BAD_SIGNATURE")
    assert signed.kind is OutcomeKind.ANSWERED
    assert [inquiry.id for inquiry in seen] == [signed.inquiry_id]
