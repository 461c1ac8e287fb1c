"""The outbox source on SQLite (the same SQLAlchemy statements as on PostgreSQL, no server):
rows become events with stable ids, outcomes become result rows, exactly once."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from connectors._config import parse_config
from connectors._sdk import stable_inquiry_id
from connectors.outbox import OutboxConfig, OutboxSource, outbox_ddl
from exchange._catalog import load_catalog
from exchange._errors import ConnectorConfigError
from exchange._outcome import Outcome, OutcomeKind

ROOT = Path(__file__).resolve().parents[2]
VERIFY = "nocr.person.verify.v1"
PAYLOAD = '{"national_id": "0012345678", "birth_date": "1990-03-21", "first_name": "Sara", "last_name": "Ahmadi"}'  # noqa: E501


def raw_config(path: Path, **extra: Any) -> dict[str, Any]:
    return {
        "kind": "outbox",
        "name": "tax-outbox",
        "agency": "TAX",
        "subsystem": "registration",
        "url": f"sqlite+aiosqlite:///{path}",
        "create_tables": True,
        **extra,
    }


async def started(path: Path) -> OutboxSource:
    source = OutboxSource(parse_config(raw_config(path), OutboxConfig))
    source.bind(load_catalog(ROOT / "catalog" / "demo", ROOT / "schemas"))
    await source.start()
    await source.check()  # creates the tables
    return source


@pytest.fixture
async def source(tmp_path: Path) -> AsyncIterator[OutboxSource]:
    running = await started(tmp_path / "legacy.db")
    try:
        yield running
    finally:
        await running.close()


def insert(path: Path, *rows: tuple[str, str]) -> None:
    """What the legacy application does: insert (payload, case reference) rows."""
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO exchange_outbox (service, purpose, payload, case_reference) "
            "VALUES (?, 'tax-registration', ?, ?)",
            [(VERIFY, payload, case) for payload, case in rows],
        )


def query(path: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def answered(inquiry_id: uuid.UUID) -> Outcome:
    return Outcome(
        inquiry_id=inquiry_id,
        kind=OutcomeKind.ANSWERED,
        service=VERIFY,
        provider="NOCR",
        status="FOUND",
        payload={"alive": True, "verified_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)},
        settled_at=dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC),
    )


async def test_rows_become_events_with_ids_derived_from_the_row(
    source: OutboxSource, tmp_path: Path
) -> None:
    """Each NEW row is one event whose id is the uuid5 of its row id; it is marked SENT."""
    db = tmp_path / "legacy.db"
    insert(db, (PAYLOAD, "C-1"), (PAYLOAD, "C-2"))
    events = await source.poll(10)
    assert [e.spec.case_reference for e in events] == ["C-1", "C-2"]
    assert [e.inquiry_id for e in events] == [
        stable_inquiry_id("tax-outbox", "outbox:1"),
        stable_inquiry_id("tax-outbox", "outbox:2"),
    ]
    assert events[0].spec.payload["birth_date"] == dt.date(1990, 3, 21)  # read by the schema
    assert query(db, "SELECT status, inquiry_id IS NOT NULL FROM exchange_outbox") == [
        ("SENT", 1),
        ("SENT", 1),
    ]
    assert await source.poll(10) == []  # in flight in this run: not offered again


async def test_after_a_restart_sent_rows_are_offered_again_with_the_same_ids(
    source: OutboxSource, tmp_path: Path
) -> None:
    """A crash between sending and writing back: the next run resends the same inquiry."""
    db = tmp_path / "legacy.db"
    insert(db, (PAYLOAD, "C-1"))
    first = await source.poll(10)
    again = await started(db)
    try:
        second = await again.poll(10)
    finally:
        await again.close()
    assert [e.inquiry_id for e in second] == [e.inquiry_id for e in first]


async def test_an_outcome_is_written_once_and_the_row_done(
    source: OutboxSource, tmp_path: Path
) -> None:
    """deliver upserts the result by inquiry id (twice: still one row) and marks DONE."""
    db = tmp_path / "legacy.db"
    insert(db, (PAYLOAD, "C-1"))
    [event] = await source.poll(10)
    await source.deliver(event, answered(event.inquiry_id))
    await source.deliver(event, answered(event.inquiry_id))
    rows = query(
        db, "SELECT outbox_id, kind, status, payload, settled_at FROM exchange_outbox_result"
    )
    assert len(rows) == 1
    outbox_id, kind, status, payload, settled_at = rows[0]
    assert (outbox_id, kind, status) == (1, "ANSWERED", "FOUND")
    assert '"verified_at": "2026-01-02T00:00:00+00:00"' in payload
    assert settled_at.startswith("2026-01-02 03:04:05")
    assert query(db, "SELECT status FROM exchange_outbox") == [("DONE",)]
    assert await source.poll(10) == []


async def test_a_payload_that_is_no_json_object_is_rejected_without_sending(
    source: OutboxSource, tmp_path: Path
) -> None:
    """Never silently skipped: the row ends DONE with a REJECTED result saying why."""
    db = tmp_path / "legacy.db"
    insert(db, ("[1, 2]", "C-bad"), (PAYLOAD, "C-good"))
    events = await source.poll(10)
    assert [e.spec.case_reference for e in events] == ["C-good"]
    assert query(db, "SELECT kind, reason FROM exchange_outbox_result") == [
        ("REJECTED", "INVALID_PAYLOAD")
    ]


async def test_poll_takes_the_oldest_rows_first_up_to_the_limit(
    source: OutboxSource, tmp_path: Path
) -> None:
    """The runtime's room bounds each poll; the rest waits in the table, in order."""
    db = tmp_path / "legacy.db"
    insert(db, *[(PAYLOAD, f"C-{i}") for i in range(5)])
    assert [e.ref for e in await source.poll(2)] == [1, 2]
    assert [e.ref for e in await source.poll(2)] == [3, 4]


def test_table_names_are_identifiers_only(tmp_path: Path) -> None:
    """Table names are written into SQL, so anything but an identifier is refused."""
    with pytest.raises(ConnectorConfigError) as caught:
        parse_config(raw_config(tmp_path / "x.db", table="outbox; DROP TABLE x"), OutboxConfig)
    assert [p.split(":")[0] for p in caught.value.problems] == ["table"]


def test_the_ddl_names_every_column_the_connector_uses() -> None:
    """The published PostgreSQL DDL: both tables, the pending index and the NOTIFY trigger."""
    ddl = outbox_ddl()
    for needle in (
        "CREATE TABLE exchange_outbox (",
        "payload JSONB NOT NULL",
        "status TEXT DEFAULT 'NEW' NOT NULL",
        "CREATE TABLE exchange_outbox_result (",
        "inquiry_id UUID NOT NULL",
        "WHERE status != 'DONE'",
        "pg_notify('exchange_outbox', '')",
    ):
        assert needle in ddl, needle
