"""The ``sql`` provider connector: answers inquiries with a parameterised query.

Per service binding: a SQL query with named parameters (``:national_id``), bound by the
database driver from the inquiry (by default the payload field of the same name; or a
template of :mod:`connectors._mapping`) — values are never formatted into the SQL text. The
first row (``$row``) or the rows fetched (``$rows``) map into the response payload; no row
answers ``NOT_FOUND``. The database is reached through a SQLAlchemy URL with an asyncio driver
(PostgreSQL with asyncpg is what the test suite runs; SQLite, MySQL … with theirs). A
database that cannot be reached or times out is retriable (backoff, circuit breaker); a query
the database refuses for this inquiry's values answers ``ERROR`` with code ``SQL_ERROR``.
"""

from connectors.sql._config import SqlBinding, SqlConfig
from connectors.sql._connector import SqlConnector

__all__ = ["SqlBinding", "SqlConfig", "SqlConnector"]
