"""The audit trail on the real broker: hash chains written by real workers, verified and
queried by ``exchange audit`` in a subprocess.

Each test has its own topics, real ``exchange worker`` subprocesses and an SDK provider for NOCR
that answers; requests are written raw to ``out.TAX``.
"""

from __future__ import annotations

import asyncio
import io
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from _worker_proc import (
    VERIFY,
    BusTap,
    Raw,
    Records,
    bus_settings,
    create_bus_topics,
    exchange_command,
    running_worker,
)
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from fastavro import schemaless_writer
from samples import VERDICT

from agents._engine import default_partition
from connectors.testkit._bus import bus_env
from exchange import Answer, ExchangeSettings, Inquiry, Provider
from exchange._audit_chain import canonical_bytes, chain_id, seal
from exchange._audit_io import AuditDecoder
from exchange._envelope_fields import raw_schema
from exchange._kafka import client_options, resolve_bootstrap
from exchange._topology import Topics
from exchange._wire import AUDIT_RECORD

pytestmark = pytest.mark.integration


class Scene:
    """One test's bus: settings, topic names, record builder and tap."""

    def __init__(self, settings: ExchangeSettings, tap: BusTap) -> None:
        self.settings = settings
        self.topics = Topics.for_settings(settings)
        self.records = Records(settings)
        self.tap = tap

    async def send(self, raws: Iterable[Raw]) -> None:
        """Write requests to ``out.TAX``."""
        await self.tap.send(self.topics.out("TAX"), *raws)

    async def audited(self, raws: Iterable[Raw], within: float = 60.0) -> None:
        """Wait until each inquiry has its SETTLED audit record."""
        for raw in raws:
            await self.tap.wait(self.topics.audit, raw.inquiry_id, within=within)

    def audit(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``exchange audit COMMAND ARGS`` against this bus."""
        env = bus_env(self.settings)
        argv = exchange_command("audit", command, *args)
        return subprocess.run(
            argv, check=False, env=env, capture_output=True, text=True, timeout=120
        )

    def verify(self) -> tuple[int, dict[str, Any]]:
        """``exchange audit verify --json``: its exit code and document."""
        done = self.audit("verify", "--json")
        assert done.stdout, done.stderr
        return done.returncode, json.loads(done.stdout)


@pytest.fixture
async def scene(settings: ExchangeSettings) -> AsyncIterator[Scene]:
    """Topics for TAX and NOCR, a NOCR provider that answers, and a tap on replies and audit."""
    bus = bus_settings(settings)
    await create_bus_topics(bus, ["TAX", "NOCR"])
    provider = Provider(agency="NOCR", settings=bus)

    @provider.handles(VERIFY)
    async def verify(inquiry: Inquiry) -> Answer:
        return Answer.found(VERDICT)

    t = Topics.for_settings(bus)
    async with provider, BusTap(bus, [t.replies("TAX"), t.audit]) as tap:
        yield Scene(bus, tap)


def _person(subject_id: str) -> dict[str, str]:
    return {"kind": "PERSON", "id": subject_id}


async def test_verify_passes_then_finds_forged_records(scene: Scene) -> None:
    """Answered and rejected inquiries chain; a forged record linked to a chain's head is
    betrayed by the worker's next record of that chain, a replayed one at once."""
    answered = [scene.records.request(VERIFY) for _ in range(6)]
    rejected = [scene.records.request(VERIFY, deadline=-1) for _ in range(4)]
    with running_worker(scene.settings):
        await scene.send(answered + rejected)
        await scene.audited(answered + rejected)
        code, document = await asyncio.to_thread(scene.verify)
        assert (code, document["ok"]) == (0, True), document
        assert sum(chain["records"] for chain in document["chains"]) == 10
        assert {chain["chain"] for chain in document["chains"]} == {0, 1}

        last = scene.tap.records[scene.topics.audit][-1]
        chain = chain_id(list(last.headers))
        assert chain is not None
        await _forge_after(scene, last)
        later = _request_on(scene, chain)
        await scene.send([later])
        await scene.audited([later])
        code, document = await asyncio.to_thread(scene.verify)
        assert code == 1
        assert _breaks(document) == [(last.partition, "broken-link")]
        assert f"follows offset {last.offset}" in _details(document)[0]

        first = next(r for r in scene.tap.records[scene.topics.audit] if r.partition != chain)
        await _plant(scene, first.value, list(first.headers))  # a replay of a chain's start
        code, document = await asyncio.to_thread(scene.verify)
        assert code == 1
        assert sorted(_breaks(document)) == [(0, "broken-link"), (1, "broken-link")]
        text = await asyncio.to_thread(scene.audit, "verify")
        assert text.returncode == 1
        assert "BROKEN at offset" in text.stdout


async def test_a_killed_worker_leaves_valid_chains_in_a_shared_audit_partition(
    settings: ExchangeSettings,
) -> None:
    """Two input partitions chain into one audit partition; SIGKILL mid-stream and a restart
    leave both chains valid (records of aborted transactions are not read)."""
    bus = bus_settings(settings)
    await _create_single_partition_audit(bus)
    await create_bus_topics(bus, ["TAX", "NOCR"])
    records, t = Records(bus), Topics.for_settings(bus)
    before = [records.request(VERIFY, deadline=-1) for _ in range(150)]
    after = [records.request(VERIFY, deadline=-1) for _ in range(40)]
    async with BusTap(bus, [t.replies("TAX"), t.audit]) as tap:
        scene = Scene(bus, tap)
        with running_worker(bus) as first:
            stream = asyncio.create_task(_stream(scene, before))
            await asyncio.sleep(0.3)
            first.kill()
            await stream
        with running_worker(bus):
            await _stream(scene, after)
            await scene.audited(before + after)
        code, document = await asyncio.to_thread(scene.verify)
    assert (code, document["ok"]) == (0, True), document
    chains = {(chain["partition"], chain["chain"]) for chain in document["chains"]}
    assert chains == {(0, 0), (0, 1)}


async def test_subject_lists_exactly_the_inquiries_about_one_subject(scene: Scene) -> None:
    """`audit subject PERSON ID` finds who asked, why and with what outcome, nothing else."""
    subject_id = f"77{uuid.uuid4().int % 10**8:08d}"
    about = [
        scene.records.request(VERIFY, subject=_person(subject_id), case_reference="case-9"),
        scene.records.request(VERIFY, subject=_person(subject_id), deadline=-1),
    ]
    others = [
        scene.records.request(VERIFY, subject=_person("0000000001")),
        scene.records.request(VERIFY, subject={"kind": "COMPANY", "id": subject_id}),
    ]
    with running_worker(scene.settings):
        await scene.send(about + others)
        await scene.audited(about + others)
    done = await asyncio.to_thread(scene.audit, "subject", "person", subject_id, "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert sorted(row["inquiry_id"] for row in rows) == sorted(r.inquiry_id for r in about)
    by_id = {row["inquiry_id"]: row for row in rows}
    answered, rejected = by_id[about[0].inquiry_id], by_id[about[1].inquiry_id]
    assert (answered["requester"], answered["provider"]) == ("TAX/registration", "NOCR/identity")
    assert (answered["purpose"], answered["case_reference"]) == ("tax-registration", "case-9")
    assert (answered["service"], answered["outcome"]) == (VERIFY, "ANSWERED")
    assert (rejected["outcome"], rejected["reject_reason"]) == ("REJECTED", "DEADLINE_PAST")
    text = await asyncio.to_thread(scene.audit, "subject", "PERSON", subject_id)
    assert "2 record(s)" in text.stdout
    assert "TAX/registration asked NOCR/identity" in text.stdout
    none = await asyncio.to_thread(scene.audit, "subject", "PERSON", subject_id, "--since", "now")
    assert "no inquiries" in none.stdout


# --- helpers ----------------------------------------------------------------------------------


def _details(document: dict[str, Any]) -> list[str]:
    return [p["detail"] for chain in document["chains"] for p in chain["problems"]]


def _breaks(document: dict[str, Any]) -> list[tuple[int, str]]:
    return [
        (chain["partition"], problem["kind"])
        for chain in document["chains"]
        for problem in chain["problems"]
    ]


async def _stream(scene: Scene, raws: list[Raw], per_step: int = 10) -> None:
    for start in range(0, len(raws), per_step):
        await scene.send(raws[start : start + per_step])
        await asyncio.sleep(0.05)


async def _plant(scene: Scene, value: bytes, headers: list[tuple[str, bytes]]) -> Any:
    """Append a record to the audit topic's partition the chain header points at."""
    chain = chain_id(headers)
    assert chain is not None
    partition = chain % len(await scene.tap._producer.partitions_for(scene.topics.audit))
    sent = await scene.tap._producer.send(
        scene.topics.audit, value, key=b"forged", headers=headers, partition=partition
    )
    return await sent


async def _forge_after(scene: Scene, last: Any) -> None:
    """Plant a well-formed forged record linked to ``last`` (its chain's head)."""
    decoder = AuditDecoder(scene.records.codec.store)
    fields = decoder.decode(last.value)
    sealed = canonical_bytes(last.value)
    assert sealed is not None
    head = sealed[1]
    fields.update(purpose="forged", prev_hash=head, hash=None)
    schema = scene.records.codec.store.get(AUDIT_RECORD)
    out = io.BytesIO(schema.header)
    out.seek(0, io.SEEK_END)
    schemaless_writer(out, raw_schema(schema), _as_union_branches(fields))
    value, _digest = seal(head, out.getvalue())
    await _plant(scene, value, list(last.headers))


def _as_union_branches(fields: dict[str, Any]) -> dict[str, Any]:
    # Records inside unions as (name, value), so fastavro picks the branch named.
    for name, branch in (
        ("requester", "AgencyRef"),
        ("provider", "AgencyRef"),
        ("responder", "AgencyRef"),
        ("subject", "SubjectRef"),
    ):
        if fields.get(name) is not None:
            fields[name] = (f"exchange.v1.{branch}", fields[name])
    return fields


def _request_on(scene: Scene, partition: int) -> Raw:
    """A rejected request on input partition ``partition``."""
    while True:
        raw = scene.records.request(VERIFY, deadline=-1)
        if default_partition(raw.key, scene.settings.partitions) == partition:
            return raw


async def _create_single_partition_audit(settings: ExchangeSettings) -> None:
    """The audit topic with one partition, before the others: both input partitions share it."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=resolve_bootstrap(settings), **client_options(settings)
    )
    await admin.start()
    try:
        await admin.create_topics([NewTopic(Topics.for_settings(settings).audit, 1, 1)])
    finally:
        await admin.close()
