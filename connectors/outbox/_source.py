"""The ``outbox`` source: rows of an outbox table become inquiries, outcomes go back.

Exactly once, end to end:

- A row's inquiry id is ``stable_inquiry_id(name, "outbox:<row id>")`` (a uuid5): whatever
  happens between sending it and marking it, a resend is the *same* inquiry, which the stream
  workers recognise as a duplicate (no second inquiry reaches the provider, no second outcome).
- ``poll`` takes the oldest NEW or SENT rows not handed out by this run yet (``FOR UPDATE SKIP
  LOCKED``: never waits on rows the application is still writing), marks the NEW ones SENT
  with their inquiry id, and commits before anything is sent. After a restart the SENT rows
  are polled again and resent; their outcome, if it arrived meanwhile, is taken from the
  durable reply reader instead (see :mod:`exchange._durable`).
- ``deliver`` upserts the result row and marks the outbox row DONE in one transaction; the
  runtime acknowledges the outcome (its Kafka offset may be committed) only after that.

With ``notify_channel`` set (PostgreSQL), an empty poll waits up to ``listen_timeout`` for a
NOTIFY on that channel, so a new row is picked up at once rather than at the next poll.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import bindparam, func, select, text, update
from sqlalchemy.engine import RowMapping
from sqlalchemy.exc import ArgumentError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from connectors._mapping import jsonable
from connectors._schema_values import from_json
from connectors._sdk import RequesterSource, SourceEvent, stable_inquiry_id
from connectors.outbox._config import OutboxConfig
from connectors.outbox._tables import DONE, NEW, SENT, Tables, notify_ddl, upsert
from connectors.sql._errors import translate
from exchange._catalog_model import Catalog
from exchange._errors import ConnectorConfigError, RetriableError
from exchange._outcome import InquirySpec, Outcome, OutcomeKind

__all__ = ["OutboxSource"]

_DIALECTS = ("postgresql", "sqlite")


class OutboxSource(RequesterSource[OutboxConfig]):
    """Reads the outbox table, writes the result table (see :mod:`connectors.outbox`)."""

    config_class = OutboxConfig

    def __init__(self, config: OutboxConfig) -> None:
        super().__init__(config)
        self.tables = Tables(config.table, config.result_table, config.schema_name)
        self._engine: AsyncEngine | None = None
        self._handed: set[int] = set()
        self._schemas: dict[str, dict[str, Any] | None] = {}
        self._catalog: Catalog | None = None
        self._ready = False
        self._listener: AsyncConnection | None = None
        self._notified = asyncio.Event()

    def bind(self, catalog: Catalog) -> None:
        """Keep the catalog: payload text is read by the services' request schemas."""
        self._catalog = catalog

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the engine (no connection yet); refuse databases it cannot upsert in."""
        url = self.config.url.get_secret_value()
        try:
            engine = create_async_engine(
                url, pool_pre_ping=True, **_pool_options(url, self.config.pool_size)
            )
        except (ArgumentError, InvalidRequestError, ImportError) as exc:
            raise ConnectorConfigError(
                f"url: cannot use this database URL ({type(exc).__name__}); an asyncio driver "
                "is required (postgresql+asyncpg://)",
                problems=["url: needs an installed asyncio driver"],
            ) from exc
        if engine.dialect.name not in _DIALECTS:
            await engine.dispose()
            raise ConnectorConfigError(
                f"url: the outbox connector supports {', '.join(_DIALECTS)}, "
                f"not {engine.dialect.name}",
                problems=["url: unsupported database"],
            )
        self._engine = engine

    async def close(self) -> None:
        """Stop listening, close the pool."""
        await self._unlisten()
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def check(self) -> None:
        """The database answers (and the tables exist, created first if so configured)."""
        async with self._connection("the check") as conn:
            await self._prepare(conn)
            await conn.execute(select(self.tables.outbox.c.id).limit(1))

    # --- the two calls ------------------------------------------------------------------------

    async def poll(self, limit: int) -> Sequence[SourceEvent]:
        """The oldest rows not delivered and not in flight in this run, NEW ones marked SENT."""
        await self._listen()
        self._notified.clear()
        events = await self._take(limit)
        if not events and self._listener is not None:
            try:
                async with asyncio.timeout(self.config.listen_timeout):
                    await self._notified.wait()
            except TimeoutError:
                return events
            events = await self._take(limit)
        return events

    async def deliver(self, event: SourceEvent, outcome: Outcome) -> None:
        """Upsert the result row and mark the outbox row DONE, in one transaction."""
        row_id: int = event.ref
        outbox = self.tables.outbox
        async with self._connection("writing the outcome") as conn:
            await conn.execute(self._result_upsert(conn, row_id, outcome))
            await conn.execute(
                update(outbox)
                .where(outbox.c.id == row_id)
                .values(status=DONE, inquiry_id=outcome.inquiry_id)
            )
            await conn.commit()
        self._handed.discard(row_id)

    # --- polling ------------------------------------------------------------------------------

    async def _take(self, limit: int) -> list[SourceEvent]:
        outbox = self.tables.outbox
        query = (
            select(outbox)
            .where(outbox.c.status.in_((NEW, SENT)), outbox.c.id.not_in(self._handed))
            .order_by(outbox.c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        async with self._connection("polling the outbox") as conn:
            await self._prepare(conn)
            rows = (await conn.execute(query)).mappings().all()
            events: list[SourceEvent] = []
            fresh = []
            for row in rows:
                payload = self._payload(row["service"], row["payload"])
                event = self._event(row, payload or {})
                if payload is None:
                    await self._refuse(conn, row["id"], event)
                    continue
                events.append(event)
                if row["status"] == NEW:
                    fresh.append({"row_id": row["id"], "iid": event.inquiry_id})
            if fresh:
                await conn.execute(
                    update(outbox)
                    .where(outbox.c.id == bindparam("row_id"), outbox.c.status == NEW)
                    .values(status=SENT, inquiry_id=bindparam("iid"), sent_at=func.now()),
                    fresh,
                )
            await conn.commit()
        self._handed.update(event.ref for event in events)
        return events

    async def _refuse(self, conn: AsyncConnection, row_id: int, event: SourceEvent) -> None:
        """A payload that is not a JSON object cannot be an inquiry: REJECTED at once."""
        outcome = Outcome(
            inquiry_id=event.inquiry_id,
            kind=OutcomeKind.REJECTED,
            service=event.spec.service,
            provider="",
            reject_reason="INVALID_PAYLOAD",
            detail="the outbox row's payload is not a JSON object",
            local=True,
        )
        await conn.execute(self._result_upsert(conn, row_id, outcome))
        outbox = self.tables.outbox
        await conn.execute(
            update(outbox)
            .where(outbox.c.id == row_id)
            .values(status=DONE, inquiry_id=event.inquiry_id, sent_at=func.now())
        )

    def _event(self, row: RowMapping, payload: dict[str, Any]) -> SourceEvent:
        subject = None
        if row["subject_kind"] and row["subject_id"]:
            subject = (row["subject_kind"], row["subject_id"])
        spec = InquirySpec(
            service=row["service"],
            payload=payload,
            purpose=row["purpose"],
            case_reference=row["case_reference"],
            end_user_id=row["end_user_id"],
            subject=subject,
            deadline=_aware(row["deadline"]),
            inquiry_id=stable_inquiry_id(self.config.name, f"outbox:{row['id']}"),
        )
        return SourceEvent(spec, ref=row["id"])

    def _payload(self, service: str, raw: Any) -> dict[str, Any] | None:
        """The row's JSON with dates and timestamps read by the request schema; what does not
        fit is left as is, for the client to refuse (the row then ends REJECTED). None when
        it is not a JSON object at all."""
        try:
            value = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            value = raw
        if not isinstance(value, dict):
            return None
        definition = self._request_schema(service)
        return from_json(definition, value) if definition is not None else value

    def _request_schema(self, service: str) -> dict[str, Any] | None:
        if service not in self._schemas:
            found = self._catalog.service(service) if self._catalog is not None else None
            revision = found.latest_request if found is not None else None
            self._schemas[service] = (
                json.loads(revision.path.read_text(encoding="utf-8")) if revision else None
            )
        return self._schemas[service]

    # --- writing back -------------------------------------------------------------------------

    def _result_upsert(self, conn: AsyncConnection, row_id: int, outcome: Outcome) -> Any:
        row = {
            "inquiry_id": outcome.inquiry_id,
            "outbox_id": row_id,
            "kind": outcome.kind.value,
            "status": outcome.status,
            "reason": outcome.reject_reason or outcome.error_code,
            "detail": outcome.error_message or outcome.detail,
            "payload": jsonable(outcome.payload) if outcome.payload is not None else None,
            "settled_at": outcome.settled_at or dt.datetime.now(dt.UTC),
        }
        return upsert(conn.dialect.name, self.tables.result, row, "inquiry_id")

    # --- database plumbing --------------------------------------------------------------------

    @asynccontextmanager
    async def _connection(self, what: str) -> AsyncIterator[AsyncConnection]:
        """A pooled connection in a transaction, failures sorted (retriable or permanent)."""
        if self._engine is None:
            raise RetriableError("the connector is not started")
        try:
            async with asyncio.timeout(self.config.timeout), self._engine.connect() as conn:
                yield conn
        except Exception as exc:
            raise translate(exc, what) from exc

    async def _prepare(self, conn: AsyncConnection) -> None:
        """Once per run: create the tables (and trigger) when configured to."""
        if self._ready or not self.config.create_tables:
            return
        await conn.run_sync(self.tables.metadata.create_all)
        channel = self.config.notify_channel
        if channel is not None and conn.dialect.name == "postgresql":
            for statement in notify_ddl(self.tables, channel):
                await conn.execute(text(statement))
        await conn.commit()
        self._ready = True

    async def _listen(self) -> None:
        """(Re)open the LISTEN connection when configured, on PostgreSQL; best effort."""
        channel = self.config.notify_channel
        if channel is None or self._engine is None or self._engine.dialect.name != "postgresql":
            return
        if self._listener is not None and not self._listener.closed:
            driver = (await self._listener.get_raw_connection()).driver_connection
            if driver is not None and not driver.is_closed():
                return
            await self._unlisten()
        try:
            async with asyncio.timeout(self.config.timeout):
                listener = await self._engine.connect()
                driver = (await listener.get_raw_connection()).driver_connection
                await _add_listener(driver, channel, self._woken)
        except Exception as exc:
            raise translate(exc, "listening for notifications") from exc
        self._listener = listener

    def _woken(self, *_args: object) -> None:
        self._notified.set()

    async def _unlisten(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.invalidate()  # never back to the pool: it holds a LISTEN


async def _add_listener(driver: Any, channel: str, callback: Any) -> None:
    """asyncpg's LISTEN: ``callback`` runs on every NOTIFY on ``channel``."""
    if driver is None:
        raise RetriableError("no driver connection to LISTEN on")
    await driver.add_listener(channel, callback)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=dt.UTC)  # SQLite returns naive timestamps


def _pool_options(url: str, pool_size: int) -> dict[str, Any]:
    if url.startswith("sqlite"):
        return {}
    return {"pool_size": pool_size, "max_overflow": 0}
