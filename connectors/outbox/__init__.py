"""The ``outbox`` requester connector: a legacy application's outbox table becomes inquiries.

The application inserts a row (service, purpose, payload JSON, case reference …) into the
outbox table in the same transaction as its own change (the transactional outbox pattern);
the connector sends each row as exactly one inquiry and writes its outcome to the result
table (kind, status, reason, payload JSON, settled-at), upserted by inquiry id, marking the
row DONE. See :mod:`connectors.outbox._source` for how "exactly once" holds across crashes,
and ``docs/connectors-builtin.md`` for the tables. PostgreSQL (asyncpg) is the database it is
tested on, LISTEN/NOTIFY included; SQLite works for trials.
"""

from connectors.outbox._config import OutboxConfig
from connectors.outbox._source import OutboxSource
from connectors.outbox._tables import outbox_ddl

__all__ = ["OutboxConfig", "OutboxSource", "outbox_ddl"]
