"""The ``sql`` connector's config: a database URL, pool and timeouts, one query per service."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from connectors._config import DatabaseUrl, ProviderConfig, ServiceBinding

__all__ = ["SqlBinding", "SqlConfig"]


class SqlBinding(ServiceBinding):
    """One service answered by one parameterised query."""

    query: str = Field(
        description="SQL with named parameters (:national_id); values are always bound by "
        "the driver, never formatted into the text. Name result columns after the response "
        "fields (AS) or map them in `response`.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Parameter name → template ($payload.x, $inquiry.purpose, a constant); "
        "a parameter not listed is bound from the payload field of the same name.",
    )
    response: Any = Field(
        default="$row",
        description="Template of the response payload; roots: row (the first row), rows (all "
        "rows fetched), payload, inquiry.",
    )
    max_rows: int = Field(
        default=1, ge=1, le=10_000, description="Rows fetched at most (the `rows` root)."
    )
    found_when: str | None = Field(
        default=None,
        description="A path (row.registered) whose falsy value answers NOT_FOUND; no row at "
        "all always answers NOT_FOUND.",
    )


class SqlConfig(ProviderConfig):
    """A provider connector answering from a relational database (SQLAlchemy async)."""

    kind: Literal["sql"] = "sql"
    url: DatabaseUrl = Field(
        description="SQLAlchemy URL with an asyncio driver: postgresql+asyncpg://user:pw@host/db, "
        "sqlite+aiosqlite:///file.db, mysql+aiomysql://… (a secret: it may hold a password; "
        "use ${ENV} to keep it out of the file)."
    )
    timeout: float = Field(
        default=5.0, gt=0, description="Per query, connecting included, s (then retriable)."
    )
    pool_size: int = Field(default=5, ge=1, le=200, description="Connections kept open.")
    commit: bool = Field(
        default=False,
        description="Commit each query's transaction (a query that also writes, e.g. an "
        "access log); by default it is rolled back.",
    )
    check_query: str = Field(default="SELECT 1", description="What check() runs.")
    services: tuple[SqlBinding, ...] = Field(min_length=1)
