"""The sql connector on a database other than PostgreSQL (SQLite through its SQLAlchemy URL),
and its config errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from connectors._config import parse_config
from connectors.sql import SqlConfig, SqlConnector
from connectors.sql._connector import bind_names
from exchange._answer import AnswerStatus, Inquiry
from exchange._errors import ConnectorConfigError
from exchange.testing import make_inquiry

ADDRESS = "post.address.lookup.v1"


def config(url: str, **binding: Any) -> dict[str, Any]:
    return {
        "kind": "sql",
        "name": "post-addresses",
        "agency": "POST",
        "url": url,
        "services": [
            {
                "service": ADDRESS,
                "query": "SELECT code AS postal_code, city FROM addresses "
                "WHERE code = :postal_code",
                **binding,
            }
        ],
    }


def inquiry(payload: dict[str, Any]) -> Inquiry:
    return make_inquiry(ADDRESS, payload, requester="TAX", purpose="tax-registration")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    path = tmp_path / "post.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE addresses (code TEXT PRIMARY KEY, city TEXT)")
        db.execute("INSERT INTO addresses VALUES ('1193653471', 'Tehran')")
    return f"sqlite+aiosqlite:///{path}"


async def test_sqlite_through_its_url_answers_found_and_not_found(sqlite_url: str) -> None:
    """Any database with an asyncio driver works by URL: a row is FOUND, none NOT_FOUND."""
    sql = SqlConnector(parse_config(config(sqlite_url), SqlConfig))
    await sql.start()
    try:
        await sql.check()
        binding = sql.config.services[0]
        found = await sql.answer(inquiry({"postal_code": "1193653471"}), binding)
        missing = await sql.answer(inquiry({"postal_code": "0000000000"}), binding)
    finally:
        await sql.close()
    assert (found.status, found.payload) == (
        AnswerStatus.FOUND,
        {"postal_code": "1193653471", "city": "Tehran"},
    )
    assert missing.status is AnswerStatus.NOT_FOUND


async def test_found_when_turns_a_row_into_not_found(sqlite_url: str) -> None:
    """A row whose found_when path is falsy answers NOT_FOUND."""
    raw = config(sqlite_url, found_when="row.city", response={"postal_code": "$row.postal_code"})
    raw["services"][0]["query"] = "SELECT code AS postal_code, NULL AS city FROM addresses"
    sql = SqlConnector(parse_config(raw, SqlConfig))
    await sql.start()
    try:
        answer = await sql.answer(inquiry({"postal_code": "x"}), sql.config.services[0])
    finally:
        await sql.close()
    assert answer.status is AnswerStatus.NOT_FOUND


def test_config_errors_name_their_field_and_hide_the_url() -> None:
    """A bad URL and a missing query are reported with field paths, never the URL's text."""
    raw = config("not a url with password hunter2")
    del raw["services"][0]["query"]
    with pytest.raises(ConnectorConfigError) as caught:
        parse_config(raw, SqlConfig)
    problems = caught.value.problems
    assert any(p.startswith("url:") for p in problems), problems
    assert any(p.startswith("services[0].query:") for p in problems), problems
    assert "hunter2" not in str(caught.value)


def test_the_url_is_a_secret_in_reprs() -> None:
    """The URL (it may carry a password) never shows in the config's repr."""
    parsed = parse_config(config("postgresql+asyncpg://u:hunter2@127.0.0.1/db"), SqlConfig)
    assert "hunter2" not in repr(parsed)


async def test_a_sync_driver_url_is_a_config_error_at_start() -> None:
    """SQLAlchemy URLs need an asyncio driver; a sync one fails start with the field named."""
    sql = SqlConnector(parse_config(config("sqlite:///x.db"), SqlConfig))
    with pytest.raises(ConnectorConfigError, match=r"^url: "):
        await sql.start()


def test_bind_names_are_what_sqlalchemy_binds() -> None:
    """Named parameters are read from the query as the driver will bind them."""
    assert bind_names("SELECT :a, :b_2 WHERE x = :a AND y = CAST(:c AS date)") == ["a", "b_2", "c"]
