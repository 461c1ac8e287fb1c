"""The outbox and result tables (SQLAlchemy Core), their DDL, and the upsert per dialect.

The legacy application inserts into the outbox in its own transaction; the connector owns
``status``, ``inquiry_id`` and ``sent_at`` from then on::

    NEW ──polled and sent──▶ SENT ──outcome written to the result table──▶ DONE

The result table holds one row per inquiry (upserted by ``inquiry_id``), so writing the same
outcome twice (a restart between the write and the offset commit) changes nothing.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.schema import CreateIndex, CreateTable
from sqlalchemy.sql.dml import Insert

__all__ = ["DONE", "NEW", "SENT", "Tables", "notify_ddl", "outbox_ddl", "upsert"]

NEW, SENT, DONE = "NEW", "SENT", "DONE"
_ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements INTEGER keys only
_JSON = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
_TIME = DateTime(timezone=True)


class Tables:
    """The two tables under their configured names."""

    def __init__(self, outbox: str, result: str, schema: str | None = None) -> None:
        self.metadata = MetaData(schema=schema)
        self.outbox = Table(
            outbox,
            self.metadata,
            Column("id", _ID, primary_key=True, autoincrement=True),
            Column("service", Text, nullable=False, comment="nocr.person.verify.v1"),
            Column("purpose", Text, nullable=False),
            Column("payload", _JSON, nullable=False, comment="the request payload"),
            Column("case_reference", Text),
            Column("end_user_id", Text),
            Column("subject_kind", Text),
            Column("subject_id", Text),
            Column("deadline", _TIME, comment="null: the service's default deadline"),
            Column("created_at", _TIME, nullable=False, server_default=func.now()),
            Column("status", Text, nullable=False, server_default=text(f"'{NEW}'")),
            Column("inquiry_id", Uuid, comment="set by the connector when it sends the row"),
            Column("sent_at", _TIME),
        )
        Index(
            f"{outbox}_pending",
            self.outbox.c.id,
            postgresql_where=self.outbox.c.status != DONE,
            sqlite_where=self.outbox.c.status != DONE,
        )
        self.result = Table(
            result,
            self.metadata,
            Column("inquiry_id", Uuid, primary_key=True),
            Column("outbox_id", _ID, nullable=False, index=True),
            Column("kind", Text, nullable=False, comment="ANSWERED REJECTED FAILED TIMED_OUT"),
            Column("status", Text, comment="FOUND NOT_FOUND ERROR"),
            Column("reason", Text, comment="reject reason or error code"),
            Column("detail", Text),
            Column("payload", _JSON, comment="the response payload (ANSWERED)"),
            Column("settled_at", _TIME),
            Column("written_at", _TIME, nullable=False, server_default=func.now()),
        )


def upsert(dialect: str, table: Table, row: dict[str, Any], key: str) -> Insert:
    """INSERT … ON CONFLICT (key) DO UPDATE for the dialects the connector supports."""
    module: Any = {"postgresql": postgresql, "sqlite": sqlite}[dialect]
    statement = module.insert(table).values(**row)
    changed = {name: statement.excluded[name] for name in row if name != key}
    result: Insert = statement.on_conflict_do_update(index_elements=[key], set_=changed)
    return result


def notify_ddl(tables: Tables, channel: str) -> list[str]:
    """PostgreSQL: a statement trigger that NOTIFYs ``channel`` after inserts."""
    name = tables.outbox.name
    qualified = tables.outbox.fullname
    return [
        f"CREATE OR REPLACE FUNCTION {name}_notify() RETURNS trigger LANGUAGE plpgsql AS "
        f"$$ BEGIN PERFORM pg_notify('{channel}', ''); RETURN NULL; END $$",
        f"CREATE OR REPLACE TRIGGER {name}_notify AFTER INSERT ON {qualified} "
        f"FOR EACH STATEMENT EXECUTE FUNCTION {name}_notify()",
    ]


def outbox_ddl(
    outbox: str = "exchange_outbox",
    result: str = "exchange_outbox_result",
    *,
    notify_channel: str | None = "exchange_outbox",
) -> str:
    """The PostgreSQL DDL of both tables (and the NOTIFY trigger), for a migration script."""
    tables = Tables(outbox, result)
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call] # SQLAlchemy's own factory
    statements = [
        str(CreateTable(t).compile(dialect=dialect)).strip() for t in (tables.outbox, tables.result)
    ]
    statements += [
        str(CreateIndex(index).compile(dialect=dialect))
        for t in (tables.outbox, tables.result)
        for index in sorted(t.indexes, key=lambda i: str(i.name))
    ]
    if notify_channel is not None:
        statements += notify_ddl(tables, notify_channel)
    tidy = ["\n".join(line.rstrip() for line in s.splitlines()) for s in statements]
    return ";\n\n".join(tidy) + ";\n"
