"""The outbox connector passes the requester conformance kit against a real PostgreSQL:
every kind of outcome written back once, malformed rows reported, a SIGKILL mid-stream, the
database killed and restarted."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from _postgres import PostgresServer

from connectors.outbox import outbox_ddl
from connectors.testkit import (
    LegacyEvent,
    RequesterCase,
    RequesterHarness,
    Written,
    check_requester,
)
from exchange import ExchangeSettings

pytestmark = pytest.mark.integration

VERIFY = "nocr.person.verify.v1"
#: Malformed rows, in turn: a payload that is no JSON object, one without a required field.
MALFORMED = ('["not", "an", "object"]', '{"national_id": "0012345678"}')


class OutboxLegacy:
    """The legacy application: inserts outbox rows, reads the result table (psql)."""

    def __init__(self, postgres: PostgresServer, database: str) -> None:
        self.postgres = postgres
        self.database = database
        self._bad = 0

    def emit(self, events: Sequence[LegacyEvent]) -> None:
        """One transaction inserting a row per event, as the application would."""
        values = ", ".join(self._row(event) for event in events)
        self.postgres.psql(
            self.database,
            "INSERT INTO exchange_outbox (service, purpose, payload, case_reference, deadline) "
            f"VALUES {values}",
        )

    def _row(self, event: LegacyEvent) -> str:
        if event.malformed:
            payload = MALFORMED[self._bad % len(MALFORMED)]
            self._bad += 1
        else:
            payload = json.dumps(
                {
                    "national_id": "0012345678",
                    "birth_date": "1990-03-21",
                    "first_name": "Sara",
                    "last_name": "Ahmadi",
                }
            )
        return (
            f"('{VERIFY}', '{event.purpose}', '{payload}', '{event.key}', "
            f"now() + interval '{event.deadline} seconds')"
        )

    def outcomes(self) -> list[Written]:
        out = self.postgres.psql(
            self.database,
            "SELECT o.case_reference, r.kind, coalesce(r.status, ''), coalesce(r.reason, '') "
            "FROM exchange_outbox_result r JOIN exchange_outbox o ON o.id = r.outbox_id",
        )
        rows = [line.split("|") for line in out.splitlines() if line]
        return [
            Written(key, kind, status or None, reason or None) for key, kind, status, reason in rows
        ]

    def break_(self) -> None:
        """PostgreSQL crashes (immediate shutdown, clients cut off)."""
        self.postgres.kill()

    def heal(self) -> None:
        self.postgres.start()


@pytest.fixture
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the test (the kit kills and restarts it)."""
    with PostgresServer.started() as server:
        yield server


def outbox_config(url: str) -> dict[str, Any]:
    return {
        "kind": "outbox",
        "name": "tax-outbox",
        "agency": "TAX",
        "subsystem": "registration",
        "url": url,
        "notify_channel": "exchange_outbox",
        "listen_timeout": 1.0,
        "poll_interval": 0.2,
        "timeout": 2.0,
        "retry": {"attempts": 3, "initial_backoff": 0.05, "max_backoff": 0.3, "jitter": 0.05},
        "circuit": {"failure_threshold": 2, "probe_interval": 0.3, "max_probe_interval": 1.0},
    }


async def test_outbox_passes_the_requester_conformance_kit(
    bus: ExchangeSettings, postgres: PostgresServer
) -> None:
    """Outcomes of every kind written once, malformed rows reported, SIGKILL and a database
    crash survived with nothing lost and nothing sent twice."""
    database = f"legacy_{uuid.uuid4().hex[:8]}"
    postgres.create_database(database)
    # The test server runs with synchronous_commit=off for speed, so a crash would lose the
    # last commits (rows the application inserted, outcomes written back): the legacy
    # database must keep what it committed for "nothing lost" to mean anything.
    postgres.psql(database, f'ALTER DATABASE "{database}" SET synchronous_commit = on')
    postgres.psql(database, outbox_ddl())
    case = RequesterCase(
        config=outbox_config(postgres.url(database)),
        legacy=OutboxLegacy(postgres, database),
        service=VERIFY,
        purpose="tax-registration",
    )
    async with RequesterHarness(case, bus) as harness:
        figures = await check_requester(harness)
    print({name: round(value, 2) for name, value in figures.items()})
