"""The outbox connector against a real PostgreSQL on the real bus (a real worker, a simulated
civil registry): every row answered once, NOTIFY wake-up, a crash, a database outage."""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from _postgres import PostgresServer
from requester_bus import UNKNOWN_PERSON, civil_registry, connector_process, running, until
from sdk_bus import real_bus

from connectors._breaker import CircuitState
from connectors._config import parse_config
from connectors.outbox import OutboxConfig, OutboxSource, outbox_ddl
from exchange import ExchangeSettings

pytestmark = pytest.mark.integration

VERIFY = "nocr.person.verify.v1"
FAST = {
    "retry": {"attempts": 3, "initial_backoff": 0.05, "max_backoff": 0.3, "jitter": 0.05},
    "circuit": {"failure_threshold": 2, "probe_interval": 0.3, "max_probe_interval": 1.0},
}


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the module (a test that stops it starts it again)."""
    with PostgresServer.started() as server:
        yield server


@pytest.fixture
def database(postgres: PostgresServer) -> str:
    """A fresh database with the outbox tables, made from the published DDL."""
    name = f"legacy_{uuid.uuid4().hex[:8]}"
    postgres.create_database(name)
    postgres.psql(name, outbox_ddl())
    return name


@pytest.fixture
async def bus(settings: ExchangeSettings) -> AsyncIterator[ExchangeSettings]:
    async with real_bus(settings, ["TAX", "NOCR"]) as configured:
        yield configured


def config(postgres: PostgresServer, database: str, **extra: object) -> OutboxConfig:
    raw = {
        "kind": "outbox",
        "name": "tax-outbox",
        "agency": "TAX",
        "subsystem": "registration",
        "url": postgres.url(database),
        "poll_interval": 0.2,
        **FAST,
        **extra,
    }
    parsed = parse_config(raw, OutboxConfig)
    assert isinstance(parsed, OutboxConfig)
    return parsed


def insert(postgres: PostgresServer, database: str, ids: list[str], *, deadline: int = 30) -> None:
    """The legacy application's transaction: one outbox row per national id."""
    values = ", ".join(
        f"('{VERIFY}', 'tax-registration', '{_payload(national_id)}', 'case-{national_id}', "
        f"now() + interval '{deadline} seconds')"
        for national_id in ids
    )
    postgres.psql(
        database,
        "INSERT INTO exchange_outbox (service, purpose, payload, case_reference, deadline) "
        f"VALUES {values}",
    )


def _payload(national_id: str) -> str:
    return json.dumps(
        {
            "national_id": national_id,
            "birth_date": "1990-03-21",
            "first_name": "Sara",
            "last_name": "Ahmadi",
        }
    )


def count(postgres: PostgresServer, database: str, where: str = "true") -> int:
    return int(postgres.psql(database, f"SELECT count(*) FROM exchange_outbox WHERE {where}"))


def results(postgres: PostgresServer, database: str) -> list[tuple[str, ...]]:
    """(case reference, kind, status, reason, has payload) per result row, by outbox id."""
    out = postgres.psql(
        database,
        "SELECT o.case_reference, r.kind, coalesce(r.status, ''), coalesce(r.reason, ''), "
        "(r.payload ? 'alive')::text FROM exchange_outbox_result r "
        "JOIN exchange_outbox o ON o.id = r.outbox_id ORDER BY o.id",
    )
    return [tuple(line.split("|")) for line in out.splitlines() if line]


def national_ids(n: int, start: int = 1) -> list[str]:
    return [f"{i:010d}" for i in range(start, start + n)]


async def test_every_row_is_answered_once_into_the_result_table(
    bus: ExchangeSettings, postgres: PostgresServer, database: str
) -> None:
    """Rows → inquiries → result rows (FOUND, NOT_FOUND, REJECTED for an unknown service);
    every row DONE, every inquiry handled by the provider exactly once."""
    insert(postgres, database, [*national_ids(20), UNKNOWN_PERSON])
    postgres.psql(
        database,
        "INSERT INTO exchange_outbox (service, purpose, payload, case_reference) "
        "VALUES ('nocr.no.such.v1', 'tax-registration', '{}', 'case-unknown-service')",
    )
    started = time.monotonic()
    source = OutboxSource(config(postgres, database))
    async with civil_registry(bus) as handled, running(source, bus):
        await until(lambda: count(postgres, database, "status = 'DONE'") == 22, 60, "rows done")
    elapsed = time.monotonic() - started
    rows = results(postgres, database)
    assert len(rows) == 22
    found = [r for r in rows if r[0].startswith("case-0") and r[0] != f"case-{UNKNOWN_PERSON}"]
    assert {r[1:] for r in found} == {("ANSWERED", "FOUND", "", "true")}
    assert (f"case-{UNKNOWN_PERSON}", "ANSWERED", "NOT_FOUND", "", "") in rows
    assert ("case-unknown-service", "REJECTED", "", "UNKNOWN_SERVICE", "") in rows
    assert sorted(handled.values()) == [1] * 21
    print({"rows": 22, "seconds": round(elapsed, 2)})


