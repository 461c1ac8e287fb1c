"""Ed25519 signatures on the real broker with a real ``exchange worker``.

The catalog is the demo one with keys for TAX (two: a rotation in progress) and NOCR, and
``signatures: required`` on nocr.person.verify.v1.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from _worker_proc import (
    CATALOG,
    SCHEMAS,
    WorkerProcess,
    bus_settings,
    create_bus_topics,
    running_worker,
)
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from samples import PERSON, VERDICT

from exchange import (
    Answer,
    ExchangeClient,
    ExchangeSettings,
    Inquiry,
    OutcomeKind,
    Provider,
    answer_manually,
    list_deferred,
)
from exchange._catalog import load_catalog
from exchange._codec import Codec, SchemaStore
from exchange._envelopes import RequestEncoder
from exchange._kafka import client_options, resolve_bootstrap
from exchange._outcome import InquirySpec
from exchange._signing import Signer
from exchange._signing_keys import write_key_pair
from exchange._topology import Topics
from exchange._wire import HEADER_SIGNATURE, INQUIRY_RESPONSE, header_value

pytestmark = pytest.mark.integration

VERIFY = "nocr.person.verify.v1"
PURPOSE = "tax-registration"
TAX_OLD, TAX_NEW, NOCR = Signer.generate("TAX"), Signer.generate("TAX"), Signer.generate("NOCR")


def _signed_catalog(folder: Path, tax: tuple[Signer, ...] = (TAX_OLD, TAX_NEW)) -> Path:
    """A copy of the demo catalog with the keys (TAX's: ``tax``) and the policy above."""
    shutil.copytree(CATALOG, folder)
    keys = {"TAX": list(tax), "NOCR": [NOCR]}
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
    async with _running_bus(settings, _signed_catalog(tmp_path / "catalog")) as (configured, _):
        yield configured


@contextlib.asynccontextmanager
async def _running_bus(
    settings: ExchangeSettings, catalog: Path
) -> AsyncIterator[tuple[ExchangeSettings, WorkerProcess]]:
    configured = bus_settings(settings).model_copy(update={"catalog_path": catalog})
    await create_bus_topics(configured, ["TAX", "NOCR"])
    with running_worker(configured) as worker:
        try:
            yield configured, worker
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


async def test_a_verifying_provider_refuses_a_forged_request_that_got_past_the_bus(
    bus: ExchangeSettings, tmp_path: Path
) -> None:
    """Defence in depth: a forged request written straight to in.NOCR (as a compromised bus
    could) is answered ERROR/BAD_SIGNATURE without reaching the handler."""
    catalog = load_catalog(bus.catalog_path, bus.schemas_path)
    codec = Codec(SchemaStore.from_directory(bus.schemas_path))
    forger = RequestEncoder(
        catalog, codec, "TAX", "registration", reply_to="x", signer=Signer.generate("TAX")
    )
    item = forger.encode(InquirySpec(VERIFY, PERSON, PURPOSE))
    topics = Topics.for_settings(bus)
    options = {"bootstrap_servers": bus.kafka_bootstrap, **client_options(bus)}
    provider = Provider(agency="NOCR", settings=bus, signer=NOCR, verify_requests=True)
    provider.handles(VERIFY)(_never_called)
    producer = AIOKafkaProducer(**options)
    await producer.start()
    try:
        await producer.send_and_wait(
            topics.in_("NOCR"), item.value, key=item.key, headers=item.headers
        )
    finally:
        await producer.stop()
    async with provider:
        response = await _first_record(options, topics.out("NOCR"), item.key)
    fields = codec.decode(response.value, reader=INQUIRY_RESPONSE)
    assert (fields["status"], fields["error"]["code"]) == ("ERROR", "BAD_SIGNATURE")
    assert header_value(response.headers, HEADER_SIGNATURE) is not None  # signed by NOCR


async def _never_called(inquiry: Inquiry) -> Answer:
    raise AssertionError("the handler got a forged request")


async def _first_record(options: dict[str, Any], topic: str, key: bytes) -> Any:
    """The first record with ``key`` on ``topic`` (30 s at most)."""
    consumer = AIOKafkaConsumer(topic, **options, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        async with asyncio.timeout(30):
            while True:
                for batch in (await consumer.getmany(timeout_ms=500)).values():
                    for record in batch:
                        if record.key == key:
                            return record
    finally:
        await consumer.stop()


async def test_a_key_published_while_the_worker_runs_is_accepted_at_once(
    settings: ExchangeSettings, tmp_path: Path
) -> None:
    """Late rotation: TAX's new key is refused while only the old one is listed; after
    `exchange catalog publish` of the catalog listing both, the running worker accepts it and
    the old key keeps working."""
    first = _signed_catalog(tmp_path / "before", tax=(TAX_OLD,))
    async with _running_bus(settings, first) as (bus, worker):
        worker.wait_for(lambda e: e.get("event") == "catalog loaded")
        async with _nocr(bus, tmp_path, []):
            refused = await _ask(bus, TAX_NEW)
            code, output = await _publish(bus, _signed_catalog(tmp_path / "after"))
            assert code == 0, output
            worker.wait_for(lambda e: e.get("event") == "catalog updated", 30)
            new, old = await _ask(bus, TAX_NEW), await _ask(bus, TAX_OLD)
    assert (refused.kind, refused.reject_reason) == (OutcomeKind.REJECTED, "BAD_SIGNATURE")
    assert (new.kind, old.kind) == (OutcomeKind.ANSWERED, OutcomeKind.ANSWERED)


async def _publish(settings: ExchangeSettings, folder: Path) -> tuple[int, str]:
    """`exchange catalog publish FOLDER` in its own process: exit code and output."""
    env = {
        **os.environ,
        "EXCHANGE_KAFKA_BOOTSTRAP": resolve_bootstrap(settings),
        "EXCHANGE_TOPIC_PREFIX": settings.topic_prefix,
        "EXCHANGE_SCHEMAS_PATH": str(SCHEMAS),
    }
    command = [sys.executable, "-c", "from exchange.cli import main; main()"]
    process = await asyncio.create_subprocess_exec(
        *command,
        "catalog",
        "publish",
        str(folder),
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return await process.wait(), output.decode()


async def test_a_manual_answer_from_the_desk_is_signed_too(
    bus: ExchangeSettings, tmp_path: Path
) -> None:
    """A deferred inquiry answered by a person (answer_manually, key from the settings) is
    signed by NOCR: ANSWERED and verified at the requester, though the service requires it."""
    private, _ = write_key_pair(NOCR, tmp_path / "keys")
    nocr = bus.model_copy(update={"signing_key_file": private})
    provider = Provider(agency="NOCR", settings=nocr)

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        return Answer.defer()

    async with provider:
        asking = asyncio.create_task(_ask(bus, TAX_OLD))
        waiting: list[Inquiry] = []
        async with asyncio.timeout(30):
            while not waiting:
                waiting = await list_deferred(nocr, "NOCR")
                await asyncio.sleep(0.2)
        await answer_manually(nocr, "NOCR", waiting[0].id, "FOUND", VERDICT)
        outcome = await asking
    assert (outcome.kind, outcome.answered_by) == (OutcomeKind.ANSWERED, "MANUAL")
    assert outcome.signed_by == NOCR.key_id
