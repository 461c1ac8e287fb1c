"""The sql connector against a real PostgreSQL server: the conformance kit on the real bus,
and the query's edges (bound parameters, several rows, refusals, the server going away)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import yaml
from _postgres import PostgresServer
from samples import PERSON

from connectors import PermanentError, RetriableError
from connectors._config import parse_config
from connectors.sql import SqlConfig, SqlConnector
from connectors.testkit import ConformanceCase, ConnectorHarness, check_answers, check_outage
from exchange import ExchangeSettings
from exchange._answer import AnswerStatus, Inquiry
from exchange._catalog import load_catalog
from exchange.testing import make_inquiry

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
VERIFY = "nocr.person.verify.v1"
REGISTRY = """
CREATE TABLE persons (
    national_id text PRIMARY KEY,
    birth_date date NOT NULL,
    first_name text NOT NULL,
    last_name text NOT NULL,
    death_date date
);
INSERT INTO persons VALUES
    ('0012345678', '1990-03-21', 'Sara', 'Ahmadi', NULL),
    ('0098765432', '1950-01-02', 'Reza', 'Karimi', '2020-06-30');
"""
CONFIG = """
kind: sql
name: nocr-registry
agency: NOCR
concurrency: 8
retry: {attempts: 5, initial_backoff: 0.05, max_backoff: 0.5, jitter: 0.05}
circuit: {failure_threshold: 2, probe_interval: 0.3, max_probe_interval: 1.0, check_timeout: 1.0}
url: ${REGISTRY_DB_URL}
timeout: 2.0
services:
  - service: nocr.person.verify.v1
    query: |
      SELECT national_id,
             'VALID' AS national_id_status,
             birth_date = :birth_date AS birth_date_match,
             CASE WHEN first_name = :first_name THEN 'EXACT' ELSE 'DIFFERENT' END
               AS first_name_match,
             CASE WHEN last_name = :last_name THEN 'EXACT' ELSE 'DIFFERENT' END
               AS last_name_match,
             death_date IS NULL AS alive,
             death_date,
             now() AS verified_at
        FROM persons
       WHERE national_id = :national_id
"""


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the module (a test that stops it starts it again)."""
    with PostgresServer.started() as server:
        yield server


