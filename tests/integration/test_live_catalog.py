"""The live catalog on the real broker: `exchange catalog publish` reaches a running worker."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from _worker_proc import (
    CATALOG,
    SCHEMAS,
    BusTap,
    Records,
    bus_settings,
    create_bus_topics,
    running_worker,
)

from exchange import ExchangeSettings
from exchange._kafka import resolve_bootstrap
from exchange._topology import Topics

pytestmark = pytest.mark.integration

#: The policy line after which the test grants TAX/registration a second purpose for VERIFY.
_VERIFY_BASIS = "Direct Taxation Act, art. 169 bis (taxpayer identification by national id).\n"
_AUDIT_PURPOSE = (
    "      - code: tax-audit\n"
    "        legal_basis: Direct Taxation Act, art. 231 (identity of the audited taxpayer).\n"
)
#: Publish to routed, on two busy cores: "a few seconds", with room.
WITHIN = 15.0


def _granting_copy(tmp_path: Path) -> Path:
    """A copy of the demo catalog where TAX/registration may ask VERIFY for tax-audit."""
    folder = tmp_path / "catalog"
    shutil.copytree(CATALOG, folder)
    policies = (folder / "policies.yaml").read_text()
    assert policies.count(_VERIFY_BASIS) == 1
    (folder / "policies.yaml").write_text(
        policies.replace(_VERIFY_BASIS, _VERIFY_BASIS + _AUDIT_PURPOSE)
    )
    return folder


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
        *command, "catalog", "publish", str(folder),
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    return await process.wait(), output.decode()


def _outcome(records: Records, tap: BusTap, topics: Topics, inquiry_id: str) -> dict[str, Any]:
    (reply,) = tap.of(topics.replies("TAX"), inquiry_id)
    return records.outcome(reply.value)


@pytest.fixture
def bus(settings: ExchangeSettings) -> ExchangeSettings:
    """Two partitions, the demo catalog from the files."""
    return bus_settings(settings)


async def test_a_published_purpose_reaches_the_running_worker_without_restart(
    bus: ExchangeSettings, tmp_path: Path
) -> None:
    """Refused PURPOSE_NOT_ALLOWED, then `catalog publish` of a copy granting the purpose:
    within seconds the same inquiry is routed and ANSWERED by the same worker process; an
    invalid snapshot written afterwards is refused and routing goes on."""
    await create_bus_topics(bus, ["TAX", "NOCR"])
    topics, records = Topics.for_settings(bus), Records(bus)
    watched = [topics.replies("TAX"), topics.in_("NOCR")]
    async with BusTap(bus, watched) as tap:
        with running_worker(bus) as worker:
            loaded = worker.wait_for(lambda e: e.get("event") == "catalog loaded")
            assert loaded["origin"] == "files"
            before = records.request(purpose="tax-audit")
            await tap.send(topics.out("TAX"), before)
            await tap.wait(topics.replies("TAX"), before.inquiry_id)
            refused = _outcome(records, tap, topics, before.inquiry_id)
            assert (refused["kind"], refused["reject_reason"]) == (
                "REJECTED",
                "PURPOSE_NOT_ALLOWED",
            )

            folder = _granting_copy(tmp_path)
            published_at = time.monotonic()
            code, output = await _publish(bus, folder)
            assert code == 0, output
            assert "published catalog version" in output
            updated = worker.wait_for(lambda e: e.get("event") == "catalog updated", WITHIN)
            assert (updated["origin"], updated["previous"]) == ("topic", loaded["version"])

            after = records.request(purpose="tax-audit")
            await tap.send(topics.out("TAX"), after)
            await tap.wait(topics.in_("NOCR"), after.inquiry_id, within=WITHIN)
            assert time.monotonic() - published_at < WITHIN
            await tap.send(topics.out("NOCR"), records.response(after.inquiry_id))
            await tap.wait(topics.replies("TAX"), after.inquiry_id)
            answered = _outcome(records, tap, topics, after.inquiry_id)
            assert (answered["kind"], answered["status"]) == ("ANSWERED", "FOUND")

            code, output = await _publish(bus, folder)
            assert (code, "already the latest" in output) == (0, True), output

            await tap.send_bytes(topics.catalog, b'{"format": 1}', key=b"catalog")
            worker.wait_for(lambda e: e.get("event", "").startswith("catalog snapshot refused"))
            still = records.request(purpose="tax-audit")
            await tap.send(topics.out("TAX"), still)
            await tap.wait(topics.in_("NOCR"), still.inquiry_id)
            assert worker.popen.poll() is None


async def test_a_worker_starts_with_the_published_catalog(
    bus: ExchangeSettings, tmp_path: Path
) -> None:
    """With a snapshot on the topic, a starting worker routes by it, not by its files."""
    await create_bus_topics(bus, ["TAX", "NOCR"])
    topics, records = Topics.for_settings(bus), Records(bus)
    code, output = await _publish(bus, _granting_copy(tmp_path))
    assert code == 0, output
    async with BusTap(bus, [topics.in_("NOCR")]) as tap:
        with running_worker(bus) as worker:
            loaded = worker.wait_for(lambda e: e.get("event") == "catalog loaded")
            assert loaded["origin"] == "topic"
            request = records.request(purpose="tax-audit")
            await tap.send(topics.out("TAX"), request)
            await tap.wait(topics.in_("NOCR"), request.inquiry_id)


async def test_publishing_an_invalid_catalog_is_refused_with_its_problems(
    bus: ExchangeSettings, tmp_path: Path
) -> None:
    """`catalog publish` of an invalid folder prints the problem lines `catalog check` prints,
    exits 1 and writes nothing."""
    folder = _granting_copy(tmp_path)
    policies = (folder / "policies.yaml").read_text()
    (folder / "policies.yaml").write_text(
        policies.replace("requester: TAX/audit", "requester: TAXX")
    )
    code, output = await _publish(bus, folder)
    assert code == 1
    assert f"{folder / 'policies.yaml'}:" in output
    assert "TAXX" in output
