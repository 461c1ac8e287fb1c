"""The requester conformance kit has teeth: a connector that skips malformed events silently
fails it, naming the events. The connector under test is defined here (a small source over a
SQLite table, so the kit can run it as a process of its own)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from connectors import RequesterConfig, RequesterSource, SourceEvent, stable_inquiry_id
from connectors.testkit import (
    LegacyEvent,
    RequesterCase,
    RequesterHarness,
    Written,
    check_outcomes,
)
from exchange import ExchangeSettings, InquirySpec, Outcome

pytestmark = pytest.mark.integration

VERIFY = "nocr.person.verify.v1"
PAYLOAD = {
    "national_id": "0012345678",
    "birth_date": "1990-03-21",
    "first_name": "Sara",
    "last_name": "Ahmadi",
}
TABLE = (
    "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, key TEXT, purpose TEXT, "
    "deadline_at REAL, malformed INTEGER, kind TEXT, status TEXT, reason TEXT)"
)


class SkippingConfig(RequesterConfig):
    """The faulty connector's config: where its table is."""

    kind: str = "test_requester_conformance_teeth:SkippingSource"
    database: str


class SkippingSource(RequesterSource[SkippingConfig]):
    """A requester with the bug the kit must catch: malformed events are skipped silently."""

    config_class = SkippingConfig

    async def check(self) -> None:
        """Always reachable."""

    async def poll(self, limit: int) -> Sequence[SourceEvent]:
        """Events without an outcome; the malformed ones are left out and never reported."""
        with sqlite3.connect(self.config.database, timeout=10) as db:
            rows = db.execute(
                "SELECT id, key, purpose, deadline_at FROM events "
                "WHERE kind IS NULL AND malformed = 0 ORDER BY id LIMIT ?",
                (limit,),
            ).fetchall()
        return [self._event(*row) for row in rows]

    def _event(self, row_id: int, key: str, purpose: str, deadline_at: float) -> SourceEvent:
        spec = InquirySpec(
            VERIFY,
            dict(PAYLOAD),
            purpose,
            case_reference=key,
            deadline=_utc(deadline_at),
            inquiry_id=stable_inquiry_id(self.config.name, str(row_id)),
        )
        return SourceEvent(spec, ref=row_id)

    async def deliver(self, event: SourceEvent, outcome: Outcome) -> None:
        """Store the outcome's kind, status and reason with the event."""
        reason = outcome.reject_reason or outcome.error_code
        with sqlite3.connect(self.config.database, timeout=10) as db:
            db.execute(
                "UPDATE events SET kind = ?, status = ?, reason = ? WHERE id = ?",
                (outcome.kind.value, outcome.status, reason, event.ref),
            )


def _utc(epoch: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(epoch, dt.UTC)


class Table:
    """The adapter: events into the table, outcomes out of it."""

    def __init__(self, database: Path) -> None:
        self.database = database
        with sqlite3.connect(database) as db:
            db.execute(TABLE)

    def emit(self, events: Sequence[LegacyEvent]) -> None:
        rows = [(e.key, e.purpose, time.time() + e.deadline, int(e.malformed)) for e in events]
        with sqlite3.connect(self.database, timeout=10) as db:
            db.executemany(
                "INSERT INTO events (key, purpose, deadline_at, malformed) VALUES (?, ?, ?, ?)",
                rows,
            )

    def outcomes(self) -> list[Written]:
        with sqlite3.connect(self.database, timeout=10) as db:
            rows = db.execute(
                "SELECT key, kind, status, reason FROM events WHERE kind IS NOT NULL"
            ).fetchall()
        return [Written(*row) for row in rows]

    def break_(self) -> None:
        raise NotImplementedError("not needed by check_outcomes")

    def heal(self) -> None:
        raise NotImplementedError("not needed by check_outcomes")


async def test_silently_skipped_malformed_events_fail_the_kit(
    bus: ExchangeSettings, tmp_path: Path
) -> None:
    """Good events are written back, but the malformed ones never are: check_outcomes fails
    naming exactly those, instead of passing."""
    database = tmp_path / "events.sqlite"
    case = RequesterCase(
        config={
            "kind": "test_requester_conformance_teeth:SkippingSource",
            "name": "skipping",
            "agency": "TAX",
            "subsystem": "registration",
            "database": str(database),
            "poll_interval": 0.2,
        },
        legacy=Table(database),
        service=VERIFY,
        purpose="tax-registration",
        settle=5.0,
    )
    async with RequesterHarness(case, bus) as harness:
        with pytest.raises(AssertionError, match="nothing written back") as failed:
            await check_outcomes(harness)
    missing = json.loads(str(failed.value).split(" for ", 1)[1].split("\n", 1)[0].replace("'", '"'))
    assert missing
    assert all("bad" in key for key in missing)
