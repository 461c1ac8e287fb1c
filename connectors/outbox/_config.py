"""The ``outbox`` connector's config: the database, its two tables, polling and LISTEN."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from connectors._config import DatabaseUrl, RequesterConfig

__all__ = ["OutboxConfig"]

#: Table, schema and channel names are written into SQL (identifiers cannot be bound), so
#: only plain identifiers are accepted.
IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]{0,62}$"


class OutboxConfig(RequesterConfig):
    """A requester connector reading an outbox table and writing a result table."""

    kind: Literal["outbox"] = "outbox"
    url: DatabaseUrl = Field(
        description="SQLAlchemy URL with an asyncio driver: postgresql+asyncpg://user:pw@host/db "
        "(sqlite+aiosqlite:// also works, without LISTEN); a secret, use ${ENV}."
    )
    table: str = Field(default="exchange_outbox", pattern=IDENTIFIER, description="Outbox table.")
    result_table: str = Field(
        default="exchange_outbox_result", pattern=IDENTIFIER, description="Result table."
    )
    schema_name: str | None = Field(
        default=None, pattern=IDENTIFIER, description="Database schema of both tables."
    )
    create_tables: bool = Field(
        default=False,
        description="Create both tables (and the NOTIFY trigger) if missing, on first contact.",
    )
    notify_channel: str | None = Field(
        default=None,
        pattern=IDENTIFIER,
        description="PostgreSQL: LISTEN on this channel and poll as soon as it is notified "
        "(the legacy application or a trigger runs NOTIFY); unset: poll every poll_interval.",
    )
    listen_timeout: float = Field(
        default=5.0,
        gt=0,
        description="With notify_channel: how long one poll waits for a notification when "
        "the outbox is empty, s.",
    )
    timeout: float = Field(default=5.0, gt=0, description="Per statement, connecting included.")
    pool_size: int = Field(default=5, ge=2, le=100, description="Connections kept open.")