@pytest.fixture
def registry_url(postgres: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh database holding the civil registry's persons table."""
    name = f"registry_{uuid.uuid4().hex[:8]}"
    url = postgres.create_database(name)
    postgres.psql(name, REGISTRY)
    monkeypatch.setenv("REGISTRY_DB_URL", url)
    return url


def _connector(config_text: str = CONFIG) -> SqlConnector:
    return SqlConnector(parse_config(yaml.safe_load(config_text), SqlConfig))


@pytest.fixture
async def connector(registry_url: str) -> AsyncIterator[SqlConnector]:
    """The connector started on its own (no bus), for the query's edges."""
    sql = _connector()
    await sql.start()
    try:
        yield sql
    finally:
        await sql.close()


def _inquiry(payload: dict[str, object]) -> Inquiry:
    return make_inquiry(
        VERIFY,
        payload,
        requester="TAX",
        requester_subsystem="registration",
        purpose="tax-registration",
    )


async def test_sql_connector_conformance(
    bus: ExchangeSettings, postgres: PostgresServer, registry_url: str
) -> None:
    """FOUND from the row, NOT_FOUND without one; PostgreSQL killed: the circuit opens, intake
    pauses, short deadlines time out; PostgreSQL back: every other inquiry answered once."""
    case = ConformanceCase(
        connector=_connector(),
        legacy=postgres,
        service=VERIFY,
        found=PERSON,
        expect={
            "national_id_status": "VALID",
            "birth_date_match": True,
            "first_name_match": "EXACT",
            "alive": True,
            "death_date": None,
        },
        not_found={**PERSON, "national_id": "0000000000"},
        long_deadline=18.0,
    )
    async with ConnectorHarness(case, bus) as harness:
        answers = await check_answers(harness)
        outage = await check_outage(harness)
    print({**answers, **outage})


async def test_values_are_bound_never_spliced_into_the_sql(
    connector: SqlConnector, postgres: PostgresServer, registry_url: str
) -> None:
    """A payload holding SQL is a value like any other: NOT_FOUND, and the table survives."""
    evil = {**PERSON, "national_id": "0' OR '1'='1'; DROP TABLE persons; --"}
    answer = await connector.answer(_inquiry(evil), connector.config.services[0])
    assert answer.status is AnswerStatus.NOT_FOUND
    database = registry_url.rsplit("/", 1)[1]
    assert postgres.psql(database, "SELECT count(*) FROM persons").strip() == "2"


async def test_the_first_row_maps_to_the_response(connector: SqlConnector) -> None:
    """Columns named after the response fields become the payload; a dead person's row too."""
    dead = {**PERSON, "national_id": "0098765432", "first_name": "Reza", "last_name": "X"}
    answer = await connector.answer(_inquiry(dead), connector.config.services[0])
    assert answer.status is AnswerStatus.FOUND
    assert answer.payload is not None
    assert answer.payload["alive"] is False
    assert answer.payload["death_date"] == dt.date(2020, 6, 30)
    assert answer.payload["last_name_match"] == "DIFFERENT"
    assert answer.payload["birth_date_match"] is False


async def test_rows_and_templates_shape_the_payload(registry_url: str) -> None:
    """max_rows fetches several rows for the `rows` root; params bind inquiry fields."""
    config = yaml.safe_load(CONFIG)
    config["services"][0].update(
        query="SELECT national_id, :purpose AS purpose FROM persons ORDER BY national_id",
        params={"purpose": "$inquiry.purpose"},
        max_rows=10,
        response={"ids": "$rows", "first": "$row.national_id", "why": "$row.purpose"},
    )
    sql = SqlConnector(parse_config(config, SqlConfig))
    await sql.start()
    try:
        answer = await sql.answer(_inquiry(PERSON), sql.config.services[0])
    finally:
        await sql.close()
    assert answer.payload is not None
    assert [row["national_id"] for row in answer.payload["ids"]] == ["0012345678", "0098765432"]
    assert (answer.payload["first"], answer.payload["why"]) == ("0012345678", "tax-registration")


async def test_a_query_the_database_refuses_is_a_permanent_error(registry_url: str) -> None:
    """A value the database rejects (22P02) is SQL_ERROR for this inquiry, not an outage."""
    config = yaml.safe_load(CONFIG)
    config["services"][0]["query"] = (
        "SELECT national_id FROM persons WHERE national_id = CAST(CAST(:national_id AS text) "
        "AS bigint)::text"
    )
    sql = SqlConnector(parse_config(config, SqlConfig))
    await sql.start()
    try:
        with pytest.raises(PermanentError) as refused:
            await sql.answer(_inquiry({**PERSON, "national_id": "abc"}), sql.config.services[0])
    finally:
        await sql.close()
    assert refused.value.code == "SQL_ERROR"
    assert "22P02" in refused.value.message


async def test_a_stopped_server_is_retriable_and_a_restarted_one_answers(
    connector: SqlConnector, postgres: PostgresServer
) -> None:
    """Down: RetriableError from check() and answer(); back: pooled connections replaced."""
    binding = connector.config.services[0]
    assert (await connector.answer(_inquiry(PERSON), binding)).status is AnswerStatus.FOUND
    postgres.stop()
    try:
        with pytest.raises(RetriableError):
            await connector.check()
        with pytest.raises(RetriableError):
            await connector.answer(_inquiry(PERSON), binding)
    finally:
        postgres.start()
    await connector.check()
    assert (await connector.answer(_inquiry(PERSON), binding)).status is AnswerStatus.FOUND


def test_parameters_must_be_request_fields_or_mapped() -> None:
    """A :name that is no request field and has no params entry is a config error at start."""
    config = yaml.safe_load(CONFIG.replace("${REGISTRY_DB_URL}", "sqlite+aiosqlite://"))
    config["services"][0]["query"] = "SELECT 1 WHERE :nationl_id = 'x'"
    sql = SqlConnector(parse_config(config, SqlConfig))
    catalog = load_catalog(ROOT / "catalog" / "demo", ROOT / "schemas")
    with pytest.raises(Exception, match="nationl_id is not a request field"):
        sql.bind(catalog)