async def test_notify_wakes_the_connector_at_once(
    bus: ExchangeSettings, postgres: PostgresServer, database: str
) -> None:
    """With LISTEN on, an empty poll waits for NOTIFY: a new row goes out within a second or
    two, though a poll without notification would wait 30 s."""
    source = OutboxSource(
        config(
            postgres,
            database,
            notify_channel="exchange_outbox",
            listen_timeout=30.0,
            poll_interval=0.05,
        )
    )
    async with civil_registry(bus), running(source, bus):
        await asyncio.sleep(2.0)  # idle: the poll now waits on the notification
        insert(postgres, database, national_ids(1))
        latency = await until(
            lambda: count(postgres, database, "status = 'DONE'") == 1, 10, "row done"
        )
    assert latency < 5.0
    print({"insert_to_result_s": round(latency, 2)})


async def test_a_killed_connector_restarts_without_loss_or_second_inquiry(
    bus: ExchangeSettings, postgres: PostgresServer, database: str, tmp_path: Path
) -> None:
    """SIGKILL after the rows were sent, outcomes arrive while it is down: the next run
    writes every one back; the provider saw each inquiry once (resends were duplicates)."""
    config_file = tmp_path / "outbox.yaml"
    config_file.write_text(
        json.dumps(
            config(postgres, database).model_dump(mode="json") | {"url": postgres.url(database)}
        )
    )
    insert(postgres, database, national_ids(10), deadline=25)
    first = connector_process(bus, config_file)
    try:
        await until(lambda: count(postgres, database, "status = 'SENT'") == 10, 60, "rows sent")
        await asyncio.sleep(0.5)  # the producer flushed
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    async with civil_registry(bus) as handled:
        await until(lambda: len(handled) == 10, 30, "provider answered while connector down")
        await asyncio.sleep(1.0)  # the outcomes reach replies.TAX
        assert count(postgres, database, "status = 'DONE'") == 0
        second = connector_process(bus, config_file)
        try:
            waited = await until(
                lambda: count(postgres, database, "status = 'DONE'") == 10, 60, "rows done"
            )
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(30) == 0
    rows = results(postgres, database)
    assert {r[1:] for r in rows} == {("ANSWERED", "FOUND", "", "true")}
    assert sorted(handled.values()) == [1] * 10
    print({"written_back_after_restart_s": round(waited, 2)})


async def test_a_database_outage_pauses_intake_and_loses_nothing(
    bus: ExchangeSettings, postgres: PostgresServer, database: str
) -> None:
    """PostgreSQL stopped while outcomes arrive: the circuit opens (polling paused), outcomes
    wait; back: every outcome written, later rows sent; each inquiry handled once."""
    insert(postgres, database, national_ids(10), deadline=25)
    source = OutboxSource(config(postgres, database))
    async with civil_registry(bus, delay=1.0) as handled, running(source, bus) as runtime:
        await until(lambda: count(postgres, database, "status = 'SENT'") == 10, 30, "rows sent")
        postgres.stop()
        down = time.monotonic()
        try:
            opened = await until(
                lambda: runtime.guard.state is CircuitState.OPEN, 15, "circuit open"
            )
            await until(lambda: len(handled) == 10, 30, "provider answered during the outage")
            await asyncio.sleep(2.0)
        finally:
            postgres.start()
        outage = time.monotonic() - down
        await until(lambda: count(postgres, database, "status = 'DONE'") == 10, 60, "written")
        insert(postgres, database, national_ids(5, start=100), deadline=25)
        await until(lambda: count(postgres, database, "status = 'DONE'") == 15, 60, "resumed")
    rows = results(postgres, database)
    assert len(rows) == 15
    assert {r[1:] for r in rows} == {("ANSWERED", "FOUND", "", "true")}
    assert sorted(handled.values()) == [1] * 15
    print({"circuit_open_after_s": round(opened, 2), "outage_s": round(outage, 2)})
